import type { ServerResponse } from 'node:http';
import type { OutboundQueue } from './connection.js';
import type { Flusher } from './flusher.js';
import type { StreamFraming } from './stream-framing.js';
import type { WriterOwner } from './writer.js';

/** Stop writing while the response holds this much unsent (as the WebSocket writer). */
const HIGH_WATER = 256 * 1024;
/** Coalesce queued messages into writes of at most this size. */
const CHUNK_MAX = 256 * 1024;

/**
 * The one writer of a streaming HTTP connection (http_stream, sse and the
 * unidirectional uni_sse, uni_http_stream): a
 * byte-bounded queue drained by the node's flush pass into response writes,
 * each message framed around the shared bytes it was given. Backpressure as
 * on WebSocket: while the response's unsent bytes pass HIGH_WATER nothing is
 * written until 'drain'; when queue plus unsent bytes pass `maxQueue` the
 * owner is told (the session closes with 3008, slow).
 */
export class StreamWriter implements OutboundQueue {
  owner: WriterOwner | undefined;
  closed = false;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private waitingDrain = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxQueue: number,
    private readonly flusher: Flusher,
    private readonly framing: StreamFraming,
    /** The last message of a stream: the disconnect push for a code (undefined: none, the response just ends). */
    private readonly farewell: (code: number, reason: string) => Buffer | undefined,
  ) {}

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  enqueue(msg: Buffer): void {
    if (this.closed) return;
    this.queue.push(msg);
    this.queuedBytes += msg.length + this.framing.overhead;
    if (this.queuedBytes > this.maxQueue) {
      this.overflow();
      return;
    }
    if (!this.scheduled && !this.waitingDrain) {
      this.scheduled = true;
      this.flusher.schedule(this);
    }
  }

  /** Writes queued messages to the response (called from the shared flush pass). */
  flush(force = false): void {
    this.scheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const res = this.res;
    if (res.destroyed || res.writableEnded) {
      this.discard();
      return;
    }
    const buffered = res.writableLength;
    if (!force && buffered > HIGH_WATER) {
      if (buffered + this.queuedBytes > this.maxQueue) {
        this.overflow();
        return;
      }
      // above the stream's high-water mark a write returned false, so 'drain' will come
      this.waitingDrain = true;
      res.once('drain', () => this.drained());
      return;
    }
    const q = this.queue;
    const { framing } = this;
    const stats = this.flusher.stats;
    const over = framing.overhead;
    this.queuedBytes = 0;
    let i = 0;
    while (i < q.length) {
      let size = q[i]!.length + over;
      let j = i + 1;
      while (j < q.length && size + q[j]!.length + over <= CHUNK_MAX) {
        size += q[j]!.length + over;
        j++;
      }
      stats.bytesOut += size;
      stats.framesOut++;
      res.write(j === i + 1 ? framing.one(q[i]!) : framing.many(q, i, j, size));
      i = j;
    }
    q.length = 0;
  }

  private drained(): void {
    this.waitingDrain = false;
    if (!this.closed && this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.flusher.schedule(this);
    }
  }

  private overflow(): void {
    if (this.owner) return this.owner.onWriterOverflow();
    this.discard();
    this.close(3008, 'slow');
  }

  discard(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  /**
   * Writes what is queued (unless discarded) and the disconnect push, then
   * ends the response; the socket is destroyed if the peer does not take it.
   */
  close(code: number, reason: string, destroyAfterMs = 5000): void {
    if (this.closed) return;
    if (this.queue.length > 0) this.flush(true);
    this.closed = true;
    const res = this.res;
    if (res.destroyed || res.writableEnded) return;
    const last = this.farewell(code, reason);
    if (last === undefined) res.end();
    else res.end(this.framing.one(last));
    setTimeout(() => {
      if (!res.writableFinished) res.destroy();
    }, destroyAfterMs).unref();
  }
}
