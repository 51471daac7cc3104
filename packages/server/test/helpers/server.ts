/**
 * Starts Switchboard the way users do: `node dist/src/cli.js serve --config
 * <file>` in a child process on a free port, waits for GET /health, and
 * kills it (by PID) when the test ends, passed or failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepMerge } from '../../src/config/load.js';

/** dist/test/helpers → dist/src/cli.js */
export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export interface TestContextLike {
  after(fn: () => unknown): void;
}

/**
 * A cleanup scope for resources shared by the tests of one file:
 * `const S = scope(); after(() => S.close());` then `startServer(S, …)` in `before`.
 * Cleanups run in reverse order.
 */
export function scope(): TestContextLike & { close(): Promise<void> } {
  const fns: Array<() => unknown> = [];
  return {
    after(fn) {
      fns.push(fn);
    },
    async close() {
      while (fns.length > 0) {
        try {
          await fns.pop()!();
        } catch {
          /* keep cleaning */
        }
      }
    },
  };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningServer {
  readonly port: number;
  readonly http: string;
  readonly ws: string;
  readonly api: string;
  readonly apiKey: string;
  readonly secret: string;
  readonly configFile: string;
  readonly proc: ChildProcess;
  /** Resolves when the process exits. */
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
  /** POST /api/<method> with the key; returns the parsed JSON body. */
  call(method: string, params?: unknown): Promise<Record<string, unknown>>;
  /** The Prometheus text of GET /metrics. */
  metricsText(): Promise<string>;
  /** Sum of a metric's samples whose labels include all of `labels` (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** True while the process has not exited. */
  alive(): boolean;
  kill(signal?: NodeJS.Signals): void;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

export function tempDir(t: TestContextLike): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
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
  /** Extra CLI arguments after `serve --config FILE`. */
  args?: string[];
  /** Do not set http_server.port in the file (the caller sets it another way, e.g. env). */
  portFromEnv?: boolean;
  /** Use this config object exactly as the file (no defaults added except the port). */
  raw?: boolean;
  /** The port the server will listen on when the caller sets it (env, flags); a free one otherwise. */
  port?: number;
  /** Start with this existing file as it is (the port then comes from SWITCHBOARD_HTTP_SERVER_PORT). */
  configFile?: string;
  /** The connection-token secret and API key when they do not come from the written config (env, a given file). */
  secret?: string;
  apiKey?: string;
  timeoutMs?: number;
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
  const portFromEnv = opts.portFromEnv || opts.configFile !== undefined;
  const cfg = opts.configFile ? {} : opts.raw ? structuredClone(config) : baseConfig(config);
  if (!portFromEnv) cfg.http_server = { ...((cfg.http_server as object | undefined) ?? {}), port };
  const configFile = opts.configFile ?? join(dir, 'switchboard.json');
  if (!opts.configFile) writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), ...(opts.env ?? {}) };
  if (portFromEnv && env.SWITCHBOARD_HTTP_SERVER_PORT === undefined) env.SWITCHBOARD_HTTP_SERVER_PORT = String(port);
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', configFile, ...(opts.args ?? [])], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  t.after(async () => {
    if (!done && proc.pid !== undefined) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
  });

  const http = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    if (done) throw new Error(`server exited before it was healthy\nstdout:\n${out}\nstderr:\n${err}`);
    try {
      const r = await fetch(http + '/health');
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`server not healthy after ${opts.timeoutMs ?? 15_000} ms\nstdout:\n${out}\nstderr:\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }

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
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    async call(method, params = {}) {
      const r = await fetch(`${http}/api/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body: JSON.stringify(params),
      });
      return (await r.json()) as Record<string, unknown>;
    },
    async metricsText() {
      const r = await fetch(http + '/metrics');
      return r.text();
    },
    async metric(name, labels = {}) {
      return sumMetric(await server.metricsText(), name, labels);
    },
    alive: () => !done,
    kill(signal = 'SIGKILL') {
      if (!done && proc.pid !== undefined) process.kill(proc.pid, signal);
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
