/**
 * A real Redis Cluster of the test's own: six redis-server processes in
 * cluster mode on free ports (3 masters, 3 replicas), joined with
 * `redis-cli --cluster create`. Each test that needs one starts its own and
 * it is killed when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindable } from './net.js';
import { redisCommand } from './redis.js';
import type { TestContextLike } from './scope.js';
import { until } from './wait.js';

/**
 * A port whose cluster bus port (port + 10000) is free too: 10000-14999 and
 * 20000-24999, below the kernel's ephemeral range and apart from freePort's.
 */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 10000 + Math.floor(Math.random() * 5000);
    if (taken.has(p) || taken.has(p + 10000)) continue;
    if ((await bindable(p)) && (await bindable(p + 10000))) {
      taken.add(p);
      taken.add(p + 10000);
      return p;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

/** The `INFO replication` / `CLUSTER INFO` field `name` of a server. */
export async function infoField(port: number, section: string, name: string): Promise<string | undefined> {
  const text = await redisCommand(port, ...(section === 'cluster' ? ['CLUSTER', 'INFO'] : ['INFO', section]));
  const m = new RegExp(`${name}:([^\\r\\n]*)`).exec(text);
  return m?.[1];
}

export class RedisCluster {
  readonly ports: number[] = [];
  private readonly procs = new Map<number, ChildProcess>();
  private dir = '';

  /** Seed addresses for `engine.redis.cluster_addresses`. */
  get addresses(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p}`);
  }

  static async start(t: TestContextLike, nodes = 6, replicas = 1): Promise<RedisCluster> {
    const c = new RedisCluster();
    t.after(() => c.stop());
    await c.boot(nodes, replicas);
    return c;
  }

  private async boot(nodes: number, replicas: number): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'sb-cluster-'));
    const taken = new Set<number>();
    for (let i = 0; i < nodes; i++) this.ports.push(await clusterPort(taken));
    for (const p of this.ports) this.spawn(p);
    for (const p of this.ports) await until(`cluster node ${p}`, 10_000, async () => (await redisCommand(p, 'PING')) === '+PONG');
    const r = spawnSync('redis-cli', ['--cluster', 'create', ...this.addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (r.status !== 0) throw new Error(`redis-cli --cluster create failed: ${r.stdout}\n${r.stderr}`);
    await until('cluster_state:ok on every node', 30_000, async () => {
      for (const p of this.ports) if ((await infoField(p, 'cluster', 'cluster_state')) !== 'ok') return false;
      return true;
    });
    // Every replica has synced with its master, so a failover has data to promote.
    await until('replicas in sync', 30_000, async () => {
      for (const p of this.ports) {
        if ((await infoField(p, 'replication', 'role')) !== 'slave') continue;
        if ((await infoField(p, 'replication', 'master_link_status')) !== 'up') return false;
      }
      return true;
    });
  }

  private spawn(port: number): void {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        // A replica is promoted however long it was cut off (the tests pause one on purpose).
        '--cluster-replica-validity-factor',
        '0',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    this.procs.set(port, proc);
  }

  /** The port of the master serving `key`'s slot. */
  async masterOf(key: string): Promise<number> {
    const slot = Number((await redisCommand(this.ports[0]!, 'CLUSTER', 'KEYSLOT', key)).replace(/^:/, ''));
    for (const p of this.ports) {
      if ((await infoField(p, 'replication', 'role')) !== 'master') continue;
      const slots = await clusterSlotsOf(p);
      if (slots.some(([a, b]) => slot >= a && slot <= b)) return p;
    }
    throw new Error(`no master for slot ${slot}`);
  }

  /** The replicas (ports) of the master on `port`. */
  async replicasOf(port: number): Promise<number[]> {
    const out: number[] = [];
    for (const p of this.ports) {
      if (p === port) continue;
      if ((await infoField(p, 'replication', 'role')) !== 'slave') continue;
      if (Number(await infoField(p, 'replication', 'master_port')) === port) out.push(p);
    }
    return out;
  }

  /** SIGKILL one node. */
  kill(port: number): void {
    this.procs.get(port)?.kill('SIGKILL');
  }

  /**
   * Brings a killed master back as a new, empty node that joins as a replica
   * of `master` (its old identity forgotten). Restarting it with its old
   * cluster config would let it serve its old slots, empty, until it learns
   * of the failover: writes there would start streams over.
   */
  async rejoinAsReplica(port: number, master: number): Promise<void> {
    const old = this.procs.get(port);
    if (old && old.exitCode === null && old.signalCode === null) {
      const exited = new Promise((r) => old.once('exit', r));
      old.kill('SIGKILL');
      await exited;
    }
    rmSync(join(this.dir, `nodes-${port}.conf`), { force: true });
    this.spawn(port);
    await until(`cluster node ${port} back`, 10_000, async () => (await redisCommand(port, 'PING')) === '+PONG');
    const masterId = (await redisCommand(master, 'CLUSTER', 'MYID')).split('\r\n').find((l) => /^[0-9a-f]{40}$/.test(l))!;
    await redisCommand(port, 'CLUSTER', 'MEET', '127.0.0.1', String(master));
    await until(`node ${port} knows its master`, 20_000, async () => (await redisCommand(port, 'CLUSTER', 'NODES')).includes(masterId));
    await until(`node ${port} replicating`, 20_000, async () => {
      const r = await redisCommand(port, 'CLUSTER', 'REPLICATE', masterId).catch((e: unknown) => String(e));
      return r.startsWith('+OK');
    });
    await until(`node ${port} in sync`, 20_000, async () => (await infoField(port, 'replication', 'master_link_status')) === 'up');
  }

  /** SIGSTOP / SIGCONT one node: it hangs with its sockets open. */
  pause(port: number): void {
    this.procs.get(port)?.kill('SIGSTOP');
  }

  resume(port: number): void {
    this.procs.get(port)?.kill('SIGCONT');
  }

  stop(): void {
    for (const p of this.procs.values()) p.kill('SIGCONT');
    for (const p of this.procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    this.procs.clear();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Slot ranges a master serves, from its own CLUSTER NODES line (flag `myself`). */
async function clusterSlotsOf(port: number): Promise<Array<[number, number]>> {
  const text = await redisCommand(port, 'CLUSTER', 'NODES');
  const mine = text.split('\n').find((l) => l.includes('myself'));
  if (!mine) return [];
  return mine
    .trim()
    .split(' ')
    .slice(8)
    .filter((s) => /^\d+(-\d+)?$/.test(s))
    .map((s) => {
      const [a, b] = s.split('-').map(Number);
      return [a!, b ?? a!] as [number, number];
    });
}
