import {
  splitLockKey,
  type FenceOutcome,
  type LockHolder,
  type LockLease,
  type LockOutcome,
  type LockStore,
  type ReleaseOutcome,
  type StoredUserStatus,
  type UserStatusStore,
} from '../locks.js';
import type { RedisBackend } from './backend.js';
import type { Client } from './connection.js';
import { hash, type Shard } from './shard.js';

/**
 * Lock buckets: a document's leases, the token counters and the expiry index
 * of the documents in a bucket share the hash tag `{lk<n>}`, so every script
 * touches one Redis Cluster slot; the expiry sweep walks the buckets.
 */
export const LOCK_BUCKETS = 16;

/** Candidates per bucket per sweep (the rest wait for the next one). */
const SWEEP_BATCH = 256;

const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * A lease is stored as JSON {t: token, u: user, c: client, e: expires ms, a: acquired ms}
 * (numbers as decimal text, so cjson never rounds them) in the document's hash under its field.
 * KEYS: document hash, counters hash, expiry zset
 * ARGV: field, lock key, user, client, ttl ms
 * Returns {1, lease, replaced lease whose time was up (or nothing)} taken anew, {2, lease} renewed by its holder,
 * {0, lease} held by another.
 */
const ACQUIRE = `${NOW}
local cur = redis.call('hget', KEYS[1], ARGV[1])
if cur then
  local l = cjson.decode(cur)
  if tonumber(l.e) > now then
    if l.c ~= ARGV[4] then return {0, cur} end
    local e = now + tonumber(ARGV[5])
    l.e = string.format('%d', e)
    local enc = cjson.encode(l)
    redis.call('hset', KEYS[1], ARGV[1], enc)
    redis.call('zadd', KEYS[3], e, ARGV[2])
    return {2, enc}
  end
end
local tok = redis.call('hincrby', KEYS[2], ARGV[2], 1)
local e = now + tonumber(ARGV[5])
local enc = cjson.encode({t = string.format('%d', tok), u = ARGV[3], c = ARGV[4], e = string.format('%d', e), a = string.format('%d', now)})
redis.call('hset', KEYS[1], ARGV[1], enc)
redis.call('zadd', KEYS[3], e, ARGV[2])
if cur then return {1, enc, cur} end
return {1, enc}
`;

/** The live lease with this token (and client, unless ARGV[4] is ''), or nothing; sets the caller's \`l\`. */
const HELD = `
local cur = redis.call('hget', KEYS[1], ARGV[1])
if not cur then return {0} end
local l = cjson.decode(cur)
if tonumber(l.e) <= now or l.t ~= ARGV[3] or (ARGV[4] ~= '' and l.c ~= ARGV[4]) then return {0} end`;

/**
 * KEYS: document hash, expiry zset; ARGV: field, lock key, token, client ('' = any), ttl ms
 * Returns {1, lease} or {0}.
 */
const RENEW = `${NOW}${HELD}
local e = now + tonumber(ARGV[5])
l.e = string.format('%d', e)
local enc = cjson.encode(l)
redis.call('hset', KEYS[1], ARGV[1], enc)
redis.call('zadd', KEYS[2], e, ARGV[2])
return {1, enc}
`;

/**
 * KEYS: document hash, expiry zset; ARGV: field, lock key, token, client ('' = any)
 * Returns {1, lease, now} or {0}.
 */
const RELEASE = `${NOW}${HELD}
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[2])
return {1, cur, string.format('%d', now)}
`;

/** KEYS: expiry zset; ARGV: limit. Lock keys whose expiry (Redis clock) has passed. */
const DUE = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('zrangebyscore', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`;

/**
 * Ends a lease whose time is up, once: of the nodes that try, one gets it.
 * KEYS: document hash, expiry zset; ARGV: field, lock key
 * Returns the lease, or nil (renewed meanwhile, or already gone).
 */
const EXPIRE = `${NOW}
local cur = redis.call('hget', KEYS[1], ARGV[1])
if not cur then
  redis.call('zrem', KEYS[2], ARGV[2])
  return false
end
local l = cjson.decode(cur)
if tonumber(l.e) > now then return false end
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[2])
return cur
`;

/** KEYS: document hash. The live leases (Redis clock) as field, lease, field, lease, … */
const LIST = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local all = redis.call('hgetall', KEYS[1])
for i = 2, #all, 2 do
  local l = cjson.decode(all[i])
  if tonumber(l.e) > now then
    out[#out + 1] = all[i - 1]
    out[#out + 1] = all[i]
  end
end
return out
`;

/**
 * User status: KEYS: the user's hash; ARGV: "1" = active, "1" = online, now (unix s), ttl ms.
 * A value never moves back (nodes' clocks differ a little).
 */
const STATUS_TOUCH = `
local now = tonumber(ARGV[3])
if ARGV[1] == '1' and now > tonumber(redis.call('hget', KEYS[1], 'a') or '0') then redis.call('hset', KEYS[1], 'a', ARGV[3]) end
if ARGV[2] == '1' and now > tonumber(redis.call('hget', KEYS[1], 'o') or '0') then redis.call('hset', KEYS[1], 'o', ARGV[3]) end
redis.call('pexpire', KEYS[1], ARGV[4])
return 1
`;

interface LockScripts {
  sbLockAcquire(...args: string[]): Promise<[number, string, string?]>;
  sbLockRenew(...args: string[]): Promise<[number, string?]>;
  sbLockRelease(...args: string[]): Promise<[number, string?, string?]>;
  sbLockDue(...args: string[]): Promise<string[]>;
  sbLockExpire(...args: string[]): Promise<string | null>;
  sbLockList(...args: string[]): Promise<string[]>;
  sbStatusTouch(...args: string[]): Promise<number>;
}

const SCRIPTS: Array<[keyof LockScripts, number, string]> = [
  ['sbLockAcquire', 3, ACQUIRE],
  ['sbLockRenew', 2, RENEW],
  ['sbLockRelease', 2, RELEASE],
  ['sbLockDue', 1, DUE],
  ['sbLockExpire', 2, EXPIRE],
  ['sbLockList', 1, LIST],
  ['sbStatusTouch', 1, STATUS_TOUCH],
];

const defined = new WeakSet<Client>();

/** The lock and user status scripts as commands on a shard's command connection (defined once per connection). */
function scripts(shard: Shard): LockScripts {
  const c = shard.cmd;
  if (!defined.has(c)) {
    for (const [name, numberOfKeys, lua] of SCRIPTS) c.defineCommand(name, { numberOfKeys, lua });
    defined.add(c);
  }
  return c as unknown as LockScripts;
}

interface StoredLease {
  t: string;
  u: string;
  c: string;
  e: string;
  a: string;
}

function decodeLease(key: string, enc: string): LockLease {
  const l = JSON.parse(enc) as StoredLease;
  return { key, token: l.t, holder: { user: l.u, client: l.c }, expiresAt: Number(l.e), acquiredAt: Number(l.a) };
}

/** Locks over Redis: one script per step (acquire, renew, release, expire), Redis's clock for every lease. */
export class RedisLocks implements LockStore {
  constructor(private readonly b: RedisBackend) {
    for (const s of b.shards) scripts(s);
  }

  private bucketOf(document: string): number {
    return hash(document) % LOCK_BUCKETS;
  }

  private tag(bucket: number): string {
    return `${this.b.prefix}.lk.{lk${bucket}}`;
  }

  private where(key: string): { shard: Shard; doc: string; seq: string; due: string; field: string } {
    const { document, field } = splitLockKey(key);
    const bucket = this.bucketOf(document);
    const tag = this.tag(bucket);
    return { shard: this.b.shardOf(`lk${bucket}`), doc: `${tag}.d.${document}`, seq: `${tag}.s`, due: `${tag}.z`, field };
  }

  private run<T>(shard: Shard, fn: (s: LockScripts) => Promise<T>): Promise<T> {
    return this.b.run(shard, () => fn(scripts(shard)));
  }

  async acquire(key: string, holder: LockHolder, ttlMs: number): Promise<LockOutcome> {
    const w = this.where(key);
    const [r, enc, old] = await this.run(w.shard, (s) =>
      s.sbLockAcquire(w.doc, w.seq, w.due, w.field, key, holder.user, holder.client, String(ttlMs)),
    );
    const lease = decodeLease(key, enc);
    if (r === 0) return { ok: false, reason: 'held', lease };
    return { ok: true, lease, renewed: r === 2, replaced: old ? decodeLease(key, old) : undefined };
  }

  async renew(key: string, token: string, client: string | undefined, ttlMs: number): Promise<LockOutcome> {
    const w = this.where(key);
    const [r, enc] = await this.run(w.shard, (s) => s.sbLockRenew(w.doc, w.due, w.field, key, token, client ?? '', String(ttlMs)));
    return r === 1 && enc ? { ok: true, lease: decodeLease(key, enc), renewed: true } : { ok: false, reason: 'not_held' };
  }

  async release(key: string, token: string, client: string | undefined): Promise<ReleaseOutcome> {
    const w = this.where(key);
    const [r, enc, at] = await this.run(w.shard, (s) => s.sbLockRelease(w.doc, w.due, w.field, key, token, client ?? ''));
    return r === 1 && enc ? { ok: true, lease: decodeLease(key, enc), at: Number(at) } : { ok: false };
  }

  async list(document: string): Promise<LockLease[]> {
    const w = this.where(`${document}/x`);
    const flat = await this.run(w.shard, (s) => s.sbLockList(w.doc));
    const out: LockLease[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push(decodeLease(`${document}/${flat[i]}`, flat[i + 1]!));
    return out;
  }

  async fence(key: string, token: string): Promise<FenceOutcome> {
    const w = this.where(key);
    const cur = BigInt((await this.b.run(w.shard, () => w.shard.cmd.hget(w.seq, key))) ?? '0');
    const t = BigInt(token);
    return t === cur ? 'ok' : t < cur ? 'stale' : 'forged';
  }

  async expire(): Promise<LockLease[]> {
    const out: LockLease[] = [];
    for (let bucket = 0; bucket < LOCK_BUCKETS; bucket++) {
      const tag = this.tag(bucket);
      const shard = this.b.shardOf(`lk${bucket}`);
      if (!shard.cmdReady) continue;
      const due = await this.run(shard, (s) => s.sbLockDue(`${tag}.z`, String(SWEEP_BATCH)));
      const ended = await Promise.all(
        due.map(async (key) => {
          const { document, field } = splitLockKey(key);
          const enc = await this.run(shard, (s) => s.sbLockExpire(`${tag}.d.${document}`, `${tag}.z`, field, key));
          return enc ? decodeLease(key, enc) : undefined;
        }),
      );
      for (const l of ended) if (l) out.push(l);
    }
    return out;
  }
}

/** User status as a hash per user ({a: active, o: online}, unix seconds) with the configured expiry. */
export class RedisUserStatus implements UserStatusStore {
  constructor(private readonly b: RedisBackend) {
    for (const s of b.shards) scripts(s);
  }

  private keyOf(user: string): string {
    return this.b.key('us', user);
  }

  async touch(users: readonly string[], fields: { active?: boolean; online?: boolean }, nowSec: number, expireS: number): Promise<void> {
    const a = fields.active ? '1' : '0';
    const o = fields.online ? '1' : '0';
    await Promise.all(
      users.map((u) => {
        const shard = this.b.shardOf(u);
        return this.b.run(shard, () => scripts(shard).sbStatusTouch(this.keyOf(u), a, o, String(nowSec), String(expireS * 1000)));
      }),
    );
  }

  async get(users: readonly string[]): Promise<StoredUserStatus[]> {
    return Promise.all(
      users.map(async (user) => {
        const shard = this.b.shardOf(user);
        const [a, o] = await this.b.run(shard, () => shard.cmd.hmget(this.keyOf(user), 'a', 'o'));
        return { user, active: a ? Number(a) : undefined, online: o ? Number(o) : undefined };
      }),
    );
  }

  async remove(users: readonly string[]): Promise<void> {
    await Promise.all(
      users.map((u) => {
        const shard = this.b.shardOf(u);
        return this.b.run(shard, () => shard.cmd.del(this.keyOf(u)));
      }),
    );
  }
}
