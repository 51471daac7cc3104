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

/**
 * Locks in this process. Every node sharing the engine (nodes embedded in
 * one process) sees the same leases; `expire` hands each ended lease to one
 * caller. The token counters are kept for the life of the process.
 */
export class MemoryLocks implements LockStore {
  /** document → field → lease */
  private readonly docs = new Map<string, Map<string, LockLease>>();
  private readonly seq = new Map<string, bigint>();

  constructor(private readonly now: () => number = Date.now) {}

  private live(key: string, at: number): LockLease | undefined {
    const { document, field } = splitLockKey(key);
    const l = this.docs.get(document)?.get(field);
    return l && l.expiresAt > at ? l : undefined;
  }

  private put(l: LockLease): void {
    const { document, field } = splitLockKey(l.key);
    let m = this.docs.get(document);
    if (!m) this.docs.set(document, (m = new Map()));
    m.set(field, l);
  }

  private drop(key: string): void {
    const { document, field } = splitLockKey(key);
    const m = this.docs.get(document);
    if (!m) return;
    m.delete(field);
    if (m.size === 0) this.docs.delete(document);
  }

  async acquire(key: string, holder: LockHolder, ttlMs: number): Promise<LockOutcome> {
    const at = this.now();
    const cur = this.live(key, at);
    if (cur) {
      if (cur.holder.client !== holder.client) return { ok: false, reason: 'held', lease: cur };
      const lease = { ...cur, expiresAt: at + ttlMs };
      this.put(lease);
      return { ok: true, lease, renewed: true };
    }
    const { document, field } = splitLockKey(key);
    const replaced = this.docs.get(document)?.get(field);
    const token = (this.seq.get(key) ?? 0n) + 1n;
    this.seq.set(key, token);
    const lease: LockLease = { key, token: token.toString(), holder: { ...holder }, expiresAt: at + ttlMs, acquiredAt: at };
    this.put(lease);
    return { ok: true, lease, renewed: false, replaced };
  }

  async renew(key: string, token: string, client: string | undefined, ttlMs: number): Promise<LockOutcome> {
    const at = this.now();
    const cur = this.live(key, at);
    if (!cur || cur.token !== token || (client !== undefined && cur.holder.client !== client)) return { ok: false, reason: 'not_held' };
    const lease = { ...cur, expiresAt: at + ttlMs };
    this.put(lease);
    return { ok: true, lease, renewed: true };
  }

  async release(key: string, token: string, client: string | undefined): Promise<ReleaseOutcome> {
    const at = this.now();
    const cur = this.live(key, at);
    if (!cur || cur.token !== token || (client !== undefined && cur.holder.client !== client)) return { ok: false };
    this.drop(key);
    return { ok: true, lease: cur, at };
  }

  async list(document: string): Promise<LockLease[]> {
    const at = this.now();
    return [...(this.docs.get(document)?.values() ?? [])].filter((l) => l.expiresAt > at);
  }

  async fence(key: string, token: string): Promise<FenceOutcome> {
    const cur = this.seq.get(key) ?? 0n;
    const t = BigInt(token);
    return t === cur ? 'ok' : t < cur ? 'stale' : 'forged';
  }

  async expire(): Promise<LockLease[]> {
    const at = this.now();
    const out: LockLease[] = [];
    for (const m of this.docs.values()) for (const l of m.values()) if (l.expiresAt <= at) out.push(l);
    for (const l of out) this.drop(l.key);
    return out;
  }
}

/** User status in this process, each entry dropped `expireS` after its last touch. */
export class MemoryUserStatus implements UserStatusStore {
  private readonly entries = new Map<string, { active?: number; online?: number; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async touch(users: readonly string[], fields: { active?: boolean; online?: boolean }, nowSec: number, expireS: number): Promise<void> {
    const until = this.now() + expireS * 1000;
    for (const u of users) {
      const e = this.fresh(u) ?? { until };
      if (fields.active) e.active = Math.max(e.active ?? 0, nowSec);
      if (fields.online) e.online = Math.max(e.online ?? 0, nowSec);
      e.until = until;
      this.entries.set(u, e);
    }
  }

  private fresh(user: string): { active?: number; online?: number; until: number } | undefined {
    const e = this.entries.get(user);
    if (e && e.until <= this.now()) {
      this.entries.delete(user);
      return undefined;
    }
    return e;
  }

  async get(users: readonly string[]): Promise<StoredUserStatus[]> {
    return users.map((user) => {
      const e = this.fresh(user);
      return { user, active: e?.active, online: e?.online };
    });
  }

  async remove(users: readonly string[]): Promise<void> {
    for (const u of users) this.entries.delete(u);
  }

  /** Drops expired entries (the engine's periodic sweep). */
  sweep(): void {
    const at = this.now();
    for (const [u, e] of this.entries) if (e.until <= at) this.entries.delete(u);
  }
}
