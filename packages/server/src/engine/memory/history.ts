import { randomBytes } from 'node:crypto';
import type { Publication } from '../../protocol/types.js';
import type { HistoryOptions, HistoryResult, HistoryStore } from '../types.js';
import { DEFAULT_HISTORY_META_TTL_MS } from '../defaults.js';
import { MemoryStream } from './stream.js';

export { DEFAULT_HISTORY_META_TTL_MS as DEFAULT_META_TTL_MS } from '../defaults.js';

function newEpoch(): string {
  return randomBytes(4).toString('hex');
}

/**
 * The streams of one process. Only a publication creates a stream: a read
 * of a channel without one answers offset 0 under the store's current
 * epoch and keeps nothing, so clients touching arbitrary channel names
 * cost no memory. The first publication creates the stream under that same
 * epoch, so a position read before it stays valid. When a stream's meta
 * expires, the store's epoch changes, so a recreated stream (offsets
 * starting over) never matches a position of the old one.
 */
export class MemoryHistory implements HistoryStore {
  private readonly streams = new Map<string, MemoryStream>();
  private epoch = newEpoch();

  constructor(private readonly defaultMetaTtlMs = DEFAULT_HISTORY_META_TTL_MS) {}

  /** Streams kept in memory now. */
  get size(): number {
    return this.streams.size;
  }

  async read(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const now = Date.now();
    const stream = this.live(channel, now);
    if (!stream) return { publications: [], position: { offset: 0, epoch: this.epoch } };
    stream.metaExpiresAt = now + this.metaTtl(opts.historyMetaTtlMs);
    const position = stream.position();
    if (opts.limit === 0) return { publications: [], position };
    if (opts.since && opts.since.epoch !== stream.epoch) return { publications: [], position };
    const pubs = stream.query(opts.since ? opts.since.offset : 0, now, opts.historyTtlMs, opts.limit, opts.reverse);
    return { publications: pubs, position };
  }

  async remove(channel: string): Promise<void> {
    this.streams.get(channel)?.clear();
  }

  /** Appends a publication (the broker's publish), creating the stream; returns its position. */
  append(channel: string, make: (offset: number) => Publication, historySize: number, metaTtlMs: number, now: number): Publication {
    let stream = this.live(channel, now);
    if (!stream) this.streams.set(channel, (stream = new MemoryStream(this.epoch)));
    stream.metaExpiresAt = now + this.metaTtl(metaTtlMs);
    const pub = make(++stream.offset);
    stream.append(pub, historySize);
    return pub;
  }

  epochOf(channel: string): string {
    return this.streams.get(channel)?.epoch ?? this.epoch;
  }

  /** Drops streams whose meta expired. */
  sweep(now = Date.now()): void {
    for (const [ch, s] of this.streams) if (s.metaExpiresAt <= now) this.drop(ch);
  }

  private live(channel: string, now: number): MemoryStream | undefined {
    const s = this.streams.get(channel);
    if (s && s.metaExpiresAt <= now) {
      this.drop(channel);
      return undefined;
    }
    return s;
  }

  private drop(channel: string): void {
    this.streams.delete(channel);
    // Offsets of this channel start over: positions of the old stream must not match the new one.
    this.epoch = newEpoch();
  }

  private metaTtl(ms: number): number {
    return ms > 0 ? ms : this.defaultMetaTtlMs;
  }
}
