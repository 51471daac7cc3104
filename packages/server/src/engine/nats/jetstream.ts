// Types only: the client is loaded when a NATS broker connects, so Redis-only nodes never load it.
import type { Msg, MsgHdrs, NatsConnection } from 'nats';
import type { Config } from '../../config/load.js';
import type { Publication, StreamPosition } from '../../protocol/types.js';
import { EngineUnavailableError } from '../errors.js';
import type { ErrorLog } from '../errorlog.js';
import type { HistoryOptions, HistoryResult, HistoryStore, PublishOptions, PublishResult } from '../types.js';
import { newEpoch } from '../redis/broker.js';
import { decodePayload } from '../redis/codec.js';
import { readThroughTail } from '../redis/tail.js';
import { channelSubject, type NatsBroker } from './broker.js';

/** Headers every message of the history stream carries (the channel's own numbering, not the stream's). */
const H_OFFSET = 'Sb-Offset';
const H_EPOCH = 'Sb-Epoch';
/** Offsets up to the floor are not history any more (history_size trimmed them, or a remove). */
const H_FLOOR = 'Sb-Floor';
/** The stream sequence of the channel's previous message (0: none): reads walk back along it. */
const H_PREV = 'Sb-Prev';
/** The stream sequence of the channel's last message before this one whose offset is a multiple of CHECKPOINT (0: none). */
const H_MARK = 'Sb-Mark';
/** "m": a position marker (an empty stream's epoch, or a remove), not a publication. */
const H_KIND = 'Sb-Kind';
const EXPECTED_LAST = 'Nats-Expected-Last-Subject-Sequence';
/** JetStream's "wrong last sequence": another publisher went first. */
const WRONG_LAST_SEQ = 10071;
/** `Nats-Expected-Stream` did not match: the stream this node knew is gone, another one took its subjects. */
const OTHER_STREAM = 10060;
const STREAM_NOT_FOUND = 10059;
const SUBJECTS_OVERLAP = 10065;
/** Attempts of one publish that lose the race to other publishers before it fails with 100. */
const MAX_ATTEMPTS = 50;
const REQUEST_TIMEOUT_MS = 2000;
/** Reads of up to this many publications walk back message by message; longer ones take one consumer batch. */
const WALK_MAX = 8;
/** Every this many offsets a message is a checkpoint: a long read hops back along them to where its batch starts. */
const CHECKPOINT = 32;
/** Reads that would take more hops than this read the channel's whole subject in one batch instead. */
const MAX_HOPS = 8;
/** Channels whose last message this node remembers (a miss costs one direct get). */
const CACHE_MAX = 100_000;

/** What the JetStream API answers (the fields this store reads). */
interface JsReply {
  error?: { code: number; err_code: number; description: string };
  /** STREAM.INFO: the stream's config. */
  config?: Record<string, unknown>;
  /** STREAM.NAMES. */
  streams?: string[] | null;
  /** CONSUMER.CREATE: the ephemeral consumer's name. */
  name?: string;
  /** A publish ack. */
  seq?: number;
  duplicate?: boolean;
}

/** A message of the stream as the engine reads it. */
interface Stored {
  readonly seq: number;
  readonly subject: string;
  readonly offset: number;
  readonly epoch: string;
  readonly floor: number;
  readonly prev: number;
  readonly mark: number;
  readonly marker: boolean;
  readonly payload: string;
}

export type JetStreamConfig = Config['engine']['nats']['jetstream'];

/**
 * The start of the stream's name: the prefix with its dots made underscores
 * (stream names have no dots), then `_history`; a node that creates the
 * stream adds `_<random>`, so a stream deleted and created again is never
 * taken for the old one (publishes name the stream they expect).
 */
export function historyStreamName(prefix: string): string {
  return `${prefix.replace(/\./g, '_')}_history`;
}

/**
 * History in JetStream (engine.nats.history "jetstream"): ONE stream for
 * every channel, one subject per channel (`P.h.c.<channel>` or
 * `P.h.b.<base64url>`), `max_msgs_per_subject` = the most any channel keeps.
 *
 * The stream numbers messages across channels, so the channel's own offset
 * and epoch travel in headers. A publish is a JetStream publish that expects
 * the channel's last stream sequence (`Nats-Expected-Last-Subject-Sequence`,
 * 0 for an empty subject) with offset = last offset + 1 under the same epoch:
 * two publishers that race are ordered by the server, the loser re-reads the
 * channel's last message and tries again. An empty subject starts a new
 * epoch, so an offset is never handed out again with other data (the stream
 * deleted, or the channel's messages aged out). A remove and the first read
 * of an empty channel write a position marker instead of a publication.
 * The live send (core NATS, the broker's) follows the ack: a JetStream
 * publish reaches core subscribers of its subject even when the stream
 * refuses it, so the stream's subjects are not the live ones.
 */
export class JetStreamHistory implements HistoryStore {
  /** `<prefix>_history`; the stream is found by its subjects (an operator may have made it, under any name). */
  readonly stream: string;
  /** The stream this node publishes to and reads (found or made by `ensure`). */
  private name = '';
  private readonly prefix: string;
  private readonly last = new Map<string, Stored>();
  private readonly queues = new Map<string, Promise<void>>();
  private ensured: Promise<void> | undefined;
  private hdrs: (() => MsgHdrs) | undefined;

  constructor(
    private readonly cfg: JetStreamConfig,
    natsPrefix: string,
    private readonly broker: NatsBroker,
    private readonly errors: ErrorLog,
    /** Nats-Msg-Id duplicates are found within this window (engine.redis.idempotent_result_ttl). */
    private readonly duplicateWindowMs: number,
  ) {
    this.stream = historyStreamName(natsPrefix);
    this.prefix = `${natsPrefix}.h`;
  }

  subject(channel: string): string {
    return channelSubject(this.prefix, channel);
  }

  // ---- publish (called by the broker; `send` is its live send, made under this channel's order) ----

  async append(
    channel: string,
    payload: string,
    opts: PublishOptions,
    send: (r: StreamPosition) => void,
  ): Promise<{ result: PublishResult; dup: boolean }> {
    if (!(opts.historySize > 0 && opts.historyTtlMs > 0)) {
      send({ offset: 0, epoch: '' });
      return { result: { offset: 0, epoch: '' }, dup: false };
    }
    if (opts.historySize > this.cfg.max_history_size)
      throw new EngineUnavailableError(
        'failed',
        `history_size ${opts.historySize} above engine.nats.jetstream.max_history_size (${this.cfg.max_history_size})`,
      );
    const subject = this.subject(channel);
    return this.serial(channel, async () => {
      let top = this.last.get(channel) ?? (await this.readTop(channel));
      for (let attempt = 1; ; attempt++) {
        const offset = top ? top.offset + 1 : 1;
        const epoch = top ? top.epoch : newEpoch();
        const floor = Math.max(top?.floor ?? 0, offset - opts.historySize);
        const h = await this.headers(offset, epoch, floor, top);
        if (opts.idempotencyKey) h.set('Nats-Msg-Id', `${subject} ${encodeURIComponent(opts.idempotencyKey)}`);
        const ack = await this.publishJs(subject, payload, h);
        if (ack.duplicate) {
          // The first publish's message answers (it names its sequence); trimmed away since, only the epoch is known.
          const first = await this.getSeq(ack.seq);
          const result = first && first.subject === subject ? { offset: first.offset, epoch: first.epoch } : { offset: 0, epoch };
          return { result, dup: true };
        }
        if (ack.seq > 0) {
          const mark = markOf(top);
          this.remember(channel, { seq: ack.seq, subject, offset, epoch, floor, prev: top?.seq ?? 0, mark, marker: false, payload: '' });
          send({ offset, epoch });
          return { result: { offset, epoch }, dup: false };
        }
        if (!retry(ack.errCode) || attempt >= MAX_ATTEMPTS)
          throw new EngineUnavailableError('failed', `jetstream: ${ack.error ?? 'publish refused'}`);
        top = await this.readTop(channel); // another publisher went first, or the stream is another one
      }
    });
  }

  // ---- HistoryStore ----

  read(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    return readThroughTail(this.broker, channel, opts, () => this.readStream(channel, opts));
  }

  /** Writes a marker whose floor is the top: the publications go (purged), offset and epoch stay. */
  async remove(channel: string): Promise<void> {
    const subject = this.subject(channel);
    await this.serial(channel, async () => {
      for (let attempt = 1; ; attempt++) {
        const top = await this.readTop(channel);
        if (!top || top.floor >= top.offset) return;
        const h = await this.headers(top.offset, top.epoch, top.offset, top);
        h.set(H_KIND, 'm');
        const ack = await this.publishJs(subject, '', h);
        if (ack.seq > 0) {
          this.remember(channel, { ...top, seq: ack.seq, floor: top.offset, prev: top.seq, mark: markOf(top), marker: true, payload: '' });
          // Frees the space now; the floor alone already hides them.
          const purged = await this.api(`STREAM.PURGE.${this.name}`, { filter: subject, seq: ack.seq });
          if (purged.error)
            this.errors.warn(
              'jetstream_purge',
              { stream: this.name, channel, err: purged.error.description },
              'removed history not purged',
            );
          return;
        }
        if (!retry(ack.errCode) || attempt >= MAX_ATTEMPTS)
          throw new EngineUnavailableError('failed', `jetstream: ${ack.error ?? 'remove refused'}`);
      }
    });
  }

  private async readStream(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const top = (await this.readTop(channel)) ?? (await this.fixEpoch(channel));
    const position = { offset: top.offset, epoch: top.epoch };
    if (opts.limit === 0 || (opts.since && opts.since.epoch !== top.epoch)) return { publications: [], position };
    const lo = Math.max(top.floor, opts.since?.offset ?? 0);
    const minTime = opts.historyTtlMs > 0 ? Date.now() - opts.historyTtlMs : 0;
    const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : Infinity;
    if (Math.min(top.offset - lo, opts.reverse ? limit : Infinity) > WALK_MAX) {
      // One batch of the channel's messages (at most max_history_size): the ones above `lo` of this epoch, in order.
      const pubs: Publication[] = [];
      // The newest `limit` of a reverse read are the last offsets (age only drops older ones).
      const first = opts.reverse && limit < Infinity ? Math.max(lo + 1, top.offset - limit + 1) : lo + 1;
      const start = Math.ceil((top.offset - first) / CHECKPOINT) <= MAX_HOPS ? await this.startSeq(top, first) : 0;
      for (const m of await this.batch(top, start)) {
        if (m.marker || m.epoch !== top.epoch || m.offset <= lo) continue;
        const pub = decodePayload(m.payload, m.offset);
        if (minTime > 0 && pub.time !== undefined && pub.time < minTime) continue;
        pubs.push(pub);
      }
      if (opts.reverse) pubs.reverse();
      return { publications: limit < pubs.length ? pubs.slice(0, limit) : pubs, position };
    }
    // Newest first, back along the channel's own chain of messages, down to the floor, the since offset or the age limit.
    const out: Publication[] = [];
    let m: Stored | undefined = top;
    while (m && m.offset > lo && m.epoch === top.epoch) {
      if (!m.marker) {
        const pub = decodePayload(m.payload, m.offset);
        if (minTime > 0 && pub.time !== undefined && pub.time < minTime) break;
        out.push(pub);
        if (opts.reverse && out.length >= limit) break;
      }
      if (m.prev <= 0 || m.offset - 1 <= lo) break;
      const prev: Stored | undefined = await this.getSeq(m.prev);
      if (prev && (prev.subject !== m.subject || prev.offset !== m.offset - (m.marker ? 0 : 1))) break;
      m = prev;
    }
    if (opts.reverse) return { publications: out, position };
    out.reverse();
    return { publications: limit < out.length ? out.slice(0, limit) : out, position };
  }

  /** An empty channel read: a marker at offset 0 fixes its epoch, so the first publish keeps it. */
  private fixEpoch(channel: string): Promise<Stored> {
    const subject = this.subject(channel);
    return this.serial(channel, async () => {
      for (let attempt = 1; ; attempt++) {
        const top = await this.readTop(channel);
        if (top) return top;
        const epoch = newEpoch();
        const h = await this.headers(0, epoch, 0, undefined);
        h.set(H_KIND, 'm');
        const ack = await this.publishJs(subject, '', h);
        if (ack.seq > 0) {
          const marker = { seq: ack.seq, subject, offset: 0, epoch, floor: 0, prev: 0, mark: 0, marker: true, payload: '' };
          this.remember(channel, marker);
          return marker;
        }
        if (!retry(ack.errCode) || attempt >= MAX_ATTEMPTS)
          throw new EngineUnavailableError('failed', `jetstream: ${ack.error ?? 'marker refused'}`);
      }
    });
  }

  // ---- the stream ----

  /** What this node knew of the stream may be stale (NATS reconnected, the stream went): forget it. */
  invalidate(): void {
    this.ensured = undefined;
    this.last.clear();
  }

  /** Finds the stream, or creates it; updates the limits of one found (storage cannot change: a warning says so). */
  private ensure(): Promise<void> {
    this.ensured ??= this.create().catch((e: unknown) => {
      this.ensured = undefined;
      throw e;
    });
    return this.ensured;
  }

  private async create(): Promise<void> {
    const want = {
      name: `${this.stream}_${newEpoch()}`,
      subjects: [`${this.prefix}.>`],
      retention: 'limits',
      storage: this.cfg.storage,
      num_replicas: this.cfg.replicas,
      max_msgs_per_subject: this.cfg.max_history_size,
      max_age: this.cfg.max_age * 1e6,
      // The server refuses a duplicate window longer than max_age.
      duplicate_window: Math.min(this.cfg.max_age, Math.max(1000, this.duplicateWindowMs)) * 1e6,
      allow_direct: true,
      discard: 'old',
    };
    for (let attempt = 1; ; attempt++) {
      const names = await this.api('STREAM.NAMES', { subject: want.subjects[0] });
      if (names.error) throw new EngineUnavailableError('failed', `jetstream: ${names.error.description}`);
      const found = names.streams ?? [];
      if (found.length > 1)
        throw new EngineUnavailableError('failed', `jetstream: streams ${found.join(', ')} overlap ${want.subjects[0]}`);
      if (found.length === 1) {
        this.name = found[0]!;
        break;
      }
      const made = await this.api(`STREAM.CREATE.${want.name}`, want);
      if (!made.error) {
        this.name = want.name;
        return;
      }
      // Another node created it first: find that one.
      if (made.error.err_code !== SUBJECTS_OVERLAP || attempt >= 3)
        throw new EngineUnavailableError('failed', `jetstream: ${made.error.description}`);
    }
    const info = await this.api(`STREAM.INFO.${this.name}`);
    if (info.error) throw new EngineUnavailableError('failed', `jetstream: ${info.error.description}`);
    const have = info.config ?? {};
    // Interest and workqueue streams drop messages on their own (no consumer, or a read): offsets would be handed out again.
    if (have.retention !== undefined && have.retention !== 'limits') {
      this.name = '';
      throw new EngineUnavailableError(
        'failed',
        `jetstream: stream ${String(info.config?.name)} has retention "${String(have.retention)}"; history needs "limits"`,
      );
    }
    if (have.storage !== want.storage)
      this.errors.warn(
        'jetstream_storage',
        { stream: this.name, have: have.storage, want: want.storage },
        'stream storage differs from the config and cannot change',
      );
    const keys = ['max_msgs_per_subject', 'max_age', 'duplicate_window', 'allow_direct', 'num_replicas'] as const;
    if (keys.some((k) => JSON.stringify(have[k]) !== JSON.stringify(want[k]))) {
      const upd = await this.api(`STREAM.UPDATE.${this.name}`, {
        ...have,
        ...want,
        name: this.name,
        subjects: have.subjects,
        storage: have.storage,
      });
      if (upd.error) this.errors.warn('jetstream_update', { stream: this.name, err: upd.error.description }, 'stream limits not updated');
    }
  }

  private nc(): NatsConnection {
    const nc = this.broker.connection;
    if (!nc) throw new EngineUnavailableError('disconnected', 'nats');
    return nc;
  }

  private async api(subject: string, body?: unknown): Promise<JsReply> {
    try {
      const r = await this.nc().request(`$JS.API.${subject}`, body === undefined ? '' : JSON.stringify(body), {
        timeout: REQUEST_TIMEOUT_MS,
      });
      return r.json<JsReply>();
    } catch (e) {
      // Nothing answers on $JS.API: the server (or this account) has no JetStream.
      if ((e as { code?: string }).code === '503')
        throw new EngineUnavailableError('failed', 'jetstream: no answer on $JS.API (JetStream is not enabled on the nats-server)');
      throw unavailable(e);
    }
  }

  /** A request that, with no stream to answer it (deleted, never made), makes the stream and asks once more. */
  private async ask(subject: (stream: string) => string, data: string, headers?: MsgHdrs): Promise<Msg> {
    await this.ensure();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.nc().request(subject(this.name), data, { timeout: REQUEST_TIMEOUT_MS, headers });
      } catch (e) {
        if (attempt > 1 || (e as { code?: string }).code !== '503') throw unavailable(e);
        this.invalidate();
        await this.ensure();
      }
    }
  }

  private async publishJs(
    subject: string,
    payload: string,
    h: MsgHdrs,
  ): Promise<{ seq: number; duplicate: boolean; errCode?: number; error?: string }> {
    await this.ensure();
    h.set('Nats-Expected-Stream', this.name);
    const r = (await this.ask(() => subject, payload, h)).json<JsReply>();
    if (r.error) {
      if (r.error.err_code === STREAM_NOT_FOUND || r.error.err_code === OTHER_STREAM) this.invalidate();
      return { seq: 0, duplicate: false, errCode: r.error.err_code, error: String(r.error.description) };
    }
    return { seq: Number(r.seq), duplicate: r.duplicate === true };
  }

  private async direct(body: unknown): Promise<Stored | undefined> {
    const m = await this.ask((stream) => `$JS.API.DIRECT.GET.${stream}`, JSON.stringify(body));
    const h = m.headers;
    if (!h || h.code === 404) return undefined;
    if (h.code >= 400) throw new EngineUnavailableError('failed', `jetstream direct get: ${h.code} ${h.description}`);
    return stored(m, Number(h.get('Nats-Sequence')), h.get('Nats-Subject'));
  }

  /**
   * The channel's messages up to `top`, oldest first, through an ephemeral
   * consumer filtered to its subject: three round trips (create, fetch,
   * delete) and one batch, where a walk is one round trip per message.
   */
  private async batch(top: Stored, start: number): Promise<Stored[]> {
    await this.ensure();
    const stream = this.name;
    const config = {
      ...(start > 0 ? { deliver_policy: 'by_start_sequence', opt_start_seq: start } : { deliver_policy: 'all' }),
      filter_subject: top.subject,
      ack_policy: 'none',
      inactive_threshold: 10e9,
      mem_storage: true,
      num_replicas: 1,
    };
    const made = await this.api(`CONSUMER.CREATE.${stream}`, { stream_name: stream, config });
    if (made.error) {
      if (made.error.err_code === STREAM_NOT_FOUND) this.invalidate();
      throw new EngineUnavailableError('failed', `jetstream: ${made.error.description}`);
    }
    const nc = this.nc();
    const consumer = String(made.name);
    const inbox = `_INBOX.${consumer}`;
    const out: Stored[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error): void => {
          clearTimeout(timer);
          sub.unsubscribe();
          if (e) reject(e);
          else resolve();
        };
        const timer = setTimeout(() => done(new EngineUnavailableError('timeout', 'jetstream batch read')), REQUEST_TIMEOUT_MS);
        const sub = nc.subscribe(inbox, {
          callback: (err, m) => {
            if (err) return done(unavailable(err));
            const h = m.headers;
            if (h && h.code >= 400) return done(); // no more messages
            // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
            const t = m.reply?.split('.') ?? [];
            const seq = Number(t[5]);
            if (seq <= top.seq) out.push(stored(m, seq, m.subject));
            if (seq >= top.seq || t[8] === '0') done();
          },
        });
        nc.publish(
          `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
          JSON.stringify({ batch: this.cfg.max_history_size + 2, no_wait: true }),
          {
            reply: inbox,
          },
        );
      });
    } finally {
      // The consumer goes after inactive_threshold anyway.
      nc.publish(`$JS.API.CONSUMER.DELETE.${stream}.${consumer}`);
    }
    return out;
  }

  /**
   * A stream sequence at or before the channel's message at offset `first`:
   * back from `top` along the checkpoints (0 when the chain breaks: the batch then starts at the subject's first message).
   */
  private async startSeq(top: Stored, first: number): Promise<number> {
    let c = top;
    for (let hop = 0; hop <= MAX_HOPS + 1; hop++) {
      if (c.offset <= first) return c.seq;
      if (c.mark <= 0) return 0;
      const next = await this.getSeq(c.mark);
      if (!next || next.subject !== top.subject || next.epoch !== top.epoch || next.offset >= c.offset) return 0;
      c = next;
    }
    return 0;
  }

  private getSeq(seq: number): Promise<Stored | undefined> {
    return this.direct({ seq });
  }

  /** The channel's last message (its position), remembered for the next publish. */
  private async readTop(channel: string): Promise<Stored | undefined> {
    const top = await this.direct({ last_by_subj: this.subject(channel) });
    if (top) this.remember(channel, top);
    else this.last.delete(channel);
    return top;
  }

  private remember(channel: string, s: Stored): void {
    this.last.delete(channel);
    if (this.last.size >= CACHE_MAX) this.last.delete(this.last.keys().next().value!);
    this.last.set(channel, { ...s, payload: '' });
  }

  /** Headers of the channel's next message after `top` (undefined: the subject is empty). */
  private async headers(offset: number, epoch: string, floor: number, top: Stored | undefined): Promise<MsgHdrs> {
    const prev = top?.seq ?? 0;
    if (!this.hdrs) this.hdrs = (await import('nats')).headers;
    const h = this.hdrs();
    h.set(H_OFFSET, String(offset));
    h.set(H_EPOCH, epoch);
    h.set(H_FLOOR, String(floor));
    h.set(H_PREV, String(prev));
    h.set(H_MARK, String(markOf(top)));
    h.set(EXPECTED_LAST, String(prev));
    return h;
  }

  /** One channel's publishes, removes and markers run one after another on this node (other nodes race through the expected sequence). */
  private serial<T>(channel: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(channel) ?? Promise.resolve();
    const run = prev.then(fn);
    const done = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(channel, done);
    void done.then(() => {
      if (this.queues.get(channel) === done) this.queues.delete(channel);
    });
    return run;
  }
}

/** The checkpoint a message after `top` points to: `top` itself when its offset is one, else the one `top` points to. */
function markOf(top: Stored | undefined): number {
  if (!top) return 0;
  return top.offset % CHECKPOINT === 0 ? top.seq : top.mark;
}

function stored(m: Msg, seq: number, subject: string): Stored {
  const h = m.headers;
  return {
    seq,
    subject,
    offset: Number(h?.get(H_OFFSET) || 0),
    epoch: h?.get(H_EPOCH) ?? '',
    floor: Number(h?.get(H_FLOOR) || 0),
    prev: Number(h?.get(H_PREV) || 0),
    mark: Number(h?.get(H_MARK) || 0),
    marker: h?.get(H_KIND) === 'm',
    payload: m.string(),
  };
}

/** Lost a race (another publisher, or the stream changed under this node): read the channel's last message again and retry. */
function retry(code: number | undefined): boolean {
  return code === WRONG_LAST_SEQ || code === OTHER_STREAM || code === STREAM_NOT_FOUND;
}

function unavailable(e: unknown): EngineUnavailableError {
  if (e instanceof EngineUnavailableError) return e;
  const code = (e as { code?: string }).code;
  if (code === 'TIMEOUT') return new EngineUnavailableError('timeout', 'jetstream');
  return new EngineUnavailableError('failed', `jetstream: ${e instanceof Error ? e.message : String(e)}`);
}
