import type { WebSocket } from 'ws';
import type { OutboundQueue } from './connection.js';

/** Stop handing frames to the socket while it has this much unsent. */
const HIGH_WATER = 256 * 1024;
/** Coalesce queued messages into frames of at most this size. */
const FRAME_MAX = 256 * 1024;
const NEWLINE = 0x0a;

export interface WriterStats {
  bytesOut: number;
  framesOut: number;
}

/**
 * Server-to-client WebSocket frame (FIN, text, unmasked) around a payload.
 * Written straight to the socket when the connection has no compression:
 * ws's Sender then never queues, so frames keep their order with the
 * control frames ws writes itself, and a publication that is the only
 * message of a flush is framed once for all its subscribers.
 */
function frameOf(payload: Buffer, extra = 0): { frame: Buffer; offset: number } {
  const len = payload.length + extra;
  const hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(hlen + len);
  frame[0] = 0x81;
  if (len < 126) {
    frame[1] = len;
  } else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  return { frame, offset: hlen };
}

// One-entry cache: during a fan-out flush, writer after writer sends the same payload.
let lastPayload: Buffer | undefined;
let lastFrame: Buffer | undefined;
function sharedFrame(payload: Buffer): Buffer {
  if (payload !== lastPayload) {
    const { frame, offset } = frameOf(payload);
    payload.copy(frame, offset);
    lastPayload = payload;
    lastFrame = frame;
  }
  return lastFrame!;
}

interface RawSocket {
  write(b: Buffer): boolean;
  writableLength: number;
  once(ev: 'drain', f: () => void): unknown;
}

/** Global, process-wide counters (read by metrics), updated without labels on the hot path. */
export const writerStats: WriterStats = { bytesOut: 0, framesOut: 0 };

// One flush pass for every writer that got data in this turn of the event
// loop: messages queued together leave together, without a timer or a
// closure per connection. A pass yields back to the event loop after
// FLUSH_SLICE_MS and goes on in the next turn, in the same order. libuv
// accepts one connection per loop turn (since 1.45, libuv#3696; Node 20),
// so a single pass over 10k sockets per turn held a reconnect storm under
// publishing to ~12 accepts/s and clients timed out in the accept queue;
// with 1 ms slices the bench's 10k storm reconnects in ~24 s instead of
// half the clients failing, at no measurable cost on fan-out CPU.
const FLUSH_SLICE_MS = 1;
const CHECK_EVERY = 64;
let dirty: Writer[] = [];
let head = 0;
let flushScheduled = false;
function scheduleFlush(w: Writer): void {
  dirty.push(w);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}
function flushAll(): void {
  const deadline = performance.now() + FLUSH_SLICE_MS;
  const batch = dirty;
  let i = head;
  while (i < batch.length) {
    try {
      batch[i++]!.flush();
    } catch (e) {
      // keep the pass alive for every other connection, then let the error surface
      head = i;
      setImmediate(flushAll);
      throw e;
    }
    if ((i & (CHECK_EVERY - 1)) === 0 && i < batch.length && performance.now() > deadline) {
      // the rest (and whatever gets dirty meanwhile) goes out in the next turn, in order
      if (i >= 8192) {
        dirty = batch.slice(i);
        head = 0;
      } else {
        head = i;
      }
      setImmediate(flushAll);
      return;
    }
  }
  flushScheduled = false;
  dirty = [];
  head = 0;
}

/** Told when the queue passes its limit (an interface, not a closure: one less allocation per connection). */
export interface WriterOwner {
  onWriterOverflow(): void;
}

/**
 * The one writer of a connection: a byte-bounded queue drained into
 * WebSocket text frames (several newline-joined messages per frame),
 * respecting the socket's buffered amount. When queue plus socket buffer
 * pass `maxQueue`, `onOverflow` runs (the session closes with 3008).
 */
export class Writer implements OutboundQueue {
  /** Told when the queue passes its limit: the connection's session, once bound. */
  owner: WriterOwner | undefined;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private waitingDrain = false;
  closed = false;
  /** The raw socket when frames may be written directly (no permessage-deflate). */
  private readonly socket: RawSocket | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly maxQueue: number,
  ) {
    const internal = ws as unknown as { _socket?: RawSocket; _extensions?: Record<string, unknown> };
    if (internal._socket && (!internal._extensions || Object.keys(internal._extensions).length === 0)) this.socket = internal._socket;
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  enqueue(msg: Buffer): void {
    if (this.closed) return;
    this.queue.push(msg);
    this.queuedBytes += msg.length + 1;
    if (this.queuedBytes > this.maxQueue) {
      this.overflow();
      return;
    }
    if (!this.scheduled && !this.waitingDrain) {
      this.scheduled = true;
      scheduleFlush(this);
    }
  }

  enqueueString(msg: string): void {
    this.enqueue(Buffer.from(msg));
  }

  /** Hands queued messages to the socket (called from the shared flush pass). */
  flush(force = false): void {
    this.scheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const buffered = this.socket ? this.socket.writableLength : this.ws.bufferedAmount;
    if (!force && buffered > HIGH_WATER) {
      if (buffered + this.queuedBytes > this.maxQueue) {
        this.overflow();
        return;
      }
      this.waitDrain();
      return;
    }
    // The queue array is reused across flushes (no garbage per connection per flush).
    const q = this.queue;
    this.queuedBytes = 0;
    let i = 0;
    while (i < q.length) {
      // Gather messages until the frame would pass FRAME_MAX.
      let size = q[i]!.length;
      let j = i + 1;
      while (j < q.length && size + 1 + q[j]!.length <= FRAME_MAX) {
        size += 1 + q[j]!.length;
        j++;
      }
      writerStats.bytesOut += size;
      writerStats.framesOut++;
      if (this.socket) {
        if (this.ws.readyState !== 1) {
          q.length = 0;
          return;
        }
        if (j === i + 1) {
          this.socket.write(sharedFrame(q[i]!));
        } else {
          const { frame, offset } = frameOf(q[i]!, size - q[i]!.length);
          let pos = offset;
          for (let k = i; k < j; k++) {
            if (k > i) frame[pos++] = NEWLINE;
            pos += q[k]!.copy(frame, pos);
          }
          this.socket.write(frame);
        }
      } else {
        let payload: Buffer;
        if (j === i + 1) {
          payload = q[i]!;
        } else {
          payload = Buffer.allocUnsafe(size);
          let pos = 0;
          for (let k = i; k < j; k++) {
            if (k > i) payload[pos++] = NEWLINE;
            pos += q[k]!.copy(payload, pos);
          }
        }
        this.ws.send(payload, { binary: false });
      }
      i = j;
    }
    q.length = 0;
  }

  private waitDrain(): void {
    const socket = this.socket ?? (this.ws as unknown as { _socket?: RawSocket })._socket;
    if (!socket) return;
    this.waitingDrain = true;
    socket.once('drain', () => {
      this.waitingDrain = false;
      if (!this.closed && this.queue.length > 0 && !this.scheduled) {
        this.scheduled = true;
        scheduleFlush(this);
      }
    });
  }

  private overflow(): void {
    if (this.owner) return this.owner.onWriterOverflow();
    // No session yet: nobody to tell, so close as slow (3008) ourselves.
    this.discard();
    this.close(3008, 'slow');
  }

  /** Drops everything queued (a slow consumer's backlog is not worth sending). */
  discard(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  /**
   * Sends what is queued (unless discarded), then closes with the code.
   * The socket is destroyed if the peer does not finish the close handshake.
   */
  close(code: number, reason: string, terminateAfterMs = 5000): void {
    if (this.closed) return;
    if (this.queue.length > 0) this.flush(true);
    this.closed = true;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
      return;
    }
    const ws = this.ws;
    setTimeout(() => {
      if (ws.readyState !== ws.CLOSED) ws.terminate();
    }, terminateAfterMs).unref();
  }
}
