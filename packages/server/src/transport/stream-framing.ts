/**
 * How one outbound message becomes bytes on a streaming HTTP response:
 * `prefix + message + suffix`, several messages simply concatenated. The
 * message bytes are the hub's shared per-codec bytes; framing only wraps
 * them, never re-encodes.
 */
export interface StreamFraming {
  /** The response's Content-Type. */
  readonly contentType: string;
  /** Bytes each message adds around itself. */
  readonly overhead: number;
  /** One message framed. Shared between writers: do not modify the result. */
  one(msg: Buffer): Buffer;
  /** q[i..j) framed into one buffer of `size` bytes (messages plus overhead). */
  many(q: readonly Buffer[], i: number, j: number, size: number): Buffer;
}

/**
 * `prefix + message + suffix` framing with a one-entry cache of the last
 * framed message: in a fan-out flush writer after writer sends the same
 * publication bytes, so they are framed once and the same buffer is written
 * to every response (as the WebSocket writer shares its frames). The cache
 * is a pure function of the message, so sharing it between nodes is harmless.
 */
export class AffixFraming implements StreamFraming {
  readonly overhead: number;
  private readonly pre: Buffer;
  private readonly post: Buffer;
  private last: Buffer | undefined;
  private lastFramed: Buffer | undefined;

  constructor(
    readonly contentType: string,
    prefix: string,
    suffix: string,
  ) {
    this.pre = Buffer.from(prefix);
    this.post = Buffer.from(suffix);
    this.overhead = this.pre.length + this.post.length;
  }

  one(msg: Buffer): Buffer {
    if (this.overhead === 0) return msg;
    if (msg !== this.last) {
      const out = Buffer.allocUnsafe(msg.length + this.overhead);
      this.pre.copy(out, 0);
      msg.copy(out, this.pre.length);
      this.post.copy(out, this.pre.length + msg.length);
      this.last = msg;
      this.lastFramed = out;
    }
    return this.lastFramed!;
  }

  many(q: readonly Buffer[], i: number, j: number, size: number): Buffer {
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    for (let k = i; k < j; k++) {
      pos += this.pre.copy(out, pos);
      pos += q[k]!.copy(out, pos);
      pos += this.post.copy(out, pos);
    }
    return out;
  }
}
