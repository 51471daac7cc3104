import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { descendants, freePort, sleep, spawnTracked, treeCpuSeconds, treeRssBytes, treeWrittenBytes, type Spawned } from '../proc.js';
import { BENCH_TOKEN_SECRET, type ClientKind } from '../types.js';

const here = (rel: string): string => fileURLToPath(new URL(rel, import.meta.url));
/** packages/server/dist/src/cli.js, from packages/bench/dist/src/sut/ */
/** The harness's preload that turns SIGUSR2 into a full GC (see gc-on-signal.ts). */
const GC_ON_SIGNAL = new URL('./gc-on-signal.js', import.meta.url).href;
export const SWITCHBOARD_CLI = process.env.SWITCHBOARD_CLI ?? here('../../../../server/dist/src/cli.js');

export interface SutOptions {
  /** Keep channel history so that clients can recover after a reconnect. */
  history?: boolean;
  /** More channel namespaces (config objects with `name`), e.g. one with a small history for many channels. */
  namespaces?: Record<string, unknown>[];
}

export interface RunningSut {
  port: number;
  wsUrl: string;
  apiBase: string;
  apiKey?: string;
  pid: number;
  /** RSS of the server's process tree, bytes. */
  rss(): number;
  /** CPU seconds of the server's process tree. */
  cpu(): number;
  /** Bytes the server's process tree has written (sockets, mostly), from /proc/<pid>/io. */
  written(): number;
  /** V8 heap used, bytes, if the system exposes it. */
  heapUsed(): Promise<number | undefined>;
  /** Runs a full GC in the server's processes (before memory is read). */
  settle(): Promise<void>;
  /** Last few KB of the server's stdout+stderr. */
  logTail(): string;
  stop(): Promise<void>;
}

export interface SystemDef {
  name: string;
  kind: ClientKind;
  transports?: string[];
  /** Processes that hold client connections; each may hold < 20,000 open files. */
  processes: number;
  describe: string;
  /** Why this system cannot run here at all, or undefined. */
  unavailable(): string | undefined;
  start(opts: SutOptions): Promise<RunningSut>;
}

const words = (v: string | undefined): string[] => v?.split(' ').filter(Boolean) ?? [];

/**
 * The server under test: node with `args`, plus BENCH_SERVER_NODE_ARGS (node flags for the
 * server only, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), run under BENCH_SERVER_WRAPPER if
 * set (e.g. `valgrind --tool=callgrind --instr-atstart=no`, see connect-storm.ts --callgrind).
 */
function spawnServer(args: string[], env?: NodeJS.ProcessEnv): Spawned {
  const [first, ...rest] = args;
  const node = [process.execPath, first!, ...words(process.env.BENCH_SERVER_NODE_ARGS), ...rest];
  const wrap = words(process.env.BENCH_SERVER_WRAPPER);
  return wrap.length ? spawnTracked(wrap[0]!, [...wrap.slice(1), ...node], env) : spawnTracked(node[0]!, node.slice(1), env);
}

/** Start timeout: a server under valgrind starts some 20 times slower. */
const startTimeout = (ms: number): number => (process.env.BENCH_SERVER_WRAPPER ? ms * 20 : ms);

async function waitHealthy(proc: Spawned, url: string, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  let lastErr = '';
  while (performance.now() - t0 < timeoutMs) {
    if (proc.exited()) throw new Error(`exited before ready: ${proc.tail().trim().slice(-600)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
      lastErr = `HTTP ${r.status}`;
    } catch (e) {
      lastErr = String((e as Error).message);
    }
    await sleep(100);
  }
  await proc.stop();
  throw new Error(`not healthy within ${timeoutMs} ms (${lastErr}): ${proc.tail().trim().slice(-600)}`);
}

function running(
  proc: Spawned,
  port: number,
  wsPath: string,
  heap: () => Promise<number | undefined>,
  settle: () => Promise<void>,
  apiKey?: string,
  cleanup?: () => Promise<void>,
): RunningSut {
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}${wsPath}`,
    apiBase: `http://127.0.0.1:${port}`,
    apiKey,
    pid: proc.pid,
    rss: () => treeRssBytes(proc.pid),
    cpu: () => treeCpuSeconds(proc.pid),
    written: () => treeWrittenBytes(proc.pid),
    heapUsed: heap,
    settle,
    logTail: () => proc.tail(),
    stop: async () => {
      await proc.stop();
      await cleanup?.();
    },
  };
}

/** A peer script from this package, run with --expose-gc so /stats reports a settled heap. */
function peer(name: string, script: string, kind: ClientKind, describe: string, transports?: string[]): SystemDef {
  return {
    name,
    kind,
    transports,
    processes: 1,
    describe,
    unavailable: () => undefined,
    async start() {
      const port = await freePort();
      const proc = spawnServer(['--expose-gc', here(`../peers/${script}`), '--port', String(port)]);
      await waitHealthy(proc, `http://127.0.0.1:${port}/health`, startTimeout(15_000));
      const heap = async (): Promise<number | undefined> => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/stats`, { signal: AbortSignal.timeout(10_000) });
          return ((await r.json()) as { heapUsed: number }).heapUsed;
        } catch {
          return undefined;
        }
      };
      // GET /stats runs gc() in the peer
      return running(proc, port, '/', heap, async () => void (await heap()));
    },
  };
}

export interface SwitchboardVariant {
  workers?: number;
  redis?: boolean;
  /** The clients' encoding: JSON (default) or Protobuf. */
  kind?: ClientKind;
  /** OpenTelemetry tracing on, exporting to an OTLP/HTTP sink the harness starts. */
  traced?: boolean;
  /** Webhooks for every event kind, delivered to the same sink. */
  webhooks?: boolean;
}

/** Config and environment for the tracing/webhook variants, pointing at the sink on `sinkPort`. */
function opsConfig(v: SwitchboardVariant, sinkPort: number): { cfg: Record<string, unknown>; env: NodeJS.ProcessEnv } {
  const cfg: Record<string, unknown> = {};
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (v.traced) {
    cfg.opentelemetry = { enabled: true };
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `http://127.0.0.1:${sinkPort}/v1/traces`;
  }
  if (v.webhooks) {
    const events = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'];
    cfg.webhooks = { secret: 'bench-webhook-secret', endpoints: [{ name: 'sink', url: `http://127.0.0.1:${sinkPort}/hook`, events }] };
  }
  return { cfg, env };
}

function redisServerPath(): string | undefined {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function switchboardConfig(port: number, opts: SutOptions, redisPort?: number): Record<string, unknown> {
  const ns: Record<string, unknown> = {
    allow_subscribe_for_client: true,
    allow_subscribe_for_anonymous: true,
    allow_publish_for_client: true,
    allow_publish_for_anonymous: true,
  };
  if (opts.history) Object.assign(ns, { history_size: 100_000, history_ttl: '600s', force_recovery: true });
  // Centrifugo's default recovery cap (300 publications) is 15 s at the storm's 20 pubs/s;
  // the storm measures recovery after up to a minute away, so the cap is raised to match.
  const client: Record<string, unknown> = {
    token: { hmac_secret_key: BENCH_TOKEN_SECRET },
    allow_anonymous_connect_without_token: true,
    queue_max_size: 10_485_760,
  };
  if (opts.history) client.recovery_max_publication_limit = 2000;
  const cfg: Record<string, unknown> = {
    http_server: { port, address: '127.0.0.1' },
    client,
    http_api: { key: 'bench-key' },
    channel: { without_namespace: ns, ...(opts.namespaces ? { namespaces: opts.namespaces } : {}) },
    log: { level: 'warn' },
  };
  if (redisPort !== undefined) cfg.engine = { type: 'redis', redis: { address: `redis://127.0.0.1:${redisPort}` } };
  return cfg;
}

function switchboard(name: string, v: SwitchboardVariant, describe: string): SystemDef {
  return {
    name,
    kind: v.kind ?? 'switchboard',
    processes: v.workers ?? 1,
    describe,
    unavailable: () => {
      if (!existsSync(SWITCHBOARD_CLI)) return `server not built (${SWITCHBOARD_CLI} missing)`;
      if (v.redis && !redisServerPath()) return 'redis-server not installed';
      return undefined;
    },
    async start(opts) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
      let redis: Spawned | undefined;
      let sink: Spawned | undefined;
      const cleanup = async (): Promise<void> => {
        await sink?.stop();
        await redis?.stop();
        rmSync(dir, { recursive: true, force: true });
      };
      try {
        let redisPort: number | undefined;
        if (v.redis) {
          redisPort = await freePort();
          redis = spawnTracked(redisServerPath()!, [
            '--port',
            String(redisPort),
            '--bind',
            '127.0.0.1',
            '--save',
            '',
            '--appendonly',
            'no',
            '--maxclients',
            '10000',
          ]);
          for (let i = 0; i < 50 && !redis.tail().includes('Ready to accept'); i++) await sleep(100);
        }
        let ops: { cfg: Record<string, unknown>; env?: NodeJS.ProcessEnv } = { cfg: {} };
        if (v.traced || v.webhooks) {
          const sinkPort = await freePort();
          sink = spawnTracked(process.execPath, [here('../peers/sink.js'), '--port', String(sinkPort)]);
          await waitHealthy(sink, `http://127.0.0.1:${sinkPort}/health`, 10_000);
          ops = opsConfig(v, sinkPort);
        }
        const configPath = join(dir, 'config.json');
        writeFileSync(configPath, JSON.stringify({ ...switchboardConfig(port, opts, redisPort), ...ops.cfg }));
        const args = [SWITCHBOARD_CLI, 'serve', '--config', configPath];
        if (v.workers && v.workers > 1) args.push('--workers', String(v.workers));
        const proc = spawnServer(['--expose-gc', '--import', GC_ON_SIGNAL, ...args], ops.env);
        // six workers starting on a busy 2-core machine take longer than one process
        await waitHealthy(proc, `http://127.0.0.1:${port}/health`, startTimeout((v.workers ?? 1) > 1 ? 90_000 : 20_000));
        const heap = async (): Promise<number | undefined> => {
          // prom-client default metrics, if the server exposes them
          try {
            const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
            if (r.status !== 200) return undefined;
            const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})?\s+([\d.e+]+)/m.exec(await r.text());
            return m ? Number(m[1]) : undefined;
          } catch {
            return undefined;
          }
        };
        const settle = async (): Promise<void> => {
          for (const pid of [proc.pid, ...descendants(proc.pid)]) {
            try {
              process.kill(pid, 'SIGUSR2');
            } catch {
              /* gone */
            }
          }
          await sleep(500);
        };
        return running(proc, port, '/connection/websocket', heap, settle, 'bench-key', cleanup);
      } catch (e) {
        await cleanup();
        throw e;
      }
    },
  };
}

export const SYSTEMS: SystemDef[] = [
  switchboard('switchboard', {}, 'Switchboard, memory engine, one process'),
  switchboard(
    'switchboard-protobuf',
    { kind: 'switchboard-protobuf' },
    'Switchboard, memory engine, one process; clients speak the Protobuf encoding',
  ),
  switchboard('switchboard-redis', { redis: true }, 'Switchboard, Redis engine (local redis-server)'),
  switchboard('switchboard-w6', { workers: 6, redis: true }, 'Switchboard, --workers 6 (node:cluster, Redis engine)'),
  switchboard('switchboard-w2', { workers: 2, redis: true }, 'Switchboard, --workers 2 (one per core; node:cluster, Redis engine)'),
  switchboard('switchboard-traced', { traced: true }, 'Switchboard, memory engine, OpenTelemetry tracing on (OTLP/HTTP to a local sink)'),
  switchboard('switchboard-webhooks', { webhooks: true }, 'Switchboard, memory engine, webhooks for every event (to a local sink)'),
  switchboard('switchboard-ops', { traced: true, webhooks: true }, 'Switchboard, memory engine, tracing and webhooks on'),
  peer('raw-ws', 'raw-ws-server.js', 'raw', 'naive ws broadcast: Map<channel, Set<ws>>, send() each'),
  peer('socketio-ws', 'socketio-server.js', 'socketio', 'Socket.IO 4, websocket transport only, rooms', ['websocket']),
  peer('socketio', 'socketio-server.js', 'socketio', 'Socket.IO 4, default transports (polling → websocket)'),
];

export function systemByName(name: string): SystemDef {
  const s = SYSTEMS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown system ${name}; known: ${SYSTEMS.map((x) => x.name).join(', ')}`);
  return s;
}
