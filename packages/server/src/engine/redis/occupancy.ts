import type { ChannelOccupancy } from '../types.js';
import type { RedisBackend } from './backend.js';
import type { Client } from './connection.js';

/*
 * Two keys on the first shard, both in the {occ} slot so every script runs
 * on Redis Cluster too:
 *   Z: zset of "<channel>\0<node>" scored by the entry's expiry (ms);
 *   H: hash channel → how many nodes have subscribers of it.
 * A node entry lives until its expiry unless the node refreshes it; a sweep
 * by any live node drops lapsed entries and reports the channels it left
 * empty, each to exactly one caller (the script is atomic).
 */

/** KEYS: Z, H; ARGV: member, channel, expiry. Returns 1 when the channel had no node. */
const OCCUPY = `
if redis.call('zadd', KEYS[1], ARGV[3], ARGV[1]) == 0 then return 0 end
if redis.call('hincrby', KEYS[2], ARGV[2], 1) == 1 then return 1 end
return 0
`;

/** KEYS: Z, H; ARGV: member, channel. Returns 1 when no node has the channel now. */
const VACATE = `
if redis.call('zrem', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('hincrby', KEYS[2], ARGV[2], -1) <= 0 then
  redis.call('hdel', KEYS[2], ARGV[2])
  return 1
end
return 0
`;

/** KEYS: Z, H; ARGV: expiry, then member, channel pairs. Returns the channels that had no node (occupied again). */
const REFRESH = `
local out = {}
for i = 2, #ARGV, 2 do
  if redis.call('zadd', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    if redis.call('hincrby', KEYS[2], ARGV[i + 1], 1) == 1 then out[#out + 1] = ARGV[i + 1] end
  end
end
return out
`;

/** KEYS: Z, H; ARGV: now, limit. Returns the channels the lapsed entries left with no node. */
const SWEEP = `
local lapsed = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, m in ipairs(lapsed) do
  redis.call('zrem', KEYS[1], m)
  local ch = string.match(m, '^(.*)%z[^%z]*$')
  if ch and redis.call('hincrby', KEYS[2], ch, -1) <= 0 then
    redis.call('hdel', KEYS[2], ch)
    out[#out + 1] = ch
  end
end
return out
`;

interface OccupancyCommands {
  sbOccupy(...args: string[]): Promise<number>;
  sbVacate(...args: string[]): Promise<number>;
  sbOccupancyRefresh(...args: string[]): Promise<string[]>;
  sbOccupancySweep(...args: string[]): Promise<string[]>;
}

/** Entries per refresh script call. */
const REFRESH_BATCH = 500;
/** Lapsed entries per sweep call. */
const SWEEP_LIMIT = 1000;

/** Cluster-wide channel occupancy over Redis; a node's entries lapse after `node_info_ttl` without a refresh. */
export class RedisOccupancy implements ChannelOccupancy {
  private readonly keys: [string, string];

  constructor(private readonly b: RedisBackend) {
    this.keys = [`${b.prefix}.{occ}.z`, `${b.prefix}.{occ}.h`];
    const cmd = b.first.cmd;
    cmd.defineCommand('sbOccupy', { numberOfKeys: 2, lua: OCCUPY });
    cmd.defineCommand('sbVacate', { numberOfKeys: 2, lua: VACATE });
    cmd.defineCommand('sbOccupancyRefresh', { numberOfKeys: 2, lua: REFRESH });
    cmd.defineCommand('sbOccupancySweep', { numberOfKeys: 2, lua: SWEEP });
  }

  /** How long a node's entry outlives its last refresh. */
  get ttlMs(): number {
    return Math.max(1000, this.b.cfg.node_info_ttl);
  }

  private get c(): OccupancyCommands {
    return this.b.first.cmd as Client as unknown as OccupancyCommands;
  }

  async occupy(channel: string, node: string): Promise<boolean> {
    const expiry = String(Date.now() + this.ttlMs);
    return (await this.b.run(this.b.first, () => this.c.sbOccupy(...this.keys, channel + '\u0000' + node, channel, expiry))) === 1;
  }

  async vacate(channel: string, node: string): Promise<boolean> {
    return (await this.b.run(this.b.first, () => this.c.sbVacate(...this.keys, channel + '\u0000' + node, channel))) === 1;
  }

  async refresh(channels: readonly string[], node: string): Promise<string[]> {
    const expiry = String(Date.now() + this.ttlMs);
    const out: string[] = [];
    for (let i = 0; i < channels.length; i += REFRESH_BATCH) {
      const args: string[] = [];
      for (const ch of channels.slice(i, i + REFRESH_BATCH)) args.push(ch + '\u0000' + node, ch);
      out.push(...(await this.b.run(this.b.first, () => this.c.sbOccupancyRefresh(...this.keys, expiry, ...args))));
    }
    return out;
  }

  async sweep(): Promise<string[]> {
    return this.b.run(this.b.first, () => this.c.sbOccupancySweep(...this.keys, String(Date.now()), String(SWEEP_LIMIT)));
  }
}
