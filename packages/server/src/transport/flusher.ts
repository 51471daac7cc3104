/** Bytes and frames the writers of one node handed to their sockets (read by that node's metrics). */
export interface WriterStats {
  bytesOut: number;
  framesOut: number;
  /** Messages handed to sockets, by writer lane (0 replies + `high`, 1 `normal`, 2 `low`). */
  readonly sent: number[];
  /** Queued publications replaced by a newer one with the same conflation key, by lane. */
  readonly conflated: number[];
}

/** What the flush pass calls on a writer. */
export interface Flushable {
  flush(): void;
}

// A pass yields back to the event loop after FLUSH_SLICE_MS and goes on in
// the next turn, in the same order. libuv accepts one connection per loop
// turn (since 1.45, libuv#3696; Node 20), so a single pass over 10k sockets
// per turn held a reconnect storm under publishing to ~12 accepts/s and
// clients timed out in the accept queue; with 1 ms slices the bench's 10k
// storm reconnects in ~24 s instead of half the clients failing, at no
// measurable cost on fan-out CPU.
const FLUSH_SLICE_MS = 1;
const CHECK_EVERY = 64;

/**
 * One flush pass for every writer of a node that got data in this turn of
 * the event loop: messages queued together leave together, without a timer
 * or a closure per connection. One per node (not per process), so two nodes
 * in one process keep their own statistics and their own pass.
 *
 * Per-message cost is the same as with module-level state: a writer keeps a
 * reference to its flusher (one field per connection) and `schedule` is one
 * property load more than a module function; the pass itself is a bound
 * function made once per flusher.
 */
export class Flusher {
  readonly stats: WriterStats = { bytesOut: 0, framesOut: 0, sent: [0, 0, 0], conflated: [0, 0, 0] };
  private dirty: Flushable[] = [];
  private head = 0;
  private scheduled = false;
  private readonly pass = (): void => this.flushAll();

  /** Queues a writer for the next pass (the caller ensures once per pass). */
  schedule(w: Flushable): void {
    this.dirty.push(w);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.pass);
    }
  }

  private flushAll(): void {
    const deadline = performance.now() + FLUSH_SLICE_MS;
    const batch = this.dirty;
    let i = this.head;
    while (i < batch.length) {
      try {
        batch[i++]!.flush();
      } catch (e) {
        // keep the pass alive for every other connection, then let the error surface
        this.head = i;
        setImmediate(this.pass);
        throw e;
      }
      if ((i & (CHECK_EVERY - 1)) === 0 && i < batch.length && performance.now() > deadline) {
        // the rest (and whatever gets dirty meanwhile) goes out in the next turn, in order
        if (i >= 8192) {
          this.dirty = batch.slice(i);
          this.head = 0;
        } else {
          this.head = i;
        }
        setImmediate(this.pass);
        return;
      }
    }
    this.scheduled = false;
    this.dirty = [];
    this.head = 0;
  }
}
