import type { WebSocket } from 'ws';

/** Stop handing frames to the socket while it has this much unsent. */
const HIGH_WATER = 256 * 1024;
/** Coalesce queued messages into frames of at most this size. */
const FRAME_MAX = 64 * 1024;
const NEWLINE = 0x0a;

export interface WriterStats {
  bytesOut: number;
  framesOut: number;
}

/** Global, process-wide counters (read by metrics), updated without labels on the hot path. */
export const writerStats: WriterStats = { bytesOut: 0, framesOut: 0 };

// One flush pass for every writer that got data in this turn of the event
// loop: messages queued together leave together, without a timer or a
// closure per connection.
let dirty: Writer[] = [];
let flushScheduled = false;
function scheduleFlush(w: Writer): void {
  dirty.push(w);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}
function flushAll(): void {
  flushScheduled = false;
  const batch = dirty;
  dirty = [];
  for (let i = 0; i < batch.length; i++) batch[i]!.flush();
}

/**
 * The one writer of a connection: a byte-bounded queue drained into
 * WebSocket text frames (several newline-joined messages per frame),
 * respecting the socket's buffered amount. When queue plus socket buffer
 * pass `maxQueue`, `onOverflow` runs (the session closes with 3008).
 */
export class Writer {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private waitingDrain = false;
  closed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly maxQueue: number,
    private readonly onOverflow: () => void,
  ) {}

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  enqueue(msg: Buffer): void {
    if (this.closed) return;
    this.queue.push(msg);
    this.queuedBytes += msg.length + 1;
    if (this.queuedBytes > this.maxQueue) {
      this.onOverflow();
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
    const buffered = this.ws.bufferedAmount;
    if (!force && buffered > HIGH_WATER) {
      if (buffered + this.queuedBytes > this.maxQueue) {
        this.onOverflow();
        return;
      }
      this.waitDrain();
      return;
    }
    const q = this.queue;
    this.queue = [];
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
      let frame: Buffer;
      if (j === i + 1) {
        frame = q[i]!;
      } else {
        frame = Buffer.allocUnsafe(size);
        let pos = 0;
        for (let k = i; k < j; k++) {
          if (k > i) frame[pos++] = NEWLINE;
          pos += q[k]!.copy(frame, pos);
        }
      }
      writerStats.bytesOut += frame.length;
      writerStats.framesOut++;
      this.ws.send(frame, { binary: false });
      i = j;
    }
  }

  private waitDrain(): void {
    const socket = (this.ws as unknown as { _socket?: NodeJS.EventEmitter })._socket;
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
