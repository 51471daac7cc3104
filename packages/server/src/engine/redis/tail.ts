import type { Publication, StreamPosition } from '../../protocol/types.js';
import type { HistoryOptions, HistoryResult } from '../types.js';

/*
 * Per channel this node is subscribed to: the newest publications that came
 * through PUB/SUB (or a recovery read since the subscription), with
 * contiguous offsets. A reconnect storm recovers thousands of clients from
 * the same few seconds of a stream; they are served from here instead of one
 * XRANGE (and one decode, one encode) per client.
 */

/** The most a tail keeps per channel, whatever the recovery limit. */
export const TAIL_MAX = 10_000;
/** Publications older than this leave the tail (a storm is over long before). */
export const TAIL_WINDOW_MS = 60_000;

/** The newest publications of one stream (one epoch), offsets contiguous and ascending. */
export class Tail {
  private epoch = '';
  private pubs: Publication[] = [];

  constructor(private readonly cap: number) {}

  /** Bumped by every reset: a store read that began before one must not seed the tail with what it read. */
  generation = 0;

  reset(epoch: string): void {
    this.epoch = epoch;
    this.pubs = [];
    this.generation++;
  }

  push(epoch: string, pub: Publication): void {
    const last = this.pubs[this.pubs.length - 1];
    if (epoch !== this.epoch || (last && pub.offset !== last.offset + 1)) {
      if (epoch === this.epoch && last && pub.offset <= last.offset) return; // seen already
      this.reset(epoch); // a gap or a new stream: start over from here
    }
    this.pubs.push(pub);
    this.trim();
  }

  /** Publications after `since`, when this tail holds all of them (else undefined: ask Redis). */
  read(since: StreamPosition, limit: number | undefined, minTime: number, historySize: number): HistoryResult | undefined {
    const pubs = this.pubs;
    if (pubs.length === 0 || since.epoch !== this.epoch) return undefined;
    const first = pubs[0]!.offset;
    const top = pubs[pubs.length - 1]!.offset;
    if (since.offset < first - 1 || since.offset > top) return undefined;
    // the stream keeps history_size publications: past that, Redis's answer (not recovered) is the answer
    if (historySize > 0 && since.offset < top - historySize) return undefined;
    const from = since.offset + 1 - first;
    const to = limit === undefined || limit < 0 ? pubs.length : Math.min(pubs.length, from + limit);
    const out = pubs.slice(from, to);
    if (minTime > 0 && out.length > 0 && (out[0]!.time ?? minTime) < minTime) return undefined;
    return { publications: out, position: { offset: top, epoch: this.epoch } };
  }

  /**
   * Joins a read of (since, position] with what is held (PUB/SUB may have
   * brought newer ones), when the read is all of it: offsets ascend, so the
   * first one and the count tell that nothing was cut by a limit or by age.
   */
  seed(since: StreamPosition, read: readonly Publication[], position: StreamPosition): void {
    if (since.epoch !== position.epoch || read.length === 0) return;
    if (read[0]!.offset !== since.offset + 1 || read.length !== position.offset - since.offset) return;
    const pubs = this.pubs;
    if (pubs.length > 0) {
      if (this.epoch !== position.epoch || pubs[0]!.offset > position.offset + 1) return;
      if (pubs[0]!.offset <= read[0]!.offset) return; // nothing older to add
      const older = read.filter((p) => p.offset < pubs[0]!.offset);
      this.pubs = older.concat(pubs);
    } else {
      this.epoch = position.epoch;
      this.pubs = read.slice();
    }
    this.trim();
  }

  /** Drops every publication older than the window (the engine sweeps every tail with this). */
  expire(now = Date.now()): void {
    const minTime = now - TAIL_WINDOW_MS;
    const pubs = this.pubs;
    let drop = 0;
    while (drop < pubs.length && (pubs[drop]!.time ?? 0) < minTime) drop++;
    if (drop > 0) this.pubs = pubs.slice(drop);
  }

  /** Publications held now (for tests and metrics). */
  get length(): number {
    return this.pubs.length;
  }

  /** Drops what is past the cap, in batches (amortized O(1) per push); age is the sweep's job. */
  private trim(): void {
    const pubs = this.pubs;
    if (pubs.length > this.cap + (this.cap >> 2)) this.pubs = pubs.slice(pubs.length - this.cap);
  }
}

/** The broker side of a history store: the recovery tails of the subscribed channels (Redis PUB/SUB or NATS). */
export interface TailKeeper {
  readonly tails: Map<string, Tail>;
  /** Told where a subscribed channel's stream stood when a subscriber's recovery read it. */
  positionRead?(channel: string, position: StreamPosition): void;
}

/**
 * A history read through the channel's recovery tail: a recovery read of a
 * subscribed channel is answered from what the broker already brought when
 * the tail covers it; otherwise the store is read (`readStore`), and a
 * complete recovery read made while subscribed joins up with what the broker
 * brought meanwhile.
 */
export async function readThroughTail(
  keeper: TailKeeper,
  channel: string,
  opts: HistoryOptions,
  readStore: () => Promise<HistoryResult>,
): Promise<HistoryResult> {
  const tails = keeper.tails;
  const tail = opts.recovery && opts.since && !opts.reverse ? tails.get(channel) : undefined;
  if (tail) {
    const hit = tail.read(opts.since!, opts.limit, opts.historyTtlMs > 0 ? Date.now() - opts.historyTtlMs : 0, opts.historySize ?? 0);
    if (hit) return hit;
  }
  const generation = tail?.generation;
  const res = await readStore();
  if (tail && tails.get(channel) === tail && tail.generation === generation) {
    tail.seed(opts.since!, res.publications, res.position);
    keeper.positionRead?.(channel, res.position);
  }
  return res;
}
