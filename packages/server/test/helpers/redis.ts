/**
 * Real Redis and real Switchboard processes for the engine, fault and
 * multi-node tests: the machine's Redis (127.0.0.1:6379) with a unique key
 * prefix per run, or a redis-server of our own on a free port that a test
 * may kill and restart; `switchboard serve` processes on free ports, killed
 * by PID when the test ends, pass or fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepMerge } from '../../src/config/load.js';

export interface TestContextLike {
  after(fn: () => unknown): void;
}

export const SHARED_REDIS = process.env.SWITCHBOARD_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test run or file uses. */
export function uniquePrefix(name: string): string {
  return `sbtest-${name}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** One RESP round trip over a plain socket (PING, DBSIZE, …), without a client library. */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('redis command timed out'));
    }, 2000);
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.endsWith('\r\n')) {
        clearTimeout(timer);
        sock.end();
        resolve(buf.trim());
      }
    });
    sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
  });
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A redis-server of this test's own, on a free port; `stop()` kills it, `start()` brings it back on the same port (empty). */
export class OwnRedis {
  private proc: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  static async start(t: TestContextLike): Promise<OwnRedis> {
    const r = new OwnRedis(await freePort());
    t.after(() => r.stop());
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await until(`redis-server on ${this.port}`, 5000, async () => (await redisCommand(this.port, 'PING')) === '+PONG');
  }

  /** SIGKILL: Redis is gone, its data with it. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP / SIGCONT: Redis hangs with its sockets open. */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }
}

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');

export const SECRET = 'redis-test-secret-0123456789abcdef';
export const API_KEY = 'redis-test-api-key';

/** Config of a test node: redis engine, history and recovery on, presence and join/leave on. */
export function nodeConfig(redisUrl: string | string[], prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    log: { level: 'warn' },
    client: { token: { hmac_secret_key: SECRET }, ping_interval: '25s' },
    http_api: { key: API_KEY },
    engine: {
      type: 'redis',
      redis: {
        address: redisUrl,
        prefix,
        connect_timeout: '500ms',
        io_timeout: '1s',
        circuit_breaker_cooldown: '300ms',
        presence_ttl: '60s',
      },
    },
    channel: {
      without_namespace: {
        history_size: 1000,
        history_ttl: '300s',
        force_recovery: true,
        allow_subscribe_for_client: true,
        allow_publish_for_client: true,
        presence: true,
        join_leave: true,
        allow_presence_for_subscriber: true,
      },
    },
    shutdown: { timeout: '5s', batch_size: 100, batch_interval: '5ms' },
  };
  return deepMerge(base, extra);
}

/** A `switchboard serve` process. */
export class NodeProcess {
  readonly output: string[] = [];
  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
  ) {
    const keep = (d: Buffer): void => {
      this.output.push(d.toString());
      if (this.output.length > 200) this.output.shift();
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
  }

  static async start(t: TestContextLike, config: Record<string, unknown>, args: string[] = []): Promise<NodeProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sbnode-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(deepMerge(config, { http_server: { port, address: '127.0.0.1' } })));
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const n = new NodeProcess(proc, port);
    t.after(() => n.kill('SIGKILL'));
    try {
      await n.waitHealthy();
    } catch (e) {
      n.kill('SIGKILL');
      throw new Error(`${(e as Error).message}\n${n.output.join('')}`);
    }
    return n;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async waitHealthy(ms = 10_000): Promise<void> {
    await until(`node on ${this.port} to answer /health`, ms, async () => {
      if (!this.alive) throw new Error(`node exited (${this.proc.exitCode ?? this.proc.signalCode})`);
      return (await fetch(this.url + '/health')).ok;
    });
  }

  async waitReady(ready: boolean, ms = 10_000): Promise<void> {
    await until(`node on ${this.port} /ready = ${ready}`, ms, async () => (await fetch(this.url + '/ready')).ok === ready);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(signal);
  }

  exited(): Promise<number | string | null> {
    if (!this.alive) return Promise.resolve(this.proc.exitCode ?? this.proc.signalCode);
    return new Promise((r) => this.proc.once('exit', (code, sig) => r(code ?? sig)));
  }

  /** POST /api/<method>; returns the parsed body. */
  async api<T = any>(method: string, body: Record<string, unknown> = {}): Promise<T> {
    const res = await fetch(`${this.url}/api/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    return (await res.json()) as T;
  }
}

export { until as waitUntil };

/**
 * A TCP proxy standing in for a load balancer: clients keep one address
 * while the test moves the backend (`target`), refuses new connections
 * (`refusing`) or cuts the open ones.
 */
export class TcpProxy {
  target: number;
  refusing = false;
  private readonly sockets = new Set<import('node:net').Socket>();
  private constructor(
    private readonly server: import('node:net').Server,
    readonly port: number,
    target: number,
  ) {
    this.target = target;
  }

  static async start(t: TestContextLike, target: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    const p = new TcpProxy(server, typeof a === 'object' && a ? a.port : 0, target);
    server.on('connection', (c) => p.accept(c));
    t.after(() => p.close());
    return p;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  private accept(client: import('node:net').Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target, '127.0.0.1');
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = (): void => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cutAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  close(): void {
    this.cutAll();
    this.server.close();
  }
}

export interface Received {
  readonly client: import('centrifuge').Centrifuge;
  readonly sub: import('centrifuge').Subscription;
  /** Offsets and data of every publication, in arrival order. */
  readonly pubs: Array<{ offset: number; data: unknown }>;
  readonly subscribed: Array<{ wasRecovering: boolean; recovered: boolean }>;
  readonly unsubscribed: number[];
  /** Codes of the client's transitions to connecting (server disconnects such as 3001). */
  readonly reconnectCodes: number[];
  /** Resolves when `n` publications have arrived (rejects after `ms`). */
  until(n: number, ms?: number): Promise<void>;
}

/** A real `centrifuge` client for `user`, subscribed to `channel`, recording what it gets. */
export async function subscribedClient(t: TestContextLike, url: string, user: string, channel: string): Promise<Received> {
  const { Centrifuge } = await import('centrifuge');
  const { BrowserLikeWebSocket, mintToken } = await import('./client.js');
  const token = await mintToken(SECRET, { sub: user });
  const client = new Centrifuge(url, {
    websocket: BrowserLikeWebSocket,
    token,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
  });
  t.after(() => client.disconnect());
  const sub = client.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 300 });
  const r: Received = {
    client,
    sub,
    pubs: [],
    subscribed: [],
    unsubscribed: [],
    reconnectCodes: [],
    async until(n, ms = 15_000) {
      await until(`${n} publications for ${user} (have ${r.pubs.length})`, ms, async () => r.pubs.length >= n);
    },
  };
  sub.on('publication', (ctx) => r.pubs.push({ offset: Number(ctx.offset), data: ctx.data }));
  sub.on('subscribed', (ctx) => r.subscribed.push({ wasRecovering: !!ctx.wasRecovering, recovered: !!ctx.recovered }));
  sub.on('subscribing', (ctx) => {
    if (ctx.code >= 2000 && ctx.code < 3000) r.unsubscribed.push(ctx.code);
  });
  client.on('connecting', (ctx) => r.reconnectCodes.push(ctx.code));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${user} not subscribed within 10 s`)), 10_000);
    sub.once('subscribed', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  sub.subscribe();
  client.connect();
  await ready;
  return r;
}

/** Asserts-friendly: the offsets a client got, and whether they are exactly from..to in order. */
export function offsetsOf(r: Received): number[] {
  return r.pubs.map((p) => p.offset);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
