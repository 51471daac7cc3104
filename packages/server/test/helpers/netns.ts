/**
 * A Redis on a test host of its own: a network namespace the test makes,
 * joined to this host by two veth links (one per node that uses it), so a
 * test can cut one node's link to Redis (the link goes down: packets are
 * dropped, TCP stalls, nothing is reset) and heal it. Local addresses only
 * (10.213.x.y/30); everything is removed when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import type { TestContextLike } from './scope.js';
import { until } from './wait.js';
import { redisCommandAt } from './redis.js';

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error}`);
}

/** Why network namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  const name = `sbprobe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.error) return `iproute2's ip is not installed (${r.error.message})`;
  if (r.status !== 0) return `ip netns add failed: ${r.stderr.trim()} (needs root / CAP_NET_ADMIN)`;
  spawnSync('ip', ['netns', 'del', name]);
  return undefined;
}

export class PartitionedRedis {
  private readonly ns: string;
  private readonly n: number;
  private proc: ChildProcess | undefined;
  readonly links: string[] = [];

  private constructor(readonly linkCount: number) {
    this.n = randomInt(0, 60);
    this.ns = `sbpart${process.pid}x${this.n}`;
  }

  /** Redis's address over link `i` (give each node its own). */
  url(i: number): string {
    return `redis://${this.addr(i, 2)}:6379`;
  }

  private addr(link: number, host: 1 | 2): string {
    return `10.213.${this.n}.${link * 4 + host}`;
  }

  static async start(t: TestContextLike, links = 2): Promise<PartitionedRedis> {
    const r = new PartitionedRedis(links);
    t.after(() => r.stop());
    r.setup();
    await r.startRedis();
    return r;
  }

  private setup(): void {
    ip('netns', 'add', this.ns);
    ip('-n', this.ns, 'link', 'set', 'lo', 'up');
    for (let i = 0; i < this.linkCount; i++) {
      const host = `sbh${this.n}x${i}x${process.pid % 10000}`;
      const peer = `sbn${this.n}x${i}`;
      ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
      ip('link', 'set', peer, 'netns', this.ns);
      ip('addr', 'add', `${this.addr(i, 1)}/30`, 'dev', host);
      ip('link', 'set', host, 'up');
      ip('-n', this.ns, 'addr', 'add', `${this.addr(i, 2)}/30`, 'dev', peer);
      ip('-n', this.ns, 'link', 'set', peer, 'up');
      this.links.push(host);
    }
  }

  private async startRedis(): Promise<void> {
    const binds = this.links.map((_, i) => this.addr(i, 2));
    this.proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        'redis-server',
        '--port',
        '6379',
        '--bind',
        ...binds,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < this.linkCount; i++) {
      await until(
        `redis over link ${i}`,
        10_000,
        async () => (await redisCommandAt(this.addr(i, 2), 6379, 'PING').catch(() => '')) === '+PONG',
      );
    }
  }

  /** Link `i` down: whatever goes over it is dropped. */
  cut(i: number): void {
    ip('link', 'set', this.links[i]!, 'down');
  }

  heal(i: number): void {
    ip('link', 'set', this.links[i]!, 'up');
  }

  stop(): void {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
    // ip netns exec's child (redis-server) dies with the namespace's last process; make sure of it.
    spawnSync('ip', ['netns', 'pids', this.ns], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter(Boolean)
      .forEach((pid) => spawnSync('kill', ['-9', pid]));
    for (const l of this.links) spawnSync('ip', ['link', 'del', l]);
    spawnSync('ip', ['netns', 'del', this.ns]);
  }
}
