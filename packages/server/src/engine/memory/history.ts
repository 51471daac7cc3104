import { randomBytes } from 'node:crypto';
import type { Publication, StreamPosition } from '../../protocol/types.js';

/**
 * One channel's stream in memory: a bounded ring of publications with a
 * monotonic offset and an epoch that is new each time the stream is created
 * (so a restarted node, or a stream whose meta expired, is detectable).
 */
export class MemoryStream {
  readonly epoch = randomBytes(4).toString('hex');
  offset = 0;
  private buf: (Publication | undefined)[] = [];
  private head = 0; // index of the oldest element
  private size = 0;
  /** When the stream's meta expires (ms since epoch); Infinity = never. */
  metaExpiresAt = Infinity;

  append(pub: Publication, capacity: number): void {
    if (this.buf.length !== capacity) this.resize(capacity);
    if (capacity === 0) return;
    const idx = (this.head + this.size) % capacity;
    this.buf[idx] = pub;
    if (this.size < capacity) this.size++;
    else this.head = (this.head + 1) % capacity;
  }

  /** Publications with offset > after, oldest first, dropping those older than ttl. */
  since(after: number, now: number, ttlMs: number): Publication[] {
    const out: Publication[] = [];
    const cap = this.buf.length;
    for (let i = 0; i < this.size; i++) {
      const p = this.buf[(this.head + i) % cap]!;
      if (p.offset <= after) continue;
      if (ttlMs > 0 && p.time !== undefined && now - p.time > ttlMs) continue;
      out.push(p);
    }
    return out;
  }

  /** Lowest offset still retained and fresh, or offset+1 when none is. */
  oldestOffset(now: number, ttlMs: number): number {
    const cap = this.buf.length;
    for (let i = 0; i < this.size; i++) {
      const p = this.buf[(this.head + i) % cap]!;
      if (ttlMs > 0 && p.time !== undefined && now - p.time > ttlMs) continue;
      return p.offset;
    }
    return this.offset + 1;
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
