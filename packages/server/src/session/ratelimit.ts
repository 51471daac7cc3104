import type { SharedLimiter } from '../engine/types.js';

/**
 * A token bucket: `rate` tokens per second, holding at most `burst`.
 * Time is read from the caller so a hot path reads the clock once.
 */
export class TokenBucket {
  private tokens: number;
  /** When the bucket was last refilled (ms). */
  last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now = Date.now(), n = 1): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

/** Buckets by key (user, IP, namespace), dropped when idle long enough to be full again. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private lastSweep = Date.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  get enabled(): boolean {
    return this.rate > 0;
  }

  take(key: string, now = Date.now()): boolean {
    if (this.rate <= 0) return true;
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = new TokenBucket(this.rate, this.burst, now)));
    const ok = b.take(now);
    if (now - this.lastSweep > 60_000) this.sweep(now);
    return ok;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    // A bucket untouched for burst/rate seconds is full: forgetting it changes nothing.
    const idleMs = Math.max(1000, (this.burst / this.rate) * 1000);
    for (const [k, b] of this.buckets) if (b.last + idleMs < now) this.buckets.delete(k);
  }
}

/** Logs an offender at most once per interval, so a flood does not become a log flood. */
export class LogOnce {
  private readonly seen = new Map<string, number>();
  constructor(private readonly intervalMs = 60_000) {}

  shouldLog(key: string, now = Date.now()): boolean {
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.seen.set(key, now);
    if (this.seen.size > 10_000) {
      for (const [k, t] of this.seen) if (now - t >= this.intervalMs) this.seen.delete(k);
    }
    return true;
  }
}

/** The node-wide limits sessions consult (per user, per namespace, per IP). */
export class NodeLimits {
  readonly userPublications: KeyedBuckets;
  private readonly userPublicationRate: number;
  readonly ipConnects: KeyedBuckets;
  private readonly namespaceBuckets = new Map<object, TokenBucket>();
  readonly logOnce = new LogOnce();

  constructor(cfg: { user_publications_per_second: number; ip_connects_per_second: number; ip_connects_burst: number }) {
    this.userPublicationRate = cfg.user_publications_per_second;
    this.userPublications = new KeyedBuckets(cfg.user_publications_per_second, cfg.user_publications_per_second);
    this.ipConnects = new KeyedBuckets(cfg.ip_connects_per_second, Math.max(cfg.ip_connects_burst, cfg.ip_connects_per_second));
  }

  /**
   * Per-user publication rate: in the engine when it can share a bucket
   * between nodes (Redis), so a user's connections on all nodes draw from
   * one bucket; on this node alone otherwise, or while the engine fails.
   */
  async userPublication(limiter: SharedLimiter | undefined, user: string, now = Date.now()): Promise<boolean> {
    const rate = this.userPublicationRate;
    if (rate <= 0) return true;
    if (limiter) {
      try {
        return await limiter.take('user_pub:' + user, rate, rate);
      } catch {
        // Engine unavailable: the local bucket still holds this node's share.
      }
    }
    return this.userPublications.take(user, now);
  }

  /** Namespace-wide publication rate on this node; `ns` is the namespace's options object. */
  namespacePublication(ns: { publications_per_second: number }, now = Date.now()): boolean {
    const rate = ns.publications_per_second;
    if (rate <= 0) return true;
    let b = this.namespaceBuckets.get(ns);
    if (!b) this.namespaceBuckets.set(ns, (b = new TokenBucket(rate, rate, now)));
    return b.take(now);
  }
}
