// Types only: the client is loaded when a NATS broker connects, so Redis-only nodes never load it.
import type { NatsConnection, RequestStrategy, Subscription } from 'nats';
import type { Config } from '../../config/load.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../../protocol/types.js';
import { EngineUnavailableError } from '../errors.js';
import type { ErrorLog } from '../errorlog.js';
import type { Broker, ControlMessage, EngineHandlers, PublishOptions, PublishResult } from '../types.js';
import type { RedisBroker } from '../redis/broker.js';
import { decodeMessage, encodeInfo, encodePayload } from '../redis/codec.js';
import { TAIL_MAX, TAIL_WINDOW_MS, Tail } from '../redis/tail.js';

export type NatsConfig = Config['engine']['nats'];

/** Channel names that are already valid NATS subject tokens (no wildcards, spaces or empty tokens). */
const PLAIN = /^[A-Za-z0-9_\-:@=+,#$]+(?:\.[A-Za-z0-9_\-:@=+,#$]+)*$/;

/** The subject of a channel: `P.c.<channel>` when the name is subject-safe, else `P.b.<base64url of it>`. */
export function channelSubject(prefix: string, channel: string): string {
  return PLAIN.test(channel) ? `${prefix}.c.${channel}` : `${prefix}.b.${Buffer.from(channel).toString('base64url')}`;
}

/** Per subscribed channel: the NATS subscription and where its stream stands on this node. */
interface ChannelState {
  readonly sub: Subscription;
  /** Epoch and offset of the last publication delivered ('' / 0: none yet). */
  epoch: string;
  offset: number;
  /** The position is known (a history read or a delivered publication), even at offset 0 of a new stream. */
  based: boolean;
  /** Publications that arrived ahead of a missing offset, waiting for it (same epoch). */
  readonly ahead: Map<number, Publication>;
  gapTimer: NodeJS.Timeout | undefined;
  /** When the last publication arrived, and whether the quiet channel's position was checked since. */
  lastAt: number;
  checked: boolean;
}

/**
 * Publications between nodes over NATS, history in Redis.
 *
 * A publish appends to the Redis stream first (the publish script without
 * its PUBLISH: offset, epoch, idempotency, trim, atomically) and then sends
 * `<offset> <epoch> <payload>` on the channel's subject. Two nodes that
 * publish to one channel at once may have their messages cross in NATS, so
 * each node delivers in offset order: a publication that arrives ahead of a
 * missing offset waits up to `gap_timeout` for it. A gap that does not fill
 * (NATS dropped the message, or the publisher died between the append and
 * the send) is delivered as a gap: positioned subscribers see it and recover
 * from Redis history, exactly. A channel that goes quiet has its position
 * checked against Redis once, so a lost last publication is found too.
 *
 * Core NATS is at most once: a lost connection loses what was in flight, so
 * after a reconnect every subscribed channel is resynced (subscribers
 * resubscribe and recover from history), as with Redis PUB/SUB.
 *
 * Control messages (disconnect, unsubscribe, refresh, revoke, emulation
 * relay, connections requests) stay on Redis PUB/SUB through `control`,
 * beside the node registry, presence and revocations they act on.
 */
export class NatsBroker implements Broker {
  /** Recovery tails of the subscribed channels (read by RedisHistory). */
  readonly tails = new Map<string, Tail>();
  private readonly states = new Map<string, ChannelState>();
  private handlers: EngineHandlers | undefined;
  private nc: NatsConnection | undefined;
  private connected = false;
  private closed = false;
  private readonly tailCap: number;
  private timer: NodeJS.Timeout | undefined;
  /** Ends the wait between connect attempts. */
  private retry: (() => void) | undefined;
  /** Reads a channel's stream position from history (the quiet-channel check). */
  position: ((channel: string) => Promise<StreamPosition>) | undefined;
  /** Called when NATS is back after a disconnect (the JetStream history forgets what it knew of the stream). */
  onReconnect: (() => void) | undefined;
  /**
   * engine.nats.history "jetstream": appends to JetStream instead of Redis;
   * it calls `send` (the live send) in the channel's order, after the ack.
   */
  appender:
    | ((
        channel: string,
        payload: string,
        opts: PublishOptions,
        send: (r: StreamPosition) => void,
      ) => Promise<{ result: PublishResult; dup: boolean }>)
    | undefined;

  constructor(
    private readonly cfg: NatsConfig,
    private readonly control: RedisBroker,
    private readonly errors: ErrorLog,
    recoveryMaxPublicationLimit: number,
  ) {
    this.tailCap = Math.min(TAIL_MAX, recoveryMaxPublicationLimit + 1);
  }

  /** The NATS connection, when there is one (the node registry asks other nodes through it). */
  get connection(): NatsConnection | undefined {
    return this.connected ? this.nc : undefined;
  }

  get prefix(): string {
    return this.cfg.prefix;
  }

  healthy(): boolean {
    return this.connected && !this.closed;
  }

  async start(handlers: EngineHandlers): Promise<void> {
    this.handlers = handlers;
    await this.control.start(handlers);
    const tick = Math.max(100, Math.min(this.cfg.position_check, TAIL_WINDOW_MS / 6) / 2);
    this.timer = setInterval(() => this.sweep(), tick);
    this.timer.unref();
    // A node that starts while NATS is away keeps trying in the background and reports not ready.
    const first = this.connect();
    const ok = await Promise.race([
      first.then(() => true),
      new Promise<boolean>((r) => setTimeout(r, Math.max(100, this.cfg.connect_timeout), false)),
    ]);
    if (!ok && !this.closed)
      this.errors.warn('nats_connect', { url: this.cfg.url }, 'nats not reachable at start; retrying in the background');
  }

  /** Connects, retrying every half second until it does or the broker is closed (closing ends the wait). */
  private async connect(): Promise<void> {
    const { connect } = await import('nats');
    let nc: NatsConnection | undefined;
    while (!nc) {
      if (this.closed) return;
      nc = await connect({
        servers: this.cfg.url,
        name: 'switchboard',
        timeout: Math.max(100, this.cfg.connect_timeout),
        // Once connected, it reconnects for ever (each reconnect resyncs the subscribed channels).
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
      }).catch((e: unknown) => {
        this.errors.warn('nats_connect_failed', { err: String(e) }, 'nats connect failed; retrying');
        return new Promise<undefined>((r) => {
          const timer = setTimeout(r, 500, undefined);
          this.retry = () => (clearTimeout(timer), r(undefined));
        });
      });
    }
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.connected = true;
    // The node registry's channel listing: every node answers with its channels.
    nc.subscribe(`${this.cfg.prefix}.channels`, {
      callback: (err, msg) => {
        if (!err) msg.respond(JSON.stringify(this.channels()));
      },
    });
    void this.watch(nc);
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        if (!this.closed) this.errors.warn('nats_disconnect', { server: s.data }, 'nats connection lost');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        // Messages in flight while we were away are gone: resync every subscribed channel.
        this.onReconnect?.();
        const channels = [...this.states.keys()];
        for (const ch of channels) this.forget(ch);
        this.errors.log.info({ server: s.data, channels: channels.length }, 'nats restored: resyncing subscribers');
        if (channels.length > 0) this.handlers?.onResync?.(channels);
      } else if (s.type === 'error') {
        this.errors.warn(
          'nats_error',
          { err: String(s.data) },
          'nats error (a slow consumer may drop messages: gaps are recovered from history)',
        );
      }
    }
  }

  stop(): void {
    this.closed = true;
    this.connected = false;
    this.retry?.();
    if (this.timer) clearInterval(this.timer);
    for (const st of this.states.values()) if (st.gapTimer) clearTimeout(st.gapTimer);
    this.control.stop();
  }

  async close(): Promise<void> {
    this.stop();
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
  }

  private ready(): NatsConnection {
    if (this.closed) throw new EngineUnavailableError('closed');
    if (!this.connected || !this.nc) throw new EngineUnavailableError('disconnected', 'nats');
    return this.nc;
  }

  private send(channel: string, msg: string): void {
    const nc = this.ready();
    try {
      nc.publish(channelSubject(this.cfg.prefix, channel), msg);
    } catch (e) {
      throw new EngineUnavailableError('failed', `nats: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const nc = this.ready();
    const payload = encodePayload(data, Date.now(), opts.info, opts.tags, opts.delta, opts.conflationKey);
    // Refused before it is appended: an append NATS cannot carry would be a gap for every subscriber.
    const max = nc.info?.max_payload ?? 1 << 20;
    if (Buffer.byteLength(payload) + 64 > max) {
      throw new EngineUnavailableError('failed', `publication larger than the nats server's max_payload (${max} bytes)`);
    }
    if (this.appender) {
      const sent = await this.appender(channel, payload, opts, (r) => this.send(channel, `${r.offset} ${r.epoch} ${payload}`));
      return sent.dup ? { ...sent.result, duplicate: true } : sent.result;
    }
    const { result, dup } = await this.control.append(channel, payload, opts);
    // A duplicate was sent by the first attempt, or its send failed: then the gap is found and recovered.
    if (dup) return { ...result, duplicate: true };
    // The same message as the Redis script PUBLISHes (epoch "" without history).
    this.send(channel, `${result.offset} ${result.epoch} ${payload}`);
    return result;
  }

  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    this.send(channel, 'j' + encodeInfo(info));
  }

  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    this.send(channel, 'l' + encodeInfo(info));
  }

  publishControl(msg: ControlMessage): Promise<void> {
    return this.control.publishControl(msg);
  }

  async subscribe(channel: string): Promise<void> {
    this.ready();
    if (!this.states.has(channel)) this.states.set(channel, this.newState(channel));
    // From here on every publication of the channel reaches this node.
    if (!this.tails.has(channel)) this.tails.set(channel, new Tail(this.tailCap));
  }

  async unsubscribe(channel: string): Promise<void> {
    const st = this.states.get(channel);
    this.states.delete(channel);
    this.tails.delete(channel);
    if (!st) return;
    if (st.gapTimer) clearTimeout(st.gapTimer);
    if (!st.sub.isClosed()) st.sub.unsubscribe();
  }

  /**
   * A subscriber's recovery read where the stream stood: when nothing came
   * through NATS since this node subscribed, that is where it goes on from
   * (a lost next publication is then a gap, and a quiet channel is checked).
   */
  positionRead(channel: string, position: StreamPosition): void {
    const st = this.states.get(channel);
    if (!st || st.based || st.epoch !== '') return;
    // Offset 0 counts too: a new stream's first publication is then 1, and a 2 that
    // overtakes it (another node published it) waits for it instead of being taken as the start.
    st.based = true;
    st.epoch = position.epoch;
    st.offset = position.offset;
    st.lastAt = Date.now();
    st.checked = false;
  }

  /** Channels this node is subscribed to. */
  channels(): string[] {
    return [...this.states.keys()];
  }

  /** Channels with a subscriber on any node: asks every node, and waits for `expected` answers at most `maxWaitMs`. */
  async gatherChannels(expected: number, maxWaitMs: number): Promise<string[]> {
    const nc = this.ready();
    const out = new Set<string>();
    try {
      const replies = await nc.requestMany(`${this.cfg.prefix}.channels`, '', {
        strategy: 'count' as RequestStrategy,
        maxMessages: Math.max(1, expected),
        maxWait: maxWaitMs,
      });
      for await (const r of replies) for (const ch of JSON.parse(r.string()) as string[]) out.add(ch);
    } catch (e) {
      throw new EngineUnavailableError('failed', `nats: ${e instanceof Error ? e.message : String(e)}`);
    }
    return [...out];
  }

  private newState(channel: string): ChannelState {
    const sub = this.nc!.subscribe(channelSubject(this.cfg.prefix, channel), {
      callback: (err, msg) => {
        if (err) {
          this.errors.warn('nats_subscription', { channel, err: err.message }, 'nats subscription error');
          return;
        }
        this.onMessage(channel, msg.string());
      },
    });
    return { sub, epoch: '', offset: 0, based: false, ahead: new Map(), gapTimer: undefined, lastAt: Date.now(), checked: true };
  }

  /** Forgets where the channel's stream stood (after a resync its next publication is the start). */
  private forget(channel: string): void {
    const st = this.states.get(channel);
    if (st) {
      st.epoch = '';
      st.offset = 0;
      st.based = false;
      st.ahead.clear();
      if (st.gapTimer) clearTimeout(st.gapTimer);
      st.gapTimer = undefined;
    }
    this.tails.get(channel)?.reset('');
  }

  private onMessage(channel: string, text: string): void {
    const h = this.handlers;
    const st = this.states.get(channel);
    if (!h || !st) return;
    let m: ReturnType<typeof decodeMessage>;
    try {
      m = decodeMessage(text);
    } catch (e) {
      this.errors.warn('nats_malformed_message', { channel, err: String(e) }, 'malformed nats message ignored');
      return;
    }
    if (m.kind !== 'pub') return m.kind === 'join' ? h.onJoin(channel, m.info) : h.onLeave(channel, m.info);
    const pub = m.pub;
    if (pub.offset === 0) return h.onPublication(channel, pub);
    st.lastAt = Date.now();
    st.checked = false;
    if (st.epoch !== m.epoch && st.epoch === '' && st.based && st.offset === 0) {
      st.epoch = m.epoch; // a new stream read before its first publish: order from offset 1 on
    } else if (st.epoch !== m.epoch) {
      const known = st.epoch !== '';
      this.forget(channel);
      st.epoch = m.epoch;
      // The stream was recreated (meta expired, Redis lost its data): positioned subscribers must resubscribe.
      if (known) h.onResync?.([channel]);
      this.deliver(channel, st, pub);
      return;
    }
    if (pub.offset <= st.offset) return; // sent again, or it came after its gap was given up
    if (pub.offset === st.offset + 1 || (st.offset === 0 && !st.based)) {
      this.deliver(channel, st, pub);
      this.drainAhead(channel, st);
      return;
    }
    // Ahead of a missing offset: wait for it a little (another node's publication still in flight).
    st.ahead.set(pub.offset, pub);
    if (st.ahead.size > this.tailCap) return this.giveUpGap(channel, st);
    st.gapTimer ??= setTimeout(() => this.giveUpGap(channel, st), Math.max(1, this.cfg.gap_timeout));
  }

  private deliver(channel: string, st: ChannelState, pub: Publication): void {
    st.offset = pub.offset;
    st.based = true;
    this.tails.get(channel)?.push(st.epoch, pub);
    this.handlers!.onPublication(channel, pub);
  }

  private drainAhead(channel: string, st: ChannelState): void {
    let next: Publication | undefined;
    while ((next = st.ahead.get(st.offset + 1)) !== undefined) {
      st.ahead.delete(next.offset);
      this.deliver(channel, st, next);
    }
    if (st.ahead.size === 0 && st.gapTimer) {
      clearTimeout(st.gapTimer);
      st.gapTimer = undefined;
    }
  }

  /** The missing offsets did not come: deliver what waited, in order, across the gap (positioned subscribers recover it). */
  private giveUpGap(channel: string, st: ChannelState): void {
    if (st.gapTimer) clearTimeout(st.gapTimer);
    st.gapTimer = undefined;
    if (this.states.get(channel) !== st || st.ahead.size === 0) return;
    const first = Math.min(...st.ahead.keys());
    this.errors.warn(
      'nats_gap',
      { channel, from: st.offset + 1, to: first - 1 },
      'publications missing from nats; subscribers recover them from history',
    );
    while (st.ahead.size > 0) {
      const off = Math.min(...st.ahead.keys());
      const pub = st.ahead.get(off)!;
      st.ahead.delete(off);
      this.deliver(channel, st, pub);
    }
  }

  /** Quiet channels: is the last publication this node saw the stream's last? */
  private sweep(): void {
    const now = Date.now();
    for (const tail of this.tails.values()) tail.expire(now);
    const read = this.position;
    if (!read || !this.connected) return;
    for (const [channel, st] of this.states) {
      if (st.checked || st.offset === 0 || st.ahead.size > 0 || now - st.lastAt < this.cfg.position_check) continue;
      st.checked = true;
      const seen = { epoch: st.epoch, offset: st.offset };
      read(channel).then(
        (top) => {
          if (this.states.get(channel) !== st || st.epoch !== seen.epoch || st.offset !== seen.offset) return;
          if (top.epoch === seen.epoch && top.offset <= seen.offset) return;
          this.errors.warn(
            'nats_position',
            { channel, seen: seen.offset, top: top.offset },
            'publications missing from nats; resyncing subscribers',
          );
          this.forget(channel);
          this.handlers?.onResync?.([channel]);
        },
        () => {
          st.checked = false; // Redis away: try again next round
        },
      );
    }
  }
}
