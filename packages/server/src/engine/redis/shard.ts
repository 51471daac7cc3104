import type { Config } from '../../config/load.js';
import { EngineUnavailableError } from '../errors.js';
import { CircuitBreaker } from './breaker.js';
import { createClient, scripted, type Client, type Scripted } from './connection.js';

type RedisConfig = Config['engine']['redis'];

/** Channels per SUBSCRIBE / UNSUBSCRIBE command when many are (re)subscribed at once. */
const SUBSCRIBE_BATCH = 512;

interface Deferred {
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * One Redis shard: a command connection (scripts, auto-pipelined) and a
 * PUB/SUB connection, whatever the number of channels. Channels are spread
 * over shards by a hash of their name.
 */
export class Shard {
  readonly cmd: Client;
  readonly sub: Client;
  readonly scripts: Scripted;
  readonly breaker: CircuitBreaker;
  /** PUB/SUB channel names this node wants on this shard (re-subscribed after every reconnect). */
  readonly wanted = new Set<string>();
  private pending = new Map<string, Deferred[]>();
  private flushScheduled = false;
  /** True once the PUB/SUB connection was ready at least once: a later ready is a reconnect. */
  everSubscribed = false;

  constructor(
    readonly index: number,
    cfg: RedisConfig,
    address: string,
  ) {
    this.cmd = createClient(cfg, address, 'cmd');
    this.sub = createClient(cfg, address, 'sub');
    this.scripts = scripted(this.cmd);
    this.breaker = new CircuitBreaker(cfg.circuit_breaker_threshold, Math.max(100, cfg.circuit_breaker_cooldown));
  }

  get cmdReady(): boolean {
    return this.cmd.status === 'ready';
  }

  get subReady(): boolean {
    return this.sub.status === 'ready';
  }

  /** Queues a SUBSCRIBE; those queued in the same tick go out as one command. */
  subscribe(name: string): Promise<void> {
    this.wanted.add(name);
    if (!this.subReady) {
      this.wanted.delete(name);
      return Promise.reject(new EngineUnavailableError('disconnected', 'pub/sub connection not ready'));
    }
    return new Promise<void>((resolve, reject) => {
      const list = this.pending.get(name);
      if (list) list.push({ resolve, reject });
      else this.pending.set(name, [{ resolve, reject }]);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = new Map();
    const names = [...batch.keys()];
    for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH) {
      const chunk = names.slice(i, i + SUBSCRIBE_BATCH);
      this.sub.subscribe(...chunk).then(
        () => {
          for (const n of chunk) for (const d of batch.get(n)!) d.resolve();
        },
        (e: unknown) => {
          const err = new EngineUnavailableError('failed', `subscribe: ${String(e)}`);
          for (const n of chunk) {
            this.wanted.delete(n);
            for (const d of batch.get(n)!) d.reject(err);
          }
        },
      );
    }
  }

  /** Resolves false when the UNSUBSCRIBE failed (the connection is going away, which unsubscribes too). */
  async unsubscribe(name: string): Promise<boolean> {
    this.wanted.delete(name);
    if (!this.subReady) return true;
    return this.sub.unsubscribe(name).then(
      () => true,
      () => false,
    );
  }

  /** After a reconnect: subscribe to everything wanted again, in batches. */
  async resubscribe(): Promise<void> {
    const names = [...this.wanted];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH) jobs.push(this.sub.subscribe(...names.slice(i, i + SUBSCRIBE_BATCH)));
    await Promise.all(jobs);
  }
}

/** FNV-1a: a stable channel → shard mapping (the same on every node). */
export function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(t));
}
