import type { NodeInfo, NodeRegistry } from '../types.js';
import type { RedisBackend } from './backend.js';
import type { RedisBroker } from './broker.js';
import { servers } from './connection.js';
import { withTimeout } from './shard.js';

/** Live nodes in a hash + zset of expiries (node_info_ttl); channels from PUBSUB CHANNELS on every shard. */
export class RedisNodes implements NodeRegistry {
  private uid: string | undefined;

  constructor(
    private readonly b: RedisBackend,
    private readonly broker: RedisBroker,
  ) {}

  private keys(): [string, string] {
    return [`${this.b.prefix}.{nodes}`, `${this.b.prefix}.{nodes}.z`];
  }

  async announce(info: NodeInfo): Promise<void> {
    this.uid = info.uid;
    const now = Date.now();
    const ttl = Math.max(1000, this.b.cfg.node_info_ttl);
    await this.b.run(this.b.first, (s) => s.sbNodes(...this.keys(), String(now), info.uid, JSON.stringify(info), String(now + ttl)));
  }

  async list(): Promise<NodeInfo[]> {
    const values = await this.b.run(this.b.first, (s) => s.sbNodes(...this.keys(), String(Date.now()), '', '', '0'));
    return values.map((v) => JSON.parse(v) as NodeInfo);
  }

  /** Channels with a subscriber on any node: the PUB/SUB channels under our prefix, on every shard. */
  async channels(): Promise<string[]> {
    const pattern = this.broker.channelPattern;
    const out = new Set<string>();
    await Promise.all(
      this.b.shards.map(async (shard) => {
        for (const c of servers(shard.cmd)) {
          const names = await this.b.run(shard, () => c.pubsub('CHANNELS', pattern) as Promise<string[]>);
          for (const n of names) {
            const ch = this.broker.channelOf(n);
            if (ch !== undefined) out.add(ch);
          }
        }
      }),
    );
    return [...out];
  }

  /** A node that stops cleanly leaves the registry at once (else it lapses after node_info_ttl). */
  async leave(): Promise<void> {
    const s = this.b.first;
    if (!this.uid || !s.cmdReady) return;
    const uid = this.uid;
    await withTimeout(
      s.scripts.sbNodeRemove(...this.keys(), uid).catch((e: unknown) => {
        this.b.errors.warn('node_leave', { err: String(e) }, 'could not remove this node from the registry; it lapses after node_info_ttl');
      }),
      1000,
    );
  }
}
