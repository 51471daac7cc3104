/**
 * The one process launcher: `switchboard serve --config <file>` as users
 * run it, in a child process on a free loopback port; resolves once GET
 * /health answers, and kills the process (by PID) when the test ends,
 * passed or failed. Also runs the CLI's one-shot commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepMerge } from '../../src/config/load.js';
import { freePort } from './net.js';
import { tempDir, type TestContextLike } from './scope.js';
import { GiveUp, until } from './wait.js';

/** dist/test/helpers → dist/src/cli.js */
export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningServer extends Launched {
  readonly port: number;
  readonly http: string;
  readonly ws: string;
  readonly api: string;
  readonly apiKey: string;
  readonly secret: string;
  readonly configFile: string;
  /** POST /api/<method> with the key; returns the parsed JSON body (rejects after 10 s). */
  call<T = any>(method: string, params?: unknown): Promise<T>;
  /** The Prometheus text of GET /metrics. */
  metricsText(): Promise<string>;
  /** Sum of a metric's samples whose labels include all of `labels` (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Resolves once GET /ready answers 200 (`ready`) or 503 (`!ready`). */
  waitReady(ready: boolean, ms?: number): Promise<void>;
  /** Resident set size of the process in bytes, from /proc/PID/status. */
  rss(): number;
}

/** A minimal config with a known secret and API key; `extra` is deep-merged over it. */
export function baseConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    client: {
      token: { hmac_secret_key: 'test-secret-' + randomBytes(8).toString('hex') },
      allowed_origins: ['*'],
    },
    http_api: { key: 'test-api-key-' + randomBytes(8).toString('hex') },
    log: { level: 'info' },
  };
  return deepMerge(base, extra);
}

export interface StartOptions {
  /** Extra environment variables for the server process. */
  env?: Record<string, string>;
  /** Extra CLI arguments after `serve --config FILE` (e.g. `--workers 2`). */
  args?: string[];
  /** Do not set http_server.port in the file (the caller sets it another way, e.g. env). */
  portFromEnv?: boolean;
  /** Use this config object exactly as the file (no defaults added except the port and loopback address). */
  raw?: boolean;
  /** The port the server will listen on when the caller sets it (env, flags); a free one otherwise. */
  port?: number;
  /** `serve` with no --config at all (zero-config dev mode; pass the port in `args` and `port`). */
  noConfig?: boolean;
  /** Start with this existing file as it is (the port then comes from SWITCHBOARD_HTTP_SERVER_PORT). */
  configFile?: string;
  /** The connection-token secret and API key when they do not come from the written config (env, a given file). */
  secret?: string;
  apiKey?: string;
  /** Also wait until stdout matches this (e.g. a banner printed after the listening line). */
  output?: RegExp;
  timeoutMs?: number;
}

/** A child process of the test, killed (SIGKILL, by PID) when the test ends. */
export interface Launched {
  readonly proc: ChildProcess;
  /** Resolves when the process exits. */
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
  /** True while the process has not exited. */
  alive(): boolean;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `node ...argv` and resolves once `ready()` holds (polled; a throw
 * counts as not yet). Fails at once with its output if the process exits
 * first. The process is killed when `t` ends.
 */
export async function launch(
  t: TestContextLike,
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; ready: (p: Launched) => Promise<boolean>; what: string; timeoutMs?: number },
): Promise<Launched> {
  const proc = spawn(process.execPath, argv, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  let done = false;
  const exited = new Promise<Exit>((res) =>
    proc.on('exit', (code, signal) => {
      done = true;
      res({ code, signal });
    }),
  );
  const p: Launched = {
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    alive: () => !done,
    kill(signal = 'SIGKILL') {
      if (!done && proc.pid !== undefined) process.kill(proc.pid, signal);
    },
  };
  t.after(async () => {
    if (!done) {
      p.kill('SIGKILL');
      await exited;
    }
  });
  try {
    await until(opts.what, opts.timeoutMs ?? 30_000, async () => {
      if (done) throw new GiveUp(`process exited before ${opts.what}`);
      return opts.ready(p);
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\nstdout:\n${out}\nstderr:\n${err}`);
  }
  return p;
}

/**
 * Writes `config` (merged over `baseConfig()` unless `raw`) to a temp file,
 * starts `switchboard serve --config FILE`, waits for /health.
 */
export async function startServer(
  t: TestContextLike,
  config: Record<string, unknown> = {},
  opts: StartOptions = {},
): Promise<RunningServer> {
  const dir = tempDir(t);
  const port = opts.port ?? (await freePort());
  const portFromEnv = opts.portFromEnv || opts.configFile !== undefined || opts.noConfig;
  const cfg = opts.configFile || opts.noConfig ? {} : opts.raw ? structuredClone(config) : baseConfig(config);
  const configFile = opts.noConfig ? '' : (opts.configFile ?? join(dir, 'switchboard.json'));
  if (!opts.configFile && !opts.noConfig) {
    const hs = (cfg.http_server as Record<string, unknown> | undefined) ?? {};
    cfg.http_server = { address: '127.0.0.1', ...hs, ...(portFromEnv ? {} : { port }) };
    writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  }
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), ...(opts.env ?? {}) };
  if (portFromEnv && !opts.noConfig && env.SWITCHBOARD_HTTP_SERVER_PORT === undefined) env.SWITCHBOARD_HTTP_SERVER_PORT = String(port);
  const http = `http://127.0.0.1:${port}`;
  const p = await launch(t, [CLI, 'serve', ...(opts.noConfig ? [] : ['--config', configFile]), ...(opts.args ?? [])], {
    cwd: dir,
    env,
    what: `GET ${http}/health` + (opts.output ? ` and ${String(opts.output)} on stdout` : ''),
    // /health can answer before the CLI has printed what it prints after listening (the dev banner).
    ready: async (l) => (!opts.output || opts.output.test(l.stdout())) && (await fetch(http + '/health')).status === 200,
    timeoutMs: opts.timeoutMs,
  });

  const client = (cfg.client ?? {}) as { token?: { hmac_secret_key?: string } };
  const apiKey = opts.apiKey ?? ((cfg.http_api ?? {}) as { key?: string }).key ?? '';
  const server: RunningServer = {
    port,
    http,
    ws: `ws://127.0.0.1:${port}/connection/websocket`,
    api: `${http}/api`,
    apiKey,
    secret: opts.secret ?? client.token?.hmac_secret_key ?? '',
    configFile,
    ...p,
    async call(method, params = {}) {
      const r = await fetch(`${http}/api/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body: JSON.stringify(params),
        signal: AbortSignal.timeout(10_000),
      });
      return r.json();
    },
    async metricsText() {
      const r = await fetch(http + '/metrics');
      return r.text();
    },
    async metric(name, labels = {}) {
      return sumMetric(await server.metricsText(), name, labels);
    },
    async waitReady(ready, ms = 10_000) {
      await until(`/ready = ${ready} on ${port}`, ms, async () => (await fetch(http + '/ready')).ok === ready);
    },
    rss() {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'));
      if (!m) throw new Error(`no VmRSS in /proc/${p.proc.pid}/status`);
      return Number(m[1]) * 1024;
    },
  };
  return server;
}

/** The parent's env without SWITCHBOARD_* variables, so tests do not leak into each other. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHBOARD_')) env[k] = v;
  return env;
}

/** Sums the samples of `name` (exact metric name) whose labels include `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** Runs the CLI to completion (for check-config, token, --version, --help). */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd,
      env: { ...cleanEnv(), ...(opts.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`cli ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 15_000);
    proc.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}
