/**
 * Real Redis for the engine, fault and multi-node tests: the machine's
 * Redis (127.0.0.1:6379) with a unique key prefix per run, or a
 * redis-server of the test's own on a free port that it may kill, pause and
 * restart; and the config of a `switchboard serve` node on Redis (start it
 * with `startServer(t, nodeConfig(...), { raw: true })`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { deepMerge } from '../../src/config/load.js';
import { freePort } from './net.js';
import type { TestContextLike } from './scope.js';
import { until } from './wait.js';

export const SHARED_REDIS = process.env.SWITCHBOARD_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test run or file uses. */
export function uniquePrefix(name: string): string {
  return `sbtest-${name}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** One RESP round trip over a plain socket (PING, DBSIZE, …), without a client library. */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return redisCommandAt('127.0.0.1', port, ...args);
}

/** `redisCommand` to a Redis on another address. */
export function redisCommandAt(host: string, port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, host);
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

/**
 * Publishes through a node's API until it is acknowledged: a failover
 * answers 100 for a while, and the idempotency key makes each retry the
 * same publication.
 */
export async function publishAcked(
  node: { call(method: string, params: unknown): Promise<any> },
  channel: string,
  data: unknown,
  key: string,
  attempts = 600,
): Promise<{ offset: number; epoch: string }> {
  for (let attempt = 0; ; attempt++) {
    const r = await node.call('publish', { channel, data, idempotency_key: key });
    if (r.result) return r.result;
    if (r.error?.code !== 100) throw new Error(`only "temporarily unavailable" is expected: ${JSON.stringify(r)}`);
    if (attempt > attempts) throw new Error(`publish ${key} not acknowledged after ${attempt} attempts`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** The connection-token HMAC secret of `nodeConfig` (for tests that mint tokens for in-process nodes). */
export const SECRET = 'redis-test-secret-0123456789abcdef';

/** Config of a test node: redis engine, history and recovery on, presence and join/leave on. */
export function nodeConfig(redisUrl: string | string[], prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    log: { level: 'warn' },
    client: { token: { hmac_secret_key: SECRET }, ping_interval: '25s' },
    http_api: { key: 'redis-test-api-key' },
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

// Kept only for engine-contract.test.ts and redis-engine.test.ts (owned by the
// engine slice): they should import `until` from ./wait.js and
// `TestContextLike` from ./scope.js; drop these two lines when they do.
export { until as waitUntil } from './wait.js';
export type { TestContextLike } from './scope.js';
