import type { Publication, StreamPosition } from '../../protocol/types.js';

/**
 * One channel's stream in memory: a bounded ring of publications with a
 * monotonic offset, under the epoch it was created with (see MemoryHistory
 * for how epochs change).
 */
export class MemoryStream {
  offset = 0;
  private buf: (Publication | undefined)[] = [];
  private head = 0; // index of the oldest element
  private size = 0;
  /** When the stream's meta expires (ms since epoch). */
  metaExpiresAt = Infinity;

  constructor(readonly epoch: string) {}

  /** Entries it keeps at most (its last append's capacity). */
  get capacity(): number {
    return this.buf.length;
  }

  append(pub: Publication, capacity: number): void {
    if (this.buf.length !== capacity) this.resize(capacity);
    if (capacity === 0) return;
    const idx = (this.head + this.size) % capacity;
    this.buf[idx] = pub;
    if (this.size < capacity) this.size++;
    else this.head = (this.head + 1) % capacity;
  }

  private at(i: number): Publication {
    return this.buf[(this.head + i) % this.buf.length]!;
  }

  /**
   * Publications with offset > after (oldest first, or newest first with
   * `reverse`), at most `limit`, leaving out those older than ttl. Offsets
   * in the ring are consecutive, so the start is found by arithmetic, not a
   * scan: a recovery costs what it returns, whatever the history size.
   */
  query(after: number, now: number, ttlMs: number, limit?: number, reverse = false): Publication[] {
    if (this.size === 0) return [];
    const first = this.at(0).offset;
    let start = Math.min(this.size, Math.max(0, after + 1 - first));
    if (start < this.size && this.at(start).offset !== Math.max(after + 1, first)) {
      // Not consecutive (cannot happen with one writer); stay correct anyway.
      return this.scan(after, now, ttlMs, limit, reverse);
    }
    // Entries are in time order: the expired ones are a prefix.
    while (ttlMs > 0 && start < this.size) {
      const t = this.at(start).time;
      if (t !== undefined && now - t > ttlMs) start++;
      else break;
    }
    const n = this.size - start;
    const take = limit === undefined ? n : Math.min(n, limit);
    const out = new Array<Publication>(take);
    for (let i = 0; i < take; i++) out[i] = reverse ? this.at(this.size - 1 - i) : this.at(start + i);
    return out;
  }

  private scan(after: number, now: number, ttlMs: number, limit?: number, reverse = false): Publication[] {
    let out: Publication[] = [];
    for (let i = 0; i < this.size; i++) {
      const p = this.at(i);
      if (p.offset <= after) continue;
      if (ttlMs > 0 && p.time !== undefined && now - p.time > ttlMs) continue;
      out.push(p);
    }
    if (reverse) out.reverse();
    if (limit !== undefined && out.length > limit) out = out.slice(0, limit);
    return out;
  }

  clear(): void {
    this.buf = [];
    this.head = 0;
    this.size = 0;
  }

  position(): StreamPosition {
    return { offset: this.offset, epoch: this.epoch };
  }

  private resize(capacity: number): void {
    const items: Publication[] = [];
    const cap = this.buf.length;
    for (let i = 0; i < this.size; i++) items.push(this.buf[(this.head + i) % cap]!);
    const kept = items.slice(Math.max(0, items.length - capacity));
    this.buf = new Array<Publication | undefined>(capacity);
    for (let i = 0; i < kept.length; i++) this.buf[i] = kept[i];
    this.head = 0;
    this.size = kept.length;
  }
}
