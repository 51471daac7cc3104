import { randomBytes } from 'node:crypto';
import { Counter, Gauge } from 'prom-client';
import type { ProxyCaller } from '../auth/proxy.js';
import type { NamespaceConfig } from '../config/load.js';
import type { HubClient } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { ReplyError } from '../protocol/codes.js';
import type { Publication, RawJSON } from '../protocol/types.js';

/*
 * The node's shared poll state: for every shared poll channel with tracked
 * keys, each key once (its latest version and data, and the connections
 * tracking it), and one poll loop that asks the backend for all of the
 * channel's keys every refresh_interval, in batches of refresh_batch_size,
 * however many connections track them. Changes go to every tracker of the
 * key; a key the backend reports removed is dropped for all of them.
 *
 * Each node polls for its own trackers (as the reference server does): no
 * coordination between nodes, no leader to fail over, and backend load is
 * O(unique keys × nodes) rather than O(clients).
 */

export type SharedPollOptions = NamespaceConfig['shared_poll'];

/** One connection's interest in one key. */
export interface Tracker {
  /** The last version this connection has (what it said on track, then what we sent). */
  version: number;
  /** Unix ms when its signature expired (0 = never). */
  expireAt: number;
  /** Tracked by a command whose reply is not yet queued: nothing is pushed until it is (see `release`). */
  pending: boolean;
}

/** One connection's shared poll subscription to one channel. */
export interface PollSubscription {
  readonly client: HubClient;
  readonly channel: string;
  readonly keys: Map<string, Tracker>;
}

class KeyState {
  version = 0;
  data: RawJSON | undefined;
  readonly trackers = new Set<PollSubscription>();
  /** Asked of the backend at least once (or queued for its first poll). */
  polled = false;
}

class ChannelState {
  readonly keys = new Map<string, KeyState>();
  timer: NodeJS.Timeout | undefined;
  shutdownTimer: NodeJS.Timeout | undefined;
  /** Consecutive failed polls: the next one waits refresh_interval × 2^failures (up to max_backoff). */
  failures = 0;
  cold = new Set<string>();
  coldTimer: NodeJS.Timeout | undefined;
  closed = false;
  constructor(
    readonly channel: string,
    readonly opts: SharedPollOptions,
  ) {}
}

/** A small counting semaphore: the node's backend calls in flight (shared_poll.concurrency_limit). */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** The shared poll metrics, registered whether or not any namespace polls (so /metrics always lists them). */
export class SharedPollStats {
  readonly calls: Counter<'kind' | 'result'>;
  readonly updates: Counter<'kind'>;
  readonly cycles: Counter;
  readonly trackedKeys: Gauge;
  /** Distinct keys tracked (set by the poller). */
  keyCount: () => number = () => 0;
  constructor(metrics: Metrics) {
    const registers = [metrics.registry];
    this.calls = new Counter({
      name: 'switchboard_shared_poll_backend_calls_total',
      help: 'Shared poll refresh calls to the backend by kind (cycle: the periodic poll; cold: first poll of new keys) and result',
      labelNames: ['kind', 'result'] as const,
      registers,
    });
    this.updates = new Counter({
      name: 'switchboard_shared_poll_updates_total',
      help: 'Shared poll key changes pushed to trackers (update or removal), counted once per key change',
      labelNames: ['kind'] as const,
      registers,
    });
    this.cycles = new Counter({
      name: 'switchboard_shared_poll_cycles_total',
      help: 'Periodic shared poll cycles run (one per channel per refresh_interval, longer while backing off)',
      registers,
    });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const stats = this;
    this.trackedKeys = new Gauge({
      name: 'switchboard_shared_poll_keys',
      help: 'Distinct shared poll keys tracked on this node',
      registers,
      collect() {
        this.set(stats.keyCount());
      },
    });
  }
}

export interface PollerDeps {
  readonly caller: ProxyCaller;
  readonly stats: SharedPollStats;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly concurrency: number;
}

const NULL_DATA: RawJSON = 'null';

export class SharedPollPoller {
  private readonly channels = new Map<string, ChannelState>();
  private readonly sem: Semaphore;
  /** Versionless mode: synthetic versions from one counter per process, so they only ever grow (epoch = this process). */
  private counter = 0;
  readonly epoch = randomBytes(6).toString('hex');
  private stopped = false;

  constructor(private readonly deps: PollerDeps) {
    this.sem = new Semaphore(deps.concurrency);
    deps.stats.keyCount = () => {
      let n = 0;
      for (const c of this.channels.values()) n += c.keys.size;
      return n;
    };
  }

  /** The current version and data of a key (undefined data: not polled yet). */
  peek(channel: string, key: string): { version: number; data: RawJSON | undefined } | undefined {
    const k = this.channels.get(channel)?.keys.get(key);
    return k && { version: k.version, data: k.data };
  }

  /** Adds `sub` as a tracker of `key`; a key new to the node is polled right away (once, not per tracker). */
  track(sub: PollSubscription, key: string, opts: SharedPollOptions): void {
    const ch = this.channel(sub.channel, opts);
    let ks = ch.keys.get(key);
    if (!ks) {
      ks = new KeyState();
      ch.keys.set(key, ks);
    }
    ks.trackers.add(sub);
    if (!ks.polled) {
      ks.polled = true;
      this.coldPoll(ch, key);
    }
  }

  untrack(sub: PollSubscription, key: string): void {
    const ch = this.channels.get(sub.channel);
    const ks = ch?.keys.get(key);
    if (!ch || !ks) return;
    ks.trackers.delete(sub);
    if (ks.trackers.size === 0) this.dropKey(ch, key);
  }

  /** Stops every poll loop (node shutdown). */
  stop(): void {
    this.stopped = true;
    for (const ch of this.channels.values()) this.closeChannel(ch);
    this.channels.clear();
  }

  // ---- channel lifecycle ----

  private channel(channel: string, opts: SharedPollOptions): ChannelState {
    let ch = this.channels.get(channel);
    if (!ch) {
      ch = new ChannelState(channel, opts);
      this.channels.set(channel, ch);
      this.schedule(ch);
    }
    if (ch.shutdownTimer) {
      clearTimeout(ch.shutdownTimer);
      ch.shutdownTimer = undefined;
    }
    return ch;
  }

  private dropKey(ch: ChannelState, key: string): void {
    ch.keys.delete(key);
    ch.cold.delete(key);
    if (ch.keys.size > 0 || ch.shutdownTimer) return;
    // Kept a little while: a page that untracks and re-tracks (scrolling) does not tear the loop down and up.
    ch.shutdownTimer = setTimeout(() => {
      ch.shutdownTimer = undefined;
      if (ch.keys.size > 0) return;
      this.closeChannel(ch);
      if (this.channels.get(ch.channel) === ch) this.channels.delete(ch.channel);
    }, ch.opts.channel_shutdown_delay);
    ch.shutdownTimer.unref();
  }

  private closeChannel(ch: ChannelState): void {
    ch.closed = true;
    clearTimeout(ch.timer);
    clearTimeout(ch.shutdownTimer);
    clearTimeout(ch.coldTimer);
  }

  /** The wait before the channel's next cycle: the interval, doubled per consecutive failure up to max_backoff, with jitter while failing. */
  private delay(ch: ChannelState): number {
    const base = ch.opts.refresh_interval;
    if (ch.failures === 0) return base;
    const backoff = Math.min(ch.opts.max_backoff, base * 2 ** Math.min(ch.failures, 20));
    return Math.max(base, Math.round(backoff * (0.75 + Math.random() * 0.25)));
  }

  private schedule(ch: ChannelState): void {
    if (ch.closed || this.stopped) return;
    ch.timer = setTimeout(() => {
      this.cycle(ch).then(
        () => this.schedule(ch),
        (e: unknown) => {
          this.deps.log.error({ channel: ch.channel, err: String(e) }, 'shared poll cycle failed');
          this.schedule(ch);
        },
      );
    }, this.delay(ch));
    ch.timer.unref();
  }

  // ---- polling ----

  /** One periodic poll: drops trackers whose signatures expired long ago, then asks for every key left. */
  private async cycle(ch: ChannelState): Promise<void> {
    this.sweep(ch);
    if (ch.keys.size === 0) return;
    this.deps.stats.cycles.inc();
    const keys = [...ch.keys.keys()];
    const size = ch.opts.refresh_batch_size;
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += size) batches.push(keys.slice(i, i + size));
    const results = await Promise.all(batches.map((b) => this.poll(ch, b, 'cycle')));
    if (results.every((ok) => ok)) ch.failures = 0;
    else ch.failures++;
  }

  private sweep(ch: ChannelState): void {
    const now = Date.now();
    const grace = ch.opts.track_expired_extra_delay;
    for (const [key, ks] of ch.keys) {
      for (const sub of ks.trackers) {
        const t = sub.keys.get(key);
        if (t && t.expireAt > 0 && now > t.expireAt + grace) {
          sub.keys.delete(key);
          ks.trackers.delete(sub);
        }
      }
      if (ks.trackers.size === 0) this.dropKey(ch, key);
    }
  }

  /** Keys new to the node are polled together shortly after they are tracked, unless the backend is failing (the next cycle has them). */
  private coldPoll(ch: ChannelState, key: string): void {
    if (ch.failures > 0) return;
    ch.cold.add(key);
    if (ch.coldTimer) return;
    ch.coldTimer = setTimeout(() => {
      ch.coldTimer = undefined;
      const keys = [...ch.cold];
      ch.cold.clear();
      if (ch.closed || keys.length === 0) return;
      const size = ch.opts.refresh_batch_size;
      for (let i = 0; i < keys.length; i += size) {
        // A failed first poll backs the channel off too: no burst of cold polls at a backend in trouble.
        void this.poll(ch, keys.slice(i, i + size), 'cold').then((ok) => {
          if (!ok) ch.failures = Math.max(ch.failures, 1);
        });
      }
    }, 5);
    ch.coldTimer.unref();
  }

  /** One backend call for `keys`; true when it answered. Failures are counted and logged, never thrown. */
  private async poll(ch: ChannelState, keys: string[], kind: 'cycle' | 'cold'): Promise<boolean> {
    const versioned = ch.opts.mode === 'versioned';
    const items = keys.map((key) => {
      const v = ch.keys.get(key)?.version ?? 0;
      return versioned && v > 0 ? { key, version: v } : { key };
    });
    let result: Record<string, unknown>;
    try {
      result = await this.sem.run(() => this.deps.caller.call({ channel: ch.channel, items }));
    } catch (e) {
      this.deps.stats.calls.labels(kind, 'error').inc();
      const msg = e instanceof ReplyError ? `${e.error.code} ${e.error.message}` : String(e);
      this.deps.log.warn({ channel: ch.channel, kind, err: msg }, 'shared poll refresh failed');
      return false;
    }
    const answered = result.items;
    if (answered !== undefined && !Array.isArray(answered)) {
      this.deps.stats.calls.labels(kind, 'bad_response').inc();
      this.deps.metrics.badInput.labels('shared_poll_bad_response').inc();
      return false;
    }
    this.deps.stats.calls.labels(kind, 'ok').inc();
    if (ch.closed) return true;
    for (const raw of (answered ?? []) as unknown[]) this.apply(ch, raw, versioned);
    return true;
  }

  /** One item of a backend answer: an update (pushed when its version grew, or versionless when its data changed) or a removal. */
  private apply(ch: ChannelState, raw: unknown, versioned: boolean): void {
    if (!raw || typeof raw !== 'object') return this.badItem();
    const item = raw as { key?: unknown; data?: unknown; version?: unknown; removed?: unknown };
    if (typeof item.key !== 'string') return this.badItem();
    const ks = ch.keys.get(item.key);
    if (!ks) return; // untracked meanwhile
    if (item.removed === true) return this.remove(ch, item.key, ks);
    if (item.data === undefined) return; // versioned backends may leave out unchanged data
    let data: RawJSON;
    try {
      data = JSON.stringify(item.data);
    } catch {
      return this.badItem();
    }
    if (versioned) {
      const v = item.version;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) return this.badItem();
      if (v <= ks.version) return;
      ks.version = v;
    } else {
      if (data === ks.data) return;
      ks.version = ++this.counter;
    }
    ks.data = data;
    this.deps.stats.updates.labels('update').inc();
    const pub: Publication = { offset: 0, data, key: item.key, version: ks.version };
    for (const sub of ks.trackers) {
      const t = sub.keys.get(item.key);
      if (!t || t.pending || t.version >= ks.version) continue;
      t.version = ks.version;
      send(sub, pub);
    }
  }

  private remove(ch: ChannelState, key: string, ks: KeyState): void {
    this.deps.stats.updates.labels('removal').inc();
    for (const sub of ks.trackers) {
      sub.keys.delete(key);
      sendRemoval(sub, key);
    }
    ks.trackers.clear();
    this.dropKey(ch, key);
  }

  private badItem(): void {
    this.deps.metrics.badInput.labels('shared_poll_bad_item').inc();
  }
}

/** A key's update pushed to one tracking connection. */
export function send(sub: PollSubscription, pub: Publication): void {
  sub.client.writer.enqueue(sub.client.codec.publicationPush(sub.channel, pub));
}

export function sendRemoval(sub: PollSubscription, key: string): void {
  send(sub, { offset: 0, data: NULL_DATA, key, removed: true });
}
