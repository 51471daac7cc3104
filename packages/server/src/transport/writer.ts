import type { WebSocket } from 'ws';
import type { OutboundQueue } from './connection.js';
import type { Flusher } from './flusher.js';
import { directSocket, type RawSocket } from './ws-internals.js';

/** Stop handing frames to the socket while it has this much unsent. */
const HIGH_WATER = 256 * 1024;
/**
 * The same limit, and the largest frame, for a connection that is behind
 * (it had to wait for a drain and has not caught up since): what was handed
 * to the socket is out of reach of priorities and conflation, so a slow
 * reader gets less of it ahead of the queue (docs/DELIVERY.md).
 */
const BEHIND_WATER = 16 * 1024;
/** Coalesce queued messages into frames of at most this size. */
const FRAME_MAX = 256 * 1024;
const NEWLINE = 0x0a;
/** One options object for every ws.send (ws copies it; no allocation per send). */
const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;
/** First header byte: FIN plus the text or binary opcode. */
const FIN_TEXT = 0x81;
const FIN_BINARY = 0x82;

/**
 * Server-to-client WebSocket frame (FIN, text, unmasked) around a payload.
 * Written straight to the socket when the connection has no compression:
 * ws's Sender then never queues, so frames keep their order with the
 * control frames ws writes itself, and a publication that is the only
 * message of a flush is framed once for all its subscribers.
 */
function frameOf(payload: Buffer, extra = 0, first = FIN_TEXT): { frame: Buffer; offset: number } {
  const len = payload.length + extra;
  const hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(hlen + len);
  frame[0] = first;
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

/**
 * One-entry cache of a framed payload (a pure function of the payload, so
 * sharing it between nodes is harmless): during a fan-out flush, writer
 * after writer sends the same payload. One per frame kind, so the text
 * (JSON) and binary (Protobuf) paths never evict each other.
 */
class SharedFrame {
  private payload: Buffer | undefined;
  private frame: Buffer | undefined;
  constructor(private readonly first: number) {}

  of(payload: Buffer): Buffer {
    if (payload !== this.payload) {
      const { frame, offset } = frameOf(payload, 0, this.first);
      payload.copy(frame, offset);
      this.payload = payload;
      this.frame = frame;
    }
    return this.frame!;
  }
}
const textFrames = new SharedFrame(FIN_TEXT);
const binaryFrames = new SharedFrame(FIN_BINARY);

/** Copies q[i..j) into `out` from `pos`, `sep` newline bytes (0 or 1) between messages; returns the end. */
function joinInto(out: Buffer, pos: number, q: readonly Buffer[], i: number, j: number, sep: number): number {
  for (let k = i; k < j; k++) {
    if (k > i && sep === 1) out[pos++] = NEWLINE;
    pos += q[k]!.copy(out, pos);
  }
  return pos;
}

/**
 * Queue lanes, highest first. Lane 0 carries replies and the `high`
 * namespaces, 1 `normal`, 2 `low` (config `priority`, see `lanes.ts`). When a
 * connection is backed up a higher lane leaves first; a lane is FIFO, and a
 * channel has one lane, so order within a channel never changes.
 */
export const LANES = 3;
/** A conflated message's slot: skipped (and dropped) by the next flush. */
const HOLE = Buffer.alloc(0);
/**
 * Stands for a lane not used yet (shared, never pushed to; `enqueue`
 * replaces it on first use): an idle connection only ever queued replies
 * in lane 0, and an empty array costs 32 bytes.
 */
const UNUSED: Buffer[] = [];
const newLanes = (): Buffer[][] => [[], UNUSED, UNUSED];

/** Told when the queue passes its limit (an interface, not a closure: one less allocation per connection). */
export interface WriterOwner {
  onWriterOverflow(): void;
}

/**
 * The one writer of a connection: a byte-bounded queue drained into
 * WebSocket frames (JSON: text frames of newline-joined messages; Protobuf:
 * binary frames of concatenated length-delimited messages),
 * respecting the socket's buffered amount. When queue plus socket buffer
 * pass `maxQueue`, `onOverflow` runs (the session closes with 3008).
 */
export class Writer implements OutboundQueue {
  /** Told when the queue passes its limit: the connection's session, once bound. */
  owner: WriterOwner | undefined;
  /** One FIFO per lane (reused across flushes: no garbage per connection per flush); lanes 1 and 2 are made on first use. */
  private lanes: Buffer[][] = newLanes();
  /** Messages queued (holes not counted) and their bytes (a separator each). */
  private queued = 0;
  private queuedBytes = 0;
  /**
   * While the connection is behind: conflation id (channel + key) → slot
   * (index * LANES + lane) of the queued message it would replace.
   */
  private keyed: Map<string, number> | undefined;
  private holes = 0;
  /** Had to wait for a drain and has not caught up since: smaller hand-offs to the socket (BEHIND_WATER). */
  private behind = false;
  private scheduled = false;
  private waitingDrain = false;
  closed = false;
  /** The raw socket when frames may be written directly (no permessage-deflate). */
  private readonly socket: RawSocket | undefined;
  /**
   * Through ws (permessage-deflate): messages handed to ws.send whose
   * callback has not run yet, i.e. not yet written to the socket. ws counts
   * its deflate queue in `bufferedAmount`, and a socket that never refused
   * a write never emits 'drain', so the writer waits for these instead.
   */
  private sendsPending = 0;
  private readonly onSent: (() => void) | undefined;
  /**
   * Bytes between two messages of one frame: a newline for JSON (text
   * frames), none for Protobuf (binary frames of length-delimited messages).
   */
  private readonly sep: number;

  constructor(
    private readonly ws: WebSocket,
    private readonly maxQueue: number,
    /** The node's flush pass and statistics. */
    private readonly flusher: Flusher,
    /** Binary frames, messages concatenated (Protobuf); text frames, newline-joined, otherwise. */
    private readonly binary = false,
    /** Several messages per frame; false: one frame per message (unidirectional WebSocket clients parse each frame as one JSON). */
    private readonly join = true,
  ) {
    this.sep = binary ? 0 : 1;
    this.socket = directSocket(ws);
    // one callback per compressed connection, made once (none for the direct path)
    if (!this.socket) this.onSent = () => this.sent();
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /**
   * Queues a message in a lane (0, the highest, by default). With a
   * conflation id, while the connection is behind (it had to wait for the
   * socket to drain and has not caught up since), a queued message with the
   * same id is dropped: the new one takes its turn at the tail, so offsets
   * within a channel still rise.
   */
  enqueue(msg: Buffer, lane = 0, id?: string): void {
    if (this.closed) return;
    if (lane >= LANES) lane = this.lanes[lane - LANES]!.length > 0 ? lane - LANES : 0;
    let q = this.lanes[lane]!;
    if (q === UNUSED) q = this.lanes[lane] = [];
    if (id !== undefined && this.behind) this.conflate(id, q.length * LANES + lane);
    q.push(msg);
    this.queued++;
    this.queuedBytes += msg.length + this.sep;
    if (this.queuedBytes > this.maxQueue) {
      this.overflow();
      return;
    }
    if (!this.scheduled && !this.waitingDrain) {
      this.scheduled = true;
      this.flusher.schedule(this);
    }
  }

  enqueueString(msg: string): void {
    this.enqueue(Buffer.from(msg));
  }

  /** Hands queued messages to the socket, highest lane first (called from the shared flush pass). */
  flush(force = false): void {
    this.scheduled = false;
    if (this.closed || this.queued === 0) return;
    const buffered = this.socket ? this.socket.writableLength : this.ws.bufferedAmount;
    const water = this.behind ? BEHIND_WATER : HIGH_WATER;
    if (!force && buffered > water) {
      if (buffered + this.queuedBytes > this.maxQueue) {
        this.overflow();
        return;
      }
      if (this.waitDrain()) return;
    }
    if (this.holes > 0) this.compact();
    const sent = this.flusher.stats.sent;
    for (let lane = 0; lane < LANES; lane++) {
      const q = this.lanes[lane]!;
      if (q.length === 0) continue;
      const n = this.writeLane(q, force, water);
      if (n < 0) return; // the socket closed under us
      sent[lane]! += n;
      if (n < q.length) {
        // The socket is full: the rest waits, so what comes meanwhile in a higher lane still goes first.
        this.consumed(lane, n);
        this.waitDrain();
        return;
      }
      q.length = 0;
    }
    this.queued = 0;
    this.queuedBytes = 0;
    this.keyed = undefined;
    // Caught up: everything queued went out and the socket is not backed up.
    if (this.behind && (this.socket ? this.socket.writableLength : this.ws.bufferedAmount) <= BEHIND_WATER) this.behind = false;
  }

  /**
   * Writes a lane's messages in frames (several per frame up to FRAME_MAX,
   * or `water` when behind); stops once the socket holds more than `water`
   * (unless forced).
   * Returns how many messages went out, -1 if the socket is gone.
   */
  private writeLane(q: Buffer[], force: boolean, water: number): number {
    const stats = this.flusher.stats;
    const sep = this.sep;
    const frameMax = this.behind ? BEHIND_WATER : FRAME_MAX;
    let i = 0;
    while (i < q.length) {
      // Gather messages until the frame would pass FRAME_MAX.
      let size = q[i]!.length;
      let j = i + 1;
      while (this.join && j < q.length && size + sep + q[j]!.length <= frameMax) {
        size += sep + q[j]!.length;
        j++;
      }
      stats.bytesOut += size;
      stats.framesOut++;
      if (this.socket) {
        if (this.ws.readyState !== 1) {
          this.discard();
          return -1;
        }
        if (j === i + 1) {
          this.socket.write((this.binary ? binaryFrames : textFrames).of(q[i]!));
        } else {
          const { frame, offset } = frameOf(q[i]!, size - q[i]!.length, this.binary ? FIN_BINARY : FIN_TEXT);
          joinInto(frame, offset, q, i, j, sep);
          this.socket.write(frame);
        }
        i = j;
        // (not after a lane's last frame: the common single-frame flush reads nothing more)
        if (!force && i < q.length && this.socket.writableLength > water) break;
      } else {
        let payload: Buffer;
        if (j === i + 1) {
          payload = q[i]!;
        } else {
          payload = Buffer.allocUnsafe(size);
          joinInto(payload, 0, q, i, j, sep);
        }
        this.sendsPending++;
        this.ws.send(payload, this.binary ? BINARY : TEXT, this.onSent);
        i = j;
        if (!force && i < q.length && this.ws.bufferedAmount > water) break;
      }
    }
    return i;
  }

  /** The first n messages of a lane went out: drop them and keep the conflation index pointing right. */
  private consumed(lane: number, n: number): void {
    const q = this.lanes[lane]!;
    let bytes = 0;
    for (let k = 0; k < n; k++) bytes += q[k]!.length + this.sep;
    q.splice(0, n);
    for (let l = 0; l < lane; l++) this.lanes[l]!.length = 0;
    let left = q.length;
    for (let l = lane + 1; l < LANES; l++) left += this.lanes[l]!.length;
    this.queued = left;
    this.queuedBytes -= bytes;
    const keyed = this.keyed;
    if (keyed === undefined) return;
    for (const [id, slot] of keyed) {
      const l = slot % LANES;
      if (l > lane) continue;
      const idx = (slot - l) / LANES - n;
      if (l < lane || idx < 0) keyed.delete(id);
      else keyed.set(id, idx * LANES + l);
    }
  }

  /** Drops the queued message that `id` names, if any, and indexes the one about to go to `slot`. */
  private conflate(id: string, slot: number): void {
    const keyed = (this.keyed ??= new Map());
    const prev = keyed.get(id);
    keyed.set(id, slot);
    if (prev === undefined) return;
    const l = prev % LANES;
    const q = this.lanes[l]!;
    const idx = (prev - l) / LANES;
    const old = q[idx]!;
    q[idx] = HOLE;
    this.holes++;
    this.queued--;
    this.queuedBytes -= old.length + this.sep;
    this.flusher.stats.conflated[l]!++;
  }

  /** Removes the holes conflation left, keeping the index pointing at the same messages. */
  private compact(): void {
    const keyed = this.keyed;
    const moved: number[] = [];
    for (let l = 0; l < LANES; l++) {
      const q = this.lanes[l]!;
      let w = 0;
      for (let r = 0; r < q.length; r++) {
        const m = q[r]!;
        if (m === HOLE) continue;
        if (keyed !== undefined) moved[r * LANES + l] = w * LANES + l;
        q[w++] = m;
      }
      q.length = w;
    }
    if (keyed !== undefined) for (const [id, slot] of keyed) keyed.set(id, moved[slot]!);
    this.holes = 0;
  }

  /** Arranges to flush again once the backlog is written; false when there is nothing to wait for. */
  private waitDrain(): boolean {
    this.behind = true;
    if (this.socket) {
      // writableLength is above the socket's high-water mark, so a write was refused and 'drain' will come
      this.waitingDrain = true;
      this.socket.once('drain', () => this.drained());
      return true;
    }
    if (this.sendsPending > 0) {
      this.waitingDrain = true;
      return true;
    }
    // Nothing of ours is in flight: the backlog is not ours to wait for.
    return false;
  }

  private sent(): void {
    if (--this.sendsPending === 0 && this.waitingDrain) this.drained();
  }

  private drained(): void {
    this.waitingDrain = false;
    if (!this.closed && this.queued > 0 && !this.scheduled) {
      this.scheduled = true;
      this.flusher.schedule(this);
    }
  }

  private overflow(): void {
    if (this.owner) return this.owner.onWriterOverflow();
    // No session yet: nobody to tell, so close as slow (3008) ourselves.
    this.discard();
    this.close(3008, 'slow');
  }

  /** Drops everything queued (a slow consumer's backlog is not worth sending). */
  discard(): void {
    this.lanes = newLanes();
    this.queued = 0;
    this.queuedBytes = 0;
    this.keyed = undefined;
    this.holes = 0;
  }

  /**
   * Sends what is queued (unless discarded), then closes with the code.
   * The socket is destroyed if the peer does not finish the close handshake.
   */
  close(code: number, reason: string, terminateAfterMs = 5000): void {
    if (this.closed) return;
    if (this.queued > 0) this.flush(true);
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
