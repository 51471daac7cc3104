import { randomBytes } from 'node:crypto';
import type { Publication, RawJSON, StreamPosition } from '../../protocol/types.js';
import { DEFAULT_HISTORY_META_TTL_MS } from '../defaults.js';
import type {
  MapPublishOptions,
  MapRemoveOptions,
  MapStateOptions,
  MapStateResult,
  MapStats,
  MapStore,
  MapStoreOptions,
  MapStreamOptions,
  MapStreamResult,
  MapUpdateResult,
} from '../map.js';
import type { EngineHandlers } from '../types.js';
import { MemoryStream } from './stream.js';

const DEFAULT_IDEMPOTENT_TTL_MS = 5 * 60_000;
const DEFAULT_CLEANUP_INTERVAL_MS = 1000;

function newEpoch(): string {
  return randomBytes(4).toString('hex');
}

interface Entry {
  pub: Publication;
  /** When the key lapses (ms since epoch); Infinity = never. */
  expiresAt: number;
}

/** One map channel: its entries, stream and position. */
class MapChannel {
  offset = 0;
  readonly entries = new Map<string, Entry>();
  readonly stream: MemoryStream;
  metaExpiresAt = Infinity;
  /** Keys with a TTL (the cleanup skips channels without). */
  ttlKeys = 0;
  /** The keys in order, for cursors; null after a key was added or removed. */
  private sorted: string[] | null = null;

  constructor(readonly epoch: string) {
    this.stream = new MemoryStream(epoch);
  }

  position(): StreamPosition {
    return { offset: this.offset, epoch: this.epoch };
  }

  keysChanged(): void {
    this.sorted = null;
  }

  sortedKeys(): string[] {
    return (this.sorted ??= [...this.entries.keys()].sort());
  }
}

/**
 * Map channels of one process. Every mutation takes the channel's next
 * offset (streamless channels too), goes into the stream when the channel
 * keeps one, and is delivered to the node's handlers before the call
 * returns, so delivery is in offset order. Like MemoryHistory, a channel
 * read before its first mutation answers offset 0 under the store's epoch,
 * and the first mutation keeps that epoch; a dropped channel changes it.
 */
export class MemoryMaps implements MapStore {
  private readonly channels = new Map<string, MapChannel>();
  private readonly idempotent = new Map<string, { result: MapUpdateResult; expiresAt: number }>();
  private epoch = newEpoch();
  private handlers: EngineHandlers | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly cleanupIntervalMs: number;

  constructor(
    opts: MapStoreOptions = {},
    private readonly defaultMetaTtlMs = DEFAULT_HISTORY_META_TTL_MS,
  ) {
    this.cleanupIntervalMs = opts.cleanupIntervalMs ?? DEFAULT_CLEANUP_INTERVAL_MS;
  }

  /** Starts delivering to `handlers` and removing lapsed keys. */
  start(handlers: EngineHandlers): void {
    this.handlers = handlers;
    this.timer = setInterval(() => this.expireKeys(), this.cleanupIntervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Channels kept in memory now. */
  get size(): number {
    return this.channels.size;
  }

  async publish(channel: string, key: string, data: RawJSON, opts: MapPublishOptions): Promise<MapUpdateResult> {
    const now = Date.now();
    return this.once(channel, opts.idempotencyKey, opts.idempotentResultTtlMs, now, () => {
      const ch = this.live(channel, now);
      const prev = ch?.entries.get(key);
      const present = prev !== undefined && prev.expiresAt > now;
      const top = (): MapUpdateResult => ({ ...(ch ? ch.position() : { offset: 0, epoch: this.epoch }), suppressed: true });
      if (opts.keyMode === 'if_new' && present) {
        if (opts.refreshTtlOnSuppress && opts.keyTtlMs > 0) prev.expiresAt = now + opts.keyTtlMs;
        return { ...top(), suppressReason: 'key_exists' };
      }
      if (opts.keyMode === 'if_exists' && !present) return { ...top(), suppressReason: 'key_not_found' };
      if (!present && opts.maxKeys && opts.maxKeys > 0 && ch && this.count(ch, now) >= opts.maxKeys) {
        return { ...top(), suppressReason: 'too_many_keys' };
      }
      const c = this.create(channel, now, opts.metaTtlMs);
      const pub: Publication = {
        offset: ++c.offset,
        data,
        key,
        info: opts.info,
        tags: opts.tags,
        time: now,
        ...(opts.delta ? { delta: true } : {}),
      };
      const expiresAt = opts.keyTtlMs > 0 ? now + opts.keyTtlMs : Infinity;
      const had = c.entries.get(key);
      if (had === undefined) c.keysChanged();
      else if (had.expiresAt !== Infinity) c.ttlKeys--;
      if (expiresAt !== Infinity) c.ttlKeys++;
      c.entries.set(key, { pub, expiresAt });
      return this.append(channel, c, pub, opts.streamSize);
    });
  }

  async remove(channel: string, key: string, opts: MapRemoveOptions): Promise<MapUpdateResult> {
    const now = Date.now();
    return this.once(channel, opts.idempotencyKey, opts.idempotentResultTtlMs, now, () => {
      const ch = this.live(channel, now);
      const prev = ch?.entries.get(key);
      if (!ch || prev === undefined || prev.expiresAt <= now) {
        return { ...(ch ? ch.position() : { offset: 0, epoch: this.epoch }), suppressed: true, suppressReason: 'key_not_found' };
      }
      ch.metaExpiresAt = now + this.metaTtl(opts.metaTtlMs);
      return this.drop(channel, ch, key, prev, opts.streamSize, now, opts.info);
    });
  }

  async readState(channel: string, opts: MapStateOptions): Promise<MapStateResult> {
    const now = Date.now();
    const ch = this.live(channel, now);
    if (!ch) return { entries: [], cursor: '', position: { offset: 0, epoch: this.epoch } };
    ch.metaExpiresAt = Math.max(ch.metaExpiresAt, now + this.metaTtl(opts.metaTtlMs));
    const position = ch.position();
    if (opts.key !== undefined) {
      const e = ch.entries.get(opts.key);
      return { entries: e && e.expiresAt > now ? [e.pub] : [], cursor: '', position };
    }
    const keys = ch.sortedKeys();
    let i = opts.cursor ? upperBound(keys, opts.cursor) : 0;
    const limit = Math.max(1, opts.limit);
    const entries: Publication[] = [];
    for (; i < keys.length && entries.length < limit; i++) {
      const e = ch.entries.get(keys[i]!);
      if (e && e.expiresAt > now) entries.push(e.pub);
    }
    const cursor = i < keys.length && entries.length > 0 ? entries[entries.length - 1]!.key! : '';
    return { entries, cursor, position };
  }

  async readStream(channel: string, opts: MapStreamOptions): Promise<MapStreamResult> {
    const now = Date.now();
    const ch = this.live(channel, now);
    const position = ch ? ch.position() : { offset: 0, epoch: this.epoch };
    if (ch) ch.metaExpiresAt = Math.max(ch.metaExpiresAt, now + this.metaTtl(opts.metaTtlMs));
    const since = opts.since;
    if (since && (since.epoch !== position.epoch || since.offset > position.offset)) {
      return { publications: [], position, recoverable: false };
    }
    if (!ch || opts.limit === 0) return { publications: [], position, recoverable: true };
    const after = since ? since.offset : 0;
    const pubs = ch.stream.query(after, now, opts.streamTtlMs, opts.limit);
    // Continuable only when the stream still holds the entry right after `since` (or nothing came since).
    const recoverable = !since || since.offset === position.offset || (pubs.length > 0 && pubs[0]!.offset === since.offset + 1);
    return { publications: recoverable ? pubs : [], position, recoverable };
  }

  async stats(channel: string): Promise<MapStats> {
    const now = Date.now();
    const ch = this.live(channel, now);
    return { numKeys: ch ? this.count(ch, now) : 0 };
  }

  async clear(channel: string): Promise<void> {
    if (this.channels.has(channel)) this.dropChannel(channel);
  }

  /** Removes lapsed keys, each with a removal publication; drops channels whose meta expired with no keys left. */
  expireKeys(now = Date.now()): void {
    for (const [name, ch] of this.channels) {
      if (ch.ttlKeys > 0) {
        for (const [key, e] of ch.entries) {
          if (e.expiresAt <= now) this.drop(name, ch, key, e, ch.stream.capacity, now, undefined);
        }
      }
      if (ch.metaExpiresAt <= now && ch.entries.size === 0) this.dropChannel(name);
    }
    for (const [k, v] of this.idempotent) if (v.expiresAt <= now) this.idempotent.delete(k);
  }

  private drop(
    channel: string,
    ch: MapChannel,
    key: string,
    prev: Entry,
    streamSize: number,
    now: number,
    info: Publication['info'],
  ): MapUpdateResult {
    ch.entries.delete(key);
    ch.keysChanged();
    if (prev.expiresAt !== Infinity) ch.ttlKeys--;
    const pub: Publication = { offset: ++ch.offset, data: '', key, removed: true, info, tags: prev.pub.tags, time: now };
    return this.append(channel, ch, pub, streamSize);
  }

  private append(channel: string, ch: MapChannel, pub: Publication, streamSize: number): MapUpdateResult {
    if (streamSize > 0) ch.stream.append(pub, streamSize);
    else if (ch.stream.capacity > 0) ch.stream.clear();
    this.handlers?.onPublication(channel, pub);
    return { offset: pub.offset, epoch: ch.epoch };
  }

  /** Runs `fn` unless the idempotency key matched inside its window. */
  private once(
    channel: string,
    key: string | undefined,
    ttlMs: number | undefined,
    now: number,
    fn: () => MapUpdateResult,
  ): MapUpdateResult {
    if (!key) return fn();
    const k = channel + '\u0000' + key;
    const prev = this.idempotent.get(k);
    if (prev && prev.expiresAt > now) {
      return { offset: prev.result.offset, epoch: prev.result.epoch, suppressed: true, suppressReason: 'idempotency' };
    }
    const result = fn();
    if (!result.suppressed) this.idempotent.set(k, { result, expiresAt: now + (ttlMs || DEFAULT_IDEMPOTENT_TTL_MS) });
    return result;
  }

  private count(ch: MapChannel, now: number): number {
    if (ch.ttlKeys === 0) return ch.entries.size;
    let n = 0;
    for (const e of ch.entries.values()) if (e.expiresAt > now) n++;
    return n;
  }

  private create(channel: string, now: number, metaTtlMs: number): MapChannel {
    let ch = this.live(channel, now);
    if (!ch) this.channels.set(channel, (ch = new MapChannel(this.epoch)));
    ch.metaExpiresAt = now + this.metaTtl(metaTtlMs);
    return ch;
  }

  private live(channel: string, now: number): MapChannel | undefined {
    const ch = this.channels.get(channel);
    if (ch && ch.metaExpiresAt <= now && ch.entries.size === 0) {
      this.dropChannel(channel);
      return undefined;
    }
    return ch;
  }

  private dropChannel(channel: string): void {
    this.channels.delete(channel);
    // Offsets of this channel start over: positions of the old one must not match.
    this.epoch = newEpoch();
  }

  private metaTtl(ms: number): number {
    return ms > 0 ? ms : this.defaultMetaTtlMs;
  }
}

/** Index of the first key greater than `k` in sorted `keys`. */
function upperBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
