import { Counter } from 'prom-client';
import type { Config } from '../config/load.js';
import { splitLockKey, type LockHolder, type LockLease, type LockStore } from '../engine/locks.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Errors, ReplyError, type ProtocolError } from '../protocol/codes.js';

export type LocksConfig = Config['locks'];

/** A holders map entry (map key = field), as clients see it in `<locks.namespace>:<document>`. */
export interface HolderValue {
  readonly user: string;
  readonly client: string;
  readonly token: string;
  /** Unix ms. */
  readonly expires_at: number;
}

/**
 * Where holder changes go: the map channel `<locks.namespace>:<document>`
 * (map key = field). The node plugs in the map publisher; tests may add
 * their own observer.
 */
export interface HolderObserver {
  set(channel: string, field: string, value: HolderValue): void;
  /** The lease with `token` ended at `endedAt` (unix ms, store clock: the release, or the expiry time). */
  remove(channel: string, field: string, ended: { readonly token: string; readonly endedAt: number }): void;
}

/** A lease as the RPC and the API answer it. */
export interface LeaseReply {
  readonly key: string;
  readonly token: string;
  readonly holder: LockHolder;
  readonly expires_at: number;
  /** Unix ms (store clock) when this token was issued. */
  readonly acquired_at: number;
}

export interface HolderEntry {
  readonly key: string;
  readonly field: string;
  readonly user: string;
  readonly client: string;
  readonly token: string;
  readonly expires_at: number;
}

/** A fence as publications carry it: `{key, token}`. */
export interface Fence {
  readonly key: string;
  readonly token: string;
}

const TOKEN = /^[0-9]{1,20}$/;
// eslint-disable-next-line no-control-regex
const BAD_CHARS = /[\s\u0000-\u001f\u007f]/;

export function leaseReply(l: LockLease): LeaseReply {
  return {
    key: l.key,
    token: l.token,
    holder: { user: l.holder.user, client: l.holder.client },
    expires_at: l.expiresAt,
    acquired_at: l.acquiredAt,
  };
}

/**
 * The node's side of field locks: checks input, keeps the index of the
 * leases this node's connections hold (released when a connection closes,
 * limited per connection), ends expired leases on a timer and tells the
 * holder observers. The store (engine role) decides who holds what.
 */
export class LockService {
  /** This node's connections' leases: client → key → token. */
  private readonly byClient = new Map<string, Map<string, { token: string; expiresAt: number }>>();
  private readonly observers = new Set<HolderObserver>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private sweepWarnedAt = 0;
  private readonly ops: Counter<'op' | 'result'>;

  constructor(
    readonly cfg: LocksConfig,
    private readonly store: LockStore,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.ops = new Counter({
      name: 'switchboard_locks_total',
      help: 'Lock operations (acquire, renew, release, expire, fence) by result',
      labelNames: ['op', 'result'] as const,
      registers: [metrics.registry],
    });
  }

  get enabled(): boolean {
    return this.cfg.enabled;
  }

  /** Adds a holder observer; returns its removal. */
  observe(o: HolderObserver): () => void {
    this.observers.add(o);
    return () => this.observers.delete(o);
  }

  /** The map channel with a document's holders. */
  holdersChannel(document: string): string {
    return `${this.cfg.namespace}:${document}`;
  }

  start(): void {
    if (!this.cfg.enabled || this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.cfg.sweep_interval_ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // ---- input ----

  private refuse(kind: string, e: ProtocolError, detail?: string): never {
    this.metrics.badInput.labels(kind).inc();
    throw new ReplyError(detail ? { code: e.code, message: `${e.message}: ${detail}` } : e);
  }

  private ensureEnabled(): void {
    if (!this.cfg.enabled) throw new ReplyError(Errors.notAvailable);
  }

  /** `<document>/<field>` → its parts, or 107. */
  checkKey(key: unknown): { key: string; document: string; field: string } {
    if (typeof key !== 'string' || key.length === 0) return this.refuse('lock_bad_key', Errors.badRequest, 'key required');
    if (key.length > this.cfg.max_key_length)
      return this.refuse('lock_bad_key', Errors.badRequest, `key longer than ${this.cfg.max_key_length}`);
    if (BAD_CHARS.test(key)) return this.refuse('lock_bad_key', Errors.badRequest, 'key has whitespace or control characters');
    const { document, field } = splitLockKey(key);
    if (!key.includes('/') || document === '' || field === '')
      return this.refuse('lock_bad_key', Errors.badRequest, 'key must be <document>/<field>');
    return { key, document, field };
  }

  checkDocument(document: unknown): string {
    if (typeof document !== 'string' || document === '' || document.length > this.cfg.max_key_length || BAD_CHARS.test(document))
      return this.refuse('lock_bad_key', Errors.badRequest, 'document required');
    return document;
  }

  private checkTtl(ttl: unknown): number {
    if (ttl === undefined || ttl === null) return this.cfg.default_ttl_ms;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < this.cfg.min_ttl_ms || ttl > this.cfg.max_ttl_ms)
      return this.refuse(
        'lock_bad_ttl',
        Errors.badRequest,
        `ttl_ms must be an integer from ${this.cfg.min_ttl_ms} to ${this.cfg.max_ttl_ms}`,
      );
    return ttl;
  }

  private checkToken(token: unknown): string {
    if (typeof token !== 'string' || !TOKEN.test(token))
      return this.refuse('lock_bad_token', Errors.badRequest, 'token must be a decimal integer string');
    return token;
  }

  /** `$fence` / `fence` of a publication → a checked fence for `channel`, or 107. */
  checkFence(channel: string, fence: unknown): Fence {
    if (fence === null || typeof fence !== 'object' || Array.isArray(fence))
      return this.refuse('lock_bad_fence', Errors.badRequest, 'fence must be {key, token}');
    const f = fence as Record<string, unknown>;
    const { key, document } = this.checkKey(f.key);
    if (document !== channel) return this.refuse('lock_bad_fence', Errors.badRequest, `fence key must be a field of ${channel}`);
    return { key, token: this.checkToken(f.token) };
  }

  // ---- operations ----

  private count(op: string, result: string): void {
    this.ops.labels(op, result).inc();
  }

  /**
   * Acquires for `holder`. `local`: the holder is a connection of this node
   * (its leases are counted against max_per_connection and end with it).
   */
  async acquire(keyIn: unknown, holder: LockHolder, ttlIn: unknown, local: boolean): Promise<LeaseReply> {
    this.ensureEnabled();
    const { key, document, field } = this.checkKey(keyIn);
    const ttl = this.checkTtl(ttlIn);
    const mine = local ? this.byClient.get(holder.client) : undefined;
    if (local && this.cfg.max_per_connection > 0 && !mine?.has(key) && this.liveCount(mine) >= this.cfg.max_per_connection) {
      this.count('acquire', 'limit');
      this.metrics.limits.labels('locks_per_connection').inc();
      throw new ReplyError(Errors.limitExceeded);
    }
    const r = await this.store.acquire(key, holder, ttl);
    if (!r.ok) {
      this.count('acquire', 'held');
      throw new ReplyError(Errors.lockHeld);
    }
    this.count('acquire', r.renewed ? 'renewed' : 'ok');
    if (r.replaced) {
      this.count('expire', 'replaced');
      this.ended(r.replaced, r.replaced.expiresAt);
    }
    if (local) this.index(holder.client, key, r.lease);
    this.emitSet(document, field, r.lease);
    return leaseReply(r.lease);
  }

  async renew(keyIn: unknown, tokenIn: unknown, client: string | undefined, ttlIn: unknown): Promise<LeaseReply> {
    this.ensureEnabled();
    const { key, document, field } = this.checkKey(keyIn);
    const token = this.checkToken(tokenIn);
    const ttl = this.checkTtl(ttlIn);
    const r = await this.store.renew(key, token, client, ttl);
    if (!r.ok) {
      this.count('renew', 'not_held');
      throw new ReplyError(Errors.lockNotHeld);
    }
    this.count('renew', 'ok');
    const mine = this.byClient.get(r.lease.holder.client);
    if (mine?.has(key)) mine.set(key, { token, expiresAt: r.lease.expiresAt });
    this.emitSet(document, field, r.lease);
    return leaseReply(r.lease);
  }

  async release(keyIn: unknown, tokenIn: unknown, client: string | undefined): Promise<{ released_at: number }> {
    this.ensureEnabled();
    const { key } = this.checkKey(keyIn);
    const token = this.checkToken(tokenIn);
    const r = await this.store.release(key, token, client);
    if (!r.ok) {
      this.count('release', 'not_held');
      throw new ReplyError(Errors.lockNotHeld);
    }
    this.count('release', 'ok');
    this.ended(r.lease, r.at);
    return { released_at: r.at };
  }

  async holders(documentIn: unknown): Promise<HolderEntry[]> {
    this.ensureEnabled();
    const document = this.checkDocument(documentIn);
    const leases = await this.store.list(document);
    return leases
      .map((l) => ({
        key: l.key,
        field: splitLockKey(l.key).field,
        user: l.holder.user,
        client: l.holder.client,
        token: l.token,
        expires_at: l.expiresAt,
      }))
      .sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
  }

  /** The live holder of `field` in a holders channel (`<namespace>:<document>`), as the store has it now. */
  async holderOf(channel: string, field: string): Promise<HolderValue | undefined> {
    const document = channel.slice(this.cfg.namespace.length + 1);
    const l = (await this.store.list(document)).find((x) => splitLockKey(x.key).field === field);
    return l && { user: l.holder.user, client: l.holder.client, token: l.token, expires_at: l.expiresAt };
  }

  /** Refuses a publication into `channel` whose fence token is not the key's current one (151 older, 152 never issued). */
  async fence(channel: string, fenceIn: unknown): Promise<void> {
    this.ensureEnabled();
    const f = this.checkFence(channel, fenceIn);
    const r = await this.store.fence(f.key, f.token);
    this.count('fence', r);
    if (r === 'stale') throw new ReplyError(Errors.staleToken);
    if (r === 'forged') throw new ReplyError(Errors.lockNotHeld);
  }

  /**
   * A client publication: checks its top-level `$fence` when present;
   * `required` (a fenced namespace) refuses one without (107).
   */
  async fencePublication(channel: string, required: boolean, data: unknown): Promise<void> {
    let v = data;
    if (v instanceof Uint8Array) {
      try {
        v = JSON.parse(Buffer.from(v).toString('utf8')) as unknown;
      } catch {
        v = undefined;
      }
    }
    const f = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>).$fence : undefined;
    if (f === undefined) {
      if (required) this.refuse('lock_no_fence', Errors.badRequest, 'publications into this namespace carry $fence {key, token}');
      return;
    }
    await this.fence(channel, f);
  }

  /** A connection of this node closed: its leases end now. */
  connectionClosed(client: string): void {
    const mine = this.byClient.get(client);
    if (!mine) return;
    this.byClient.delete(client);
    for (const [key, { token }] of mine) {
      this.store.release(key, token, client).then(
        (r) => {
          if (!r.ok) return;
          this.count('release', 'disconnect');
          this.ended(r.lease, r.at);
        },
        (e: unknown) => this.log.warn({ key, err: String(e) }, 'lock release on disconnect failed; the lease ends at its expiry'),
      );
    }
  }

  /** Ends the leases whose time is up (each told once across nodes: the store hands each to one caller). */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      for (const l of await this.store.expire()) {
        this.count('expire', 'ok');
        this.ended(l, l.expiresAt);
      }
    } catch (e) {
      // Every sweep fails while the engine is away: say so once a minute, not four times a second.
      const now = Date.now();
      if (now - this.sweepWarnedAt >= 60_000) {
        this.sweepWarnedAt = now;
        this.log.warn({ err: String(e) }, 'lock expiry sweep failed; leases end once the engine is back');
      }
    } finally {
      this.sweeping = false;
    }
  }

  private liveCount(mine: Map<string, { expiresAt: number }> | undefined): number {
    if (!mine) return 0;
    const now = Date.now();
    for (const [k, v] of mine) if (v.expiresAt <= now) mine.delete(k);
    return mine.size;
  }

  private index(client: string, key: string, l: LockLease): void {
    let m = this.byClient.get(client);
    if (!m) this.byClient.set(client, (m = new Map()));
    m.set(key, { token: l.token, expiresAt: l.expiresAt });
  }

  private ended(l: LockLease, endedAt: number): void {
    const mine = this.byClient.get(l.holder.client);
    if (mine?.get(l.key)?.token === l.token) {
      mine.delete(l.key);
      if (mine.size === 0) this.byClient.delete(l.holder.client);
    }
    const { document, field } = splitLockKey(l.key);
    const channel = this.holdersChannel(document);
    for (const o of this.observers) {
      try {
        o.remove(channel, field, { token: l.token, endedAt });
      } catch (e) {
        this.log.warn({ err: String(e) }, 'lock holder observer threw');
      }
    }
  }

  private emitSet(document: string, field: string, l: LockLease): void {
    const channel = this.holdersChannel(document);
    const value: HolderValue = { user: l.holder.user, client: l.holder.client, token: l.token, expires_at: l.expiresAt };
    for (const o of this.observers) {
      try {
        o.set(channel, field, value);
      } catch (e) {
        this.log.warn({ err: String(e) }, 'lock holder observer threw');
      }
    }
  }
}
