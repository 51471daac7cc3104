import { randomUUID } from 'node:crypto';
import type { ClientInfo, RawJSON, StreamPosition } from '../../protocol/types.js';
import type { Broker, ControlMessage, EngineHandlers, PublishOptions, PublishResult } from '../types.js';
import type { RedisBackend } from './backend.js';
import { EngineUnavailableError } from '../errors.js';
import { decodeMessage, encodeInfo, encodePayload } from './codec.js';
import { waitReplicas } from './connection.js';
import type { Shard } from './shard.js';
import { TAIL_MAX, TAIL_WINDOW_MS, Tail } from './tail.js';

export function newEpoch(): string {
  return randomUUID().slice(0, 8);
}

/**
 * PUB/SUB fan-out between nodes. Each publish is one Lua script (history
 * append, offset, epoch, idempotency and PUBLISH in one round trip). When a
 * PUB/SUB connection comes back the node resubscribes and reports the
 * shard's channels through `onResync`, so no subscriber misses a
 * publication silently.
 */
export class RedisBroker implements Broker {
  private handlers: EngineHandlers | undefined;
  private readonly chanPrefix: string;
  private readonly controlChannel: string;
  /** Last position seen per subscribed channel: a new epoch means the stream was lost. */
  private readonly seen = new Map<string, { epoch: string; offset: number }>();
  /** Recovery tails of the subscribed channels (read by RedisHistory). */
  readonly tails = new Map<string, Tail>();
  private readonly tailCap: number;
  private tailTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly b: RedisBackend,
    recoveryMaxPublicationLimit: number,
  ) {
    this.chanPrefix = `${b.prefix}.c.`;
    this.controlChannel = `${b.prefix}.control`;
    this.tailCap = Math.min(TAIL_MAX, recoveryMaxPublicationLimit + 1);
  }

  async start(handlers: EngineHandlers): Promise<void> {
    this.handlers = handlers;
    for (const shard of this.b.shards) this.watch(shard);
    this.b.first.wanted.add(this.controlChannel);
    // Channels that went quiet let their tails go too: what is kept is bounded by the publication rate × the window.
    this.tailTimer = setInterval(() => {
      const now = Date.now();
      for (const tail of this.tails.values()) tail.expire(now);
    }, TAIL_WINDOW_MS / 6);
    this.tailTimer.unref();
  }

  stop(): void {
    if (this.tailTimer) clearInterval(this.tailTimer);
  }

  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const b = this.b;
    const hold = opts.historySize > 0 && opts.historyTtlMs > 0 && b.cfg.replica_wait > 0;
    const payload = encodePayload(data, Date.now(), opts.info, opts.tags, opts.delta, opts.conflationKey);
    const { result, dup } = await this.run(channel, payload, opts, this.chanPrefix + channel, hold);
    // A retried idempotent publish is confirmed again: the first attempt may have failed in WAIT.
    if (hold) await this.release(b.shardOf(channel), channel, b.key('s', channel), b.key('m', channel), result);
    return dup ? { ...result, duplicate: true } : result;
  }

  /**
   * The publish script without its PUBLISH (another broker sends the
   * publication): history append, offset, epoch and idempotency, atomically.
   * `payload` is encodePayload's.
   */
  async append(channel: string, payload: string, opts: PublishOptions): Promise<{ result: PublishResult; dup: boolean }> {
    return this.run(channel, payload, opts, '', false);
  }

  private async run(
    channel: string,
    payload: string,
    opts: PublishOptions,
    pubsubName: string,
    hold: boolean,
  ): Promise<{ result: PublishResult; dup: boolean }> {
    const b = this.b;
    const withHistory = opts.historySize > 0 && opts.historyTtlMs > 0;
    const idemTtl = opts.idempotentResultTtlMs || b.cfg.idempotent_result_ttl || 300_000;
    const shard = b.shardOf(channel);
    const [res, dup] = await b.run(shard, (s) =>
      s.sbPublish(
        b.key('s', channel),
        b.key('m', channel),
        // Always a key of the channel's slot (never ""), so the script runs on Redis Cluster.
        `${b.key('i', channel)}.${opts.idempotencyKey ?? ''}`,
        payload,
        withHistory ? String(opts.historySize) : '0',
        String(opts.historyTtlMs),
        String(b.metaTtl(opts.historyMetaTtlMs)),
        pubsubName,
        newEpoch(),
        String(idemTtl),
        opts.idempotencyKey ? '1' : '0',
        hold ? '1' : '0',
      ),
    );
    const sp = res.indexOf(' ');
    return { result: { offset: Number(res.slice(0, sp)), epoch: res.slice(sp + 1) }, dup: dup === 1 };
  }

  /**
   * engine.redis.replica_wait: the publication is acknowledged, and sent to
   * subscribers, only once a replica has it, so a failover cannot lose an
   * offset anybody has seen.
   */
  async release(shard: Shard, channel: string, stream: string, meta: string, r: StreamPosition): Promise<void> {
    const b = this.b;
    const acked = await b.run(shard, () => waitReplicas(shard.cmd, stream, b.cfg.replica_wait, Math.max(1, b.cfg.replica_wait_timeout)));
    if (acked < b.cfg.replica_wait) {
      b.errors.warn('redis_replica_wait', { channel, acked }, 'publication not confirmed by enough replicas in time');
      throw new EngineUnavailableError('timeout', `WAIT: ${acked} of ${b.cfg.replica_wait} replicas`);
    }
    await b.run(shard, (s) => s.sbPublishHeld(stream, meta, this.chanPrefix + channel, String(r.offset), r.epoch));
  }

  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    const shard = this.b.shardOf(channel);
    await this.b.run(shard, () => shard.cmd.publish(this.chanPrefix + channel, 'j' + encodeInfo(info)));
  }

  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    const shard = this.b.shardOf(channel);
    await this.b.run(shard, () => shard.cmd.publish(this.chanPrefix + channel, 'l' + encodeInfo(info)));
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    const shard = this.b.first;
    await this.b.run(shard, () => shard.cmd.publish(this.controlChannel, JSON.stringify(msg)));
  }

  async subscribe(channel: string): Promise<void> {
    await this.b.shardOf(channel).subscribe(this.chanPrefix + channel);
    // From here on every publication of the channel reaches this node.
    if (!this.tails.has(channel)) this.tails.set(channel, new Tail(this.tailCap));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.seen.delete(channel);
    this.tails.delete(channel);
    if (!(await this.b.shardOf(channel).unsubscribe(this.chanPrefix + channel))) {
      this.b.errors.warn('redis_unsubscribe', { channel }, 'redis unsubscribe failed (the connection was going away)');
    }
  }

  /** The PUB/SUB channel of a channel (its publications, map updates, join and leave). */
  pubsubChannel(channel: string): string {
    return this.chanPrefix + channel;
  }

  /** Channel names of this engine's PUB/SUB channels (for the node registry's listing). */
  channelOf(pubsubName: string): string | undefined {
    return pubsubName.startsWith(this.chanPrefix) ? pubsubName.slice(this.chanPrefix.length) : undefined;
  }

  get channelPattern(): string {
    return this.chanPrefix.replace(/[*?[\]\\]/g, '\\$&') + '*';
  }

  /** The PUB/SUB connection: messages in; after a reconnect, resubscribe and resync. */
  private watch(shard: Shard): void {
    const b = this.b;
    const where = { shard: shard.index };
    let subDown = false;
    shard.sub.on('error', (e: Error) =>
      b.errors.warn(`redis_sub_error_${shard.index}`, { ...where, err: e.message }, 'redis pub/sub connection error'),
    );
    shard.sub.on('close', () => {
      if (!subDown && !b.closed) b.log.warn(where, 'redis pub/sub connection lost');
      subDown = true;
    });
    shard.sub.on('message', (name: string, msg: string) => this.onMessage(name, msg));
    shard.sub.on('ready', () => {
      const reconnect = shard.everSubscribed;
      shard.everSubscribed = true;
      subDown = false;
      shard.resubscribe().then(
        () => {
          if (!reconnect) return;
          // Publications sent while we were away are lost to PUB/SUB: every
          // subscriber of this shard's channels must resubscribe and recover.
          const channels: string[] = [];
          for (const n of shard.wanted) {
            const ch = this.channelOf(n);
            if (ch !== undefined) channels.push(ch);
          }
          for (const ch of channels) {
            this.seen.delete(ch);
            this.tails.get(ch)?.reset('');
          }
          b.log.info({ ...where, channels: channels.length }, 'redis pub/sub restored: resubscribed, resyncing subscribers');
          if (channels.length > 0) this.handlers?.onResync?.(channels);
        },
        (e: unknown) => {
          b.log.warn({ ...where, err: String(e) }, 'resubscribe failed; reconnecting');
          shard.sub.disconnect(true);
        },
      );
    });
  }

  private onMessage(name: string, msg: string): void {
    const h = this.handlers;
    if (!h) return;
    if (name === this.controlChannel) {
      let m: ControlMessage;
      try {
        m = JSON.parse(msg) as ControlMessage;
      } catch {
        this.b.errors.warn('malformed_control', {}, 'malformed control message ignored');
        return;
      }
      h.onControl(m);
      return;
    }
    const channel = this.channelOf(name);
    if (channel === undefined) return;
    let m: ReturnType<typeof decodeMessage>;
    try {
      m = decodeMessage(msg);
    } catch (e) {
      this.b.errors.warn('malformed_message', { channel, err: String(e) }, 'malformed pub/sub message ignored');
      return;
    }
    if (m.kind === 'pub') {
      if (m.pub.offset > 0) {
        const prev = this.seen.get(channel);
        if (prev?.epoch === m.epoch) {
          // Sent again: with replica_wait a publication whose PUBLISH was not
          // replicated before a failover is sent once more by the new master.
          if (m.pub.offset <= prev.offset) return;
          prev.offset = m.pub.offset;
        } else {
          this.seen.set(channel, { epoch: m.epoch, offset: m.pub.offset });
          // The stream was recreated (meta expired, Redis lost its data, a
          // replica was promoted): positioned subscribers must resubscribe.
          if (prev !== undefined) h.onResync?.([channel]);
        }
        this.tails.get(channel)?.push(m.epoch, m.pub);
      }
      h.onPublication(channel, m.pub);
    } else if (m.kind === 'join') {
      h.onJoin(channel, m.info);
    } else {
      h.onLeave(channel, m.info);
    }
  }
}
