import type { OutboxEntry, WebhookOutbox } from '../types.js';

interface Held {
  readonly body: string;
  /** Who claimed it last, and when (0 = never claimed). */
  consumer: string;
  claimedAt: number;
}

/** The webhook outbox of one process: entries in insertion order, claimed and acked as the Redis stream's are. */
export class MemoryOutbox implements WebhookOutbox {
  private readonly entries = new Map<string, Held>();
  private seq = 0;

  async append(body: string, maxSize: number): Promise<boolean> {
    if (this.entries.size >= maxSize) return false;
    this.entries.set(String(++this.seq), { body, consumer: '', claimedAt: 0 });
    return true;
  }

  async claim(consumer: string, count: number, reclaimAfterMs: number, now = Date.now()): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = [];
    for (const [id, e] of this.entries) {
      if (out.length >= count) break;
      if (e.claimedAt !== 0 && now - e.claimedAt < reclaimAfterMs) continue;
      e.consumer = consumer;
      e.claimedAt = now;
      out.push({ id, body: e.body });
    }
    return out;
  }

  async touch(consumer: string, ids: readonly string[]): Promise<void> {
    const now = Date.now();
    for (const id of ids) {
      const e = this.entries.get(id);
      if (e) {
        e.consumer = consumer;
        e.claimedAt = now;
      }
    }
  }

  async ack(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.entries.delete(id);
  }

  async size(): Promise<number> {
    return this.entries.size;
  }
}
