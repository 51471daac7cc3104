/**
 * A real Redis Sentinel set of the test's own: a master, a replica and three
 * sentinels (redis-server --sentinel) on free ports, killed when the test
 * ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { redisCommand } from './redis.js';
import type { TestContextLike } from './scope.js';
import { until } from './wait.js';

export const MASTER_NAME = 'sbmaster';

export class RedisSentinelSet {
  master = 0;
  replica = 0;
  readonly sentinels: number[] = [];
  private readonly procs = new Map<number, ChildProcess>();
  private dir = '';

  /** `engine.redis.sentinel_addresses`. */
  get addresses(): string[] {
    return this.sentinels.map((p) => `127.0.0.1:${p}`);
  }

  static async start(t: TestContextLike): Promise<RedisSentinelSet> {
    const s = new RedisSentinelSet();
    t.after(() => s.stop());
    await s.boot();
    return s;
  }

  private async boot(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'sb-sentinel-'));
    this.master = await freePort();
    this.replica = await freePort();
    this.server(this.master);
    this.server(this.replica, ['--replicaof', '127.0.0.1', String(this.master)]);
    for (const p of [this.master, this.replica]) await until(`redis ${p}`, 10_000, async () => (await redisCommand(p, 'PING')) === '+PONG');
    await until('the replica in sync', 20_000, async () =>
      /master_link_status:up/.test(await redisCommand(this.replica, 'INFO', 'replication')),
    );
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(this.dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${this.dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${this.master} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      this.procs.set(port, spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
      this.sentinels.push(port);
    }
    for (const p of this.sentinels) {
      await until(`sentinel ${p} sees the replica`, 20_000, async () => {
        const r = await redisCommand(p, 'SENTINEL', 'REPLICAS', MASTER_NAME).catch(() => '');
        return r.includes(String(this.replica));
      });
    }
  }

  private server(port: number, extra: string[] = []): void {
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...extra],
      { stdio: 'ignore' },
    );
    this.procs.set(port, proc);
  }

  /** The master's port as the sentinels tell it now. */
  async currentMaster(): Promise<number> {
    const r = await redisCommand(this.sentinels[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME);
    const m = /(\d+)\s*$/.exec(r);
    return Number(m?.[1] ?? 0);
  }

  /** SIGKILL a server. */
  kill(port: number): void {
    this.procs.get(port)?.kill('SIGKILL');
  }

  /**
   * Starts a killed server again on its port, empty, as a replica of `master`. Not as a master
   * for the sentinels to demote: until they do, a client that asks a sentinel not yet told of
   * the failover is sent to it, and a write there starts the streams over.
   */
  async restart(port: number, master: number): Promise<void> {
    this.server(port, ['--replicaof', '127.0.0.1', String(master)]);
    await until(`redis ${port} back`, 10_000, async () => (await redisCommand(port, 'PING')) === '+PONG');
  }

  stop(): void {
    for (const p of this.procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    this.procs.clear();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
