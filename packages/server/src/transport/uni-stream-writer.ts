import type { ServerResponse } from 'node:http';
import { Disconnects } from '../protocol/codes.js';
import { uniDisconnectPush } from '../protocol/uni-json.js';
import type { OutboundQueue } from './connection.js';
import type { Flushable, Flusher } from './flusher.js';
import type { WriterOwner } from './writer.js';

/** Stop writing while the response has this much unsent (as the WebSocket writer). */
const HIGH_WATER = 256 * 1024;

/**
 * How a message is framed in a response body: SSE events (`data: <json>\n\n`)
 * or newline-delimited JSON (HTTP streaming). The bidirectional SSE
 * emulation frames its events the same way in a file of its own.
 */
export interface StreamFraming {
  readonly prefix: Buffer;
  readonly suffix: Buffer;
}
export const SSE_FRAMING: StreamFraming = { prefix: Buffer.from('data: '), suffix: Buffer.from('\n\n') };
export const NDJSON_FRAMING: StreamFraming = { prefix: Buffer.alloc(0), suffix: Buffer.from('\n') };

/**
 * One-entry cache of a framed payload per framing: during a fan-out flush,
 * writer after writer sends the same shared push bytes, framed once.
 */
class SharedFramed {
  private payload: Buffer | undefined;
  private framed: Buffer | undefined;
  constructor(private readonly f: StreamFraming) {}
  of(payload: Buffer): Buffer {
    if (payload !== this.payload) {
      this.framed = Buffer.concat([this.f.prefix, payload, this.f.suffix]);
      this.payload = payload;
    }
    return this.framed!;
  }
}
const shared = new Map<StreamFraming, SharedFramed>([
  [SSE_FRAMING, new SharedFramed(SSE_FRAMING)],
  [NDJSON_FRAMING, new SharedFramed(NDJSON_FRAMING)],
]);

/**
 * The writer of a unidirectional HTTP connection (uni_sse, uni_http_stream):
 * the same rules as the WebSocket writer (a byte-bounded queue drained in
 * the node's flush pass, the response's buffered bytes respected, overflow
 * tells the owner, which closes as slow), framed for a response body. A
 * server-side close sends a disconnect push and ends the response.
 */
export class StreamWriter implements OutboundQueue, Flushable {
  owner: WriterOwner | undefined;
  closed = false;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private waitingDrain = false;
  private readonly cache: SharedFramed;
  private readonly extra: number;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxQueue: number,
    private readonly flusher: Flusher,
    private readonly framing: StreamFraming,
  ) {
    this.cache = shared.get(framing)!;
    this.extra = framing.prefix.length + framing.suffix.length;
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  enqueue(msg: Buffer): void {
    if (this.closed) return;
    this.queue.push(msg);
    this.queuedBytes += msg.length + this.extra;
    if (this.queuedBytes > this.maxQueue) {
      this.overflow();
      return;
    }
    if (!this.scheduled && !this.waitingDrain) {
      this.scheduled = true;
      this.flusher.schedule(this);
    }
  }

  flush(force = false): void {
    this.scheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const buffered = this.res.writableLength;
    if (!force && buffered > HIGH_WATER) {
      if (buffered + this.queuedBytes > this.maxQueue) {
        this.overflow();
        return;
      }
      this.waitingDrain = true;
      this.res.once('drain', () => this.drained());
      return;
    }
    const q = this.queue;
    const stats = this.flusher.stats;
    let out: Buffer;
    if (q.length === 1) {
      out = this.cache.of(q[0]!);
    } else {
      out = Buffer.allocUnsafe(this.queuedBytes);
      let pos = 0;
      const { prefix, suffix } = this.framing;
      for (const m of q) {
        pos += prefix.copy(out, pos);
        pos += m.copy(out, pos);
        pos += suffix.copy(out, pos);
      }
    }
    this.queuedBytes = 0;
    q.length = 0;
    stats.bytesOut += out.length;
    stats.framesOut++;
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(out);
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
    this.close(Disconnects.slow.code, Disconnects.slow.reason);
  }

  discard(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  /** Sends what is queued (unless discarded) and a disconnect push, then ends the response. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    if (code !== Disconnects.connectionClosed.code) {
      const push = uniDisconnectPush(code, reason);
      if (this.queuedBytes + push.length > this.maxQueue) this.discard();
      this.queue.push(push);
      this.queuedBytes += push.length + this.extra;
    }
    if (this.queue.length > 0) this.flush(true);
    this.closed = true;
    if (!this.res.writableEnded) this.res.end();
    // A peer that stops reading keeps the socket busy: destroy it if the end is not written in time.
    const res = this.res;
    setTimeout(() => {
      if (!res.writableFinished) res.destroy();
    }, 5000).unref();
  }
}
