import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/load.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { Errors, ReplyError } from '../../protocol/codes.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../../protocol/types.js';
import type {
  ControlMessage,
  Engine,
  EngineHandlers,
  HistoryOptions,
  HistoryResult,
  NodeInfo,
  PresenceStats,
  PresenceStore,
  PublishOptions,
  PublishResult,
} from '../types.js';
import { CircuitBreaker } from './breaker.js';
import { decodeInfo, decodeMessage, decodePayload, encodeInfo, encodePayload } from './codec.js';
import { createClient, scripted, servers, type Client, type Scripted } from './connection.js';

type RedisConfig = Config['engine']['redis'];

/** Channels per SUBSCRIBE / UNSUBSCRIBE command when many are (re)subscribed at once. */
const SUBSCRIBE_BATCH = 512;
/** Presence entries per refresh script call. */
const PRESENCE_BATCH = 500;

interface Deferred {
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * One Redis shard: a command connection (scripts, auto-pipelined) and a
 * PUB/SUB connection, whatever the number of channels. Channels are spread
 * over shards by a hash of their name.
 */
class Shard {
  readonly cmd: Client;
  readonly sub: Client;
  readonly scripts: Scripted;
  readonly breaker: CircuitBreaker;
  /** PUB/SUB channel names this node wants on this shard (re-subscribed after every reconnect). */
  readonly wanted = new Set<string>();
  private pending = new Map<string, Deferred[]>();
  private flushScheduled = false;
  /** True once the PUB/SUB connection was ready at least once: a later ready is a reconnect. */
  everSubscribed = false;

  constructor(
    readonly index: number,
    cfg: RedisConfig,
    address: string,
  ) {
    this.cmd = createClient(cfg, address, 'cmd');
    this.sub = createClient(cfg, address, 'sub');
    this.scripts = scripted(this.cmd);
    this.breaker = new CircuitBreaker(cfg.circuit_breaker_threshold, Math.max(100, cfg.circuit_breaker_cooldown));
  }

  get cmdReady(): boolean {
    return this.cmd.status === 'ready';
  }

  get subReady(): boolean {
    return this.sub.status === 'ready';
  }

  /** Queues a SUBSCRIBE; those queued in the same tick go out as one command. */
  subscribe(name: string): Promise<void> {
    this.wanted.add(name);
    if (!this.subReady) {
      this.wanted.delete(name);
      return Promise.reject(new ReplyError(Errors.internal));
    }
    return new Promise<void>((resolve, reject) => {
      const list = this.pending.get(name);
      if (list) list.push({ resolve, reject });
      else this.pending.set(name, [{ resolve, reject }]);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = new Map();
    const names = [...batch.keys()];
    for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH) {
      const chunk = names.slice(i, i + SUBSCRIBE_BATCH);
      this.sub.subscribe(...chunk).then(
        () => {
          for (const n of chunk) for (const d of batch.get(n)!) d.resolve();
        },
        () => {
          for (const n of chunk) {
            this.wanted.delete(n);
            for (const d of batch.get(n)!) d.reject(new ReplyError(Errors.internal));
          }
        },
      );
    }
  }

  async unsubscribe(name: string): Promise<void> {
    this.wanted.delete(name);
    if (this.subReady) await this.sub.unsubscribe(name).catch(() => undefined);
  }

  /** After a reconnect: subscribe to everything wanted again, in batches. */
  async resubscribe(): Promise<void> {
    const names = [...this.wanted];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH) jobs.push(this.sub.subscribe(...names.slice(i, i + SUBSCRIBE_BATCH)));
    await Promise.all(jobs);
  }
}

/** FNV-1a: a stable channel → shard mapping (the same on every node). */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)))]).finally(() => clearTimeout(t));
}

/**
 * Engine over Redis: PUB/SUB fan-out between nodes, history in streams,
 * presence in hash + zset with per-entry TTL, a node registry, idempotent
 * publish. Each publish is one Lua script (one round trip).
 *
 * Faults: while a shard is unreachable its commands fail at once with
 * error 100 (a command in flight fails after io_timeout), `healthy()` is
 * false and a circuit breaker stops sending after repeated failures. When
 * the PUB/SUB connection comes back the node resubscribes and reports the
 * shard's channels through `onResync`, so no subscriber misses a
 * publication silently.
 */
export class RedisEngine implements Engine {
  readonly name = 'redis';
  readonly presence: PresenceStore;
  private readonly cfg: RedisConfig;
  private readonly prefix: string;
  private readonly chanPrefix: string;
  private readonly controlChannel: string;
  private readonly shards: Shard[];
  private readonly log: Logger;
  private handlers: EngineHandlers | undefined;
  /** Last epoch seen per subscribed channel: a new epoch means the stream was lost. */
  private readonly epochs = new Map<string, string>();
  /**
   * Per channel this node is subscribed to: the newest publications that
   * came through PUB/SUB (or a recovery read since the subscription), with
   * contiguous offsets. A reconnect storm recovers thousands of clients from
   * the same few seconds of a stream; they are served from here instead of
   * one XRANGE (and one decode, one encode) per client.
   */
  private readonly tails = new Map<string, Tail>();
  private readonly tailCap: number;
  /** This node's presence entries, refreshed before they expire. */
  private readonly localPresence = new Map<string, Map<string, string>>();
  private presenceTimer: NodeJS.Timeout | undefined;
  private tailTimer: NodeJS.Timeout | undefined;
  private nodeUid: string | undefined;
  private closed = false;

  constructor(config: Config) {
    this.cfg = config.engine.redis;
    this.log = createLogger(config.log.level).child({ engine: 'redis' });
    this.prefix = this.cfg.prefix;
    this.chanPrefix = `${this.prefix}.c.`;
    this.controlChannel = `${this.prefix}.control`;
    const addresses =
      this.cfg.cluster_addresses.length > 0 || this.cfg.sentinel_addresses.length > 0
        ? ['']
        : Array.isArray(this.cfg.address)
          ? this.cfg.address
          : [this.cfg.address];
    if (addresses.length === 0) throw new Error('engine.redis.address: at least one address is needed');
    this.shards = addresses.map((a, i) => new Shard(i, this.cfg, a));
    this.presence = new RedisPresence(this);
    this.tailCap = Math.min(TAIL_MAX, config.client.recovery_max_publication_limit + 1);
  }

  // ---- lifecycle ----

  async start(handlers: EngineHandlers): Promise<void> {
    this.handlers = handlers;
    for (const shard of this.shards) this.wire(shard);
    shardZero(this.shards).wanted.add(this.controlChannel);
    // Wait for Redis up to connect_timeout; a node that starts while Redis
    // is away serves what it can, reports not ready, and keeps trying.
    const ready = Promise.all(this.shards.flatMap((s) => [s.cmd.connect().catch(() => undefined), s.sub.connect().catch(() => undefined)]));
    await withTimeout(ready, Math.max(100, this.cfg.connect_timeout));
    if (!this.healthy()) this.log.warn('redis not reachable at start; retrying in the background');
    const ttl = Math.max(1000, this.cfg.presence_ttl);
    this.presenceTimer = setInterval(() => this.refreshPresence(), Math.max(300, Math.floor(ttl / 3)));
    this.presenceTimer.unref();
    // Channels that went quiet let their tails go too: what is kept is bounded by the publication rate × the window.
    this.tailTimer = setInterval(() => {
      for (const tail of this.tails.values()) tail.expire();
    }, TAIL_WINDOW_MS / 6);
    this.tailTimer.unref();
  }

  private wire(shard: Shard): void {
    const where = { shard: shard.index };
    let cmdDown = false;
    shard.cmd.on('error', (e: Error) => this.log.debug({ ...where, err: e.message }, 'redis command connection error'));
    shard.cmd.on('ready', () => {
      if (cmdDown) this.log.info(where, 'redis command connection restored');
      cmdDown = false;
    });
    shard.cmd.on('close', () => {
      if (!cmdDown && !this.closed) this.log.warn(where, 'redis command connection lost');
      cmdDown = true;
    });
    shard.breaker.onChange = (open) => {
      if (!open) {
        this.log.info(where, 'redis circuit breaker closed');
        return;
      }
      this.log.warn(where, 'redis circuit breaker open: failing fast');
      // Probe on our own, so readiness comes back without waiting for traffic.
      const probe = (): void => {
        if (this.closed || !shard.breaker.open) return;
        if (shard.breaker.allow() && shard.cmdReady) {
          shard.cmd.ping().then(
            () => shard.breaker.success(),
            () => shard.breaker.failure(),
          );
        }
        setTimeout(probe, shard.breaker.cooldownMs).unref();
      };
      setTimeout(probe, shard.breaker.cooldownMs).unref();
    };

    let subDown = false;
    shard.sub.on('error', (e: Error) => this.log.debug({ ...where, err: e.message }, 'redis pub/sub connection error'));
    shard.sub.on('close', () => {
      if (!subDown && !this.closed) this.log.warn(where, 'redis pub/sub connection lost');
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
          for (const n of shard.wanted) if (n.startsWith(this.chanPrefix)) channels.push(n.slice(this.chanPrefix.length));
          for (const ch of channels) {
            this.epochs.delete(ch);
            this.tails.get(ch)?.reset('');
          }
          this.log.info({ ...where, channels: channels.length }, 'redis pub/sub restored: resubscribed, resyncing subscribers');
          if (channels.length > 0) this.handlers?.onResync?.(channels);
        },
        (e: unknown) => {
          this.log.warn({ ...where, err: String(e) }, 'resubscribe failed; reconnecting');
          shard.sub.disconnect(true);
        },
      );
    });
  }

  healthy(): boolean {
    if (this.closed) return false;
    for (const s of this.shards) if (!s.cmdReady || !s.subReady || s.breaker.open) return false;
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.presenceTimer) clearInterval(this.presenceTimer);
    if (this.tailTimer) clearInterval(this.tailTimer);
    if (this.nodeUid) {
      const s = shardZero(this.shards);
      if (s.cmdReady)
        await withTimeout(
          s.scripts.sbNodeRemove(...this.nodeKeys(), this.nodeUid).catch(() => undefined),
          1000,
        );
    }
    this.closed = true;
    await Promise.all(
      this.shards
        .flatMap((s) => [s.cmd, s.sub])
        .map(async (c) => {
          if (c.status === 'ready') {
            const ok = await withTimeout(
              c.quit().catch(() => undefined),
              1000,
            );
            if (ok !== undefined) return;
          }
          c.disconnect();
        }),
    );
  }

  // ---- running commands ----

  shardOf(channel: string): Shard {
    const n = this.shards.length;
    return n === 1 ? this.shards[0]! : this.shards[hash(channel) % n]!;
  }

  /** Runs a command on a shard unless it is known to be unreachable; Redis trouble becomes error 100. */
  async run<T>(shard: Shard, fn: (s: Scripted) => Promise<T>): Promise<T> {
    if (this.closed || !shard.cmdReady || !shard.breaker.allow()) throw new ReplyError(Errors.internal);
    try {
      const r = await fn(shard.scripts);
      shard.breaker.success();
      return r;
    } catch (e) {
      shard.breaker.failure();
      if (e instanceof Error && e.name === 'ReplyError' && !/^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)/.test(e.message)) {
        this.log.error({ shard: shard.index, err: e.message }, 'redis command failed');
      }
      throw new ReplyError(Errors.internal);
    }
  }

  /** A token bucket shared by all nodes (per-user limits): true when a token was taken. */
  async takeToken(key: string, ratePerSecond: number, burst: number): Promise<boolean> {
    const k = this.key('rl', key);
    return (await this.run(this.shardOf(key), (s) => s.sbTakeToken(k, String(ratePerSecond), String(burst)))) === 1;
  }

  private key(kind: string, channel: string): string {
    return `${this.prefix}.${kind}.{${channel}}`;
  }

  private nodeKeys(): [string, string] {
    return [`${this.prefix}.{nodes}`, `${this.prefix}.{nodes}.z`];
  }

  // ---- publish / broker ----

  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const shard = this.shardOf(channel);
    const payload = encodePayload(data, Date.now(), opts.info, opts.tags);
    const withHistory = opts.historySize > 0 && opts.historyTtlMs > 0;
    const idemKey = opts.idempotencyKey ? `${this.key('i', channel)}.${opts.idempotencyKey}` : '';
    const idemTtl = opts.idempotentResultTtlMs || this.cfg.idempotent_result_ttl || 300_000;
    const [res, dup] = await this.run(shard, (s) =>
      s.sbPublish(
        this.key('s', channel),
        this.key('m', channel),
        idemKey,
        payload,
        withHistory ? String(opts.historySize) : '0',
        String(opts.historyTtlMs),
        String(opts.historyMetaTtlMs),
        this.chanPrefix + channel,
        newEpoch(),
        String(idemTtl),
      ),
    );
    const sp = res.indexOf(' ');
    const result: PublishResult = { offset: Number(res.slice(0, sp)), epoch: res.slice(sp + 1) };
    return dup === 1 ? { ...result, duplicate: true } : result;
  }

  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    const shard = this.shardOf(channel);
    await this.run(shard, () => shard.cmd.publish(this.chanPrefix + channel, 'j' + encodeInfo(info)));
  }

  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    const shard = this.shardOf(channel);
    await this.run(shard, () => shard.cmd.publish(this.chanPrefix + channel, 'l' + encodeInfo(info)));
  }

  async publishControl(msg: ControlMessage): Promise<void> {
    const shard = shardZero(this.shards);
    await this.run(shard, () => shard.cmd.publish(this.controlChannel, JSON.stringify(msg)));
  }

  async subscribe(channel: string): Promise<void> {
    await this.shardOf(channel).subscribe(this.chanPrefix + channel);
    // From here on every publication of the channel reaches this node.
    if (!this.tails.has(channel)) this.tails.set(channel, new Tail(this.tailCap));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.epochs.delete(channel);
    this.tails.delete(channel);
    await this.shardOf(channel).unsubscribe(this.chanPrefix + channel);
  }

  private onMessage(name: string, msg: string): void {
    const h = this.handlers;
    if (!h) return;
    if (name === this.controlChannel) {
      let m: ControlMessage;
      try {
        m = JSON.parse(msg) as ControlMessage;
      } catch {
        this.log.warn('malformed control message ignored');
        return;
      }
      h.onControl(m);
      return;
    }
    if (!name.startsWith(this.chanPrefix)) return;
    const channel = name.slice(this.chanPrefix.length);
    let m: ReturnType<typeof decodeMessage>;
    try {
      m = decodeMessage(msg);
    } catch (e) {
      this.log.warn({ channel, err: String(e) }, 'malformed pub/sub message ignored');
      return;
    }
    if (m.kind === 'pub') {
      if (m.pub.offset > 0) {
        const prev = this.epochs.get(channel);
        if (prev !== m.epoch) {
          this.epochs.set(channel, m.epoch);
          // The stream was recreated (meta expired, Redis lost its data):
          // offsets restarted, positioned subscribers must resubscribe.
          if (prev !== undefined) h.onResync?.([channel]);
        }
      }
      if (m.pub.offset > 0) this.tails.get(channel)?.push(m.epoch, m.pub);
      h.onPublication(channel, m.pub);
    } else if (m.kind === 'join') {
      h.onJoin(channel, m.info);
    } else {
      h.onLeave(channel, m.info);
    }
  }

  // ---- history ----

  async history(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const tail = opts.recovery && opts.since && !opts.reverse ? this.tails.get(channel) : undefined;
    if (tail) {
      const hit = tail.read(opts.since!, opts.limit, opts.historyTtlMs > 0 ? Date.now() - opts.historyTtlMs : 0, opts.historySize ?? 0);
      if (hit) return hit;
    }
    const res = await this.readHistory(channel, opts);
    // A complete recovery read made while subscribed joins up with what PUB/SUB brought meanwhile.
    if (tail && this.tails.get(channel) === tail) tail.seed(opts.since!, res.publications, res.position);
    return res;
  }

  private async readHistory(channel: string, opts: HistoryOptions): Promise<HistoryResult> {
    const shard = this.shardOf(channel);
    const now = Date.now();
    const ttl = opts.historyTtlMs;
    const minTime = ttl > 0 ? now - ttl : 0;
    const want = opts.limit;
    const out: Publication[] = [];
    let since = opts.since ? String(opts.since.offset) : '';
    let sinceEpoch = opts.since?.epoch ?? '';
    for (;;) {
      const limit = want === undefined ? -1 : want - out.length;
      const [offset, epoch, entries] = await this.run(shard, (s) =>
        s.sbHistory(
          this.key('s', channel),
          this.key('m', channel),
          String(opts.historyMetaTtlMs),
          newEpoch(),
          String(want === 0 ? 0 : limit),
          opts.reverse ? '1' : '0',
          since,
          sinceEpoch,
        ),
      );
      const position = { offset: Number(offset), epoch };
      let dropped = 0;
      for (const [id, fields] of entries) {
        const pub = decodePayload(fields[1]!, parseInt(id, 10));
        if (minTime > 0 && pub.time !== undefined && pub.time < minTime) {
          dropped++;
          continue;
        }
        out.push(pub);
      }
      // Forward reads meet expired publications first; when they took
      // places in a limited read, read on past them.
      const more = !opts.reverse && dropped > 0 && limit > 0 && entries.length === limit;
      if (!more || want === 0) return { publications: out, position };
      since = entries[entries.length - 1]![0].split('-')[0]!;
      sinceEpoch = epoch;
    }
  }

  async removeHistory(channel: string): Promise<void> {
    const shard = this.shardOf(channel);
    await this.run(shard, () => shard.cmd.del(this.key('s', channel)));
  }

  // ---- presence ----

  presenceKeys(channel: string): [string, string] {
    return [this.key('p', channel), this.key('pz', channel)];
  }

  presenceTtl(): number {
    return Math.max(1000, this.cfg.presence_ttl);
  }

  async presenceAdd(channel: string, info: ClientInfo): Promise<void> {
    const enc = encodeInfo(info);
    let m = this.localPresence.get(channel);
    if (!m) this.localPresence.set(channel, (m = new Map()));
    m.set(info.client, enc);
    const ttl = this.presenceTtl();
    await this.run(this.shardOf(channel), (s) =>
      s.sbPresenceAdd(...this.presenceKeys(channel), String(Date.now() + ttl), String(ttl), info.client, enc),
    );
  }

  async presenceRemove(channel: string, client: string): Promise<void> {
    const m = this.localPresence.get(channel);
    if (m) {
      m.delete(client);
      if (m.size === 0) this.localPresence.delete(channel);
    }
    await this.run(this.shardOf(channel), (s) => s.sbPresenceRemove(...this.presenceKeys(channel), client));
  }

  async presenceGet(channel: string): Promise<Map<string, ClientInfo>> {
    const values = await this.run(this.shardOf(channel), (s) => s.sbPresenceGet(...this.presenceKeys(channel), String(Date.now())));
    const out = new Map<string, ClientInfo>();
    for (const v of values) {
      const info = decodeInfo(v);
      out.set(info.client, info);
    }
    return out;
  }

  /** Pushes the expiry of this node's live presence entries forward; a dead node's entries then lapse. */
  private refreshPresence(): void {
    const ttl = this.presenceTtl();
    const expireAt = String(Date.now() + ttl);
    for (const [channel, entries] of this.localPresence) {
      const shard = this.shardOf(channel);
      if (!shard.cmdReady) continue;
      const flat: string[] = [];
      for (const [client, enc] of entries) flat.push(client, enc);
      for (let i = 0; i < flat.length; i += PRESENCE_BATCH * 2) {
        this.run(shard, (s) =>
          s.sbPresenceAdd(...this.presenceKeys(channel), expireAt, String(ttl), ...flat.slice(i, i + PRESENCE_BATCH * 2)),
        ).catch(() => undefined);
      }
    }
  }

  // ---- node registry, channels ----

  async updateNode(info: NodeInfo): Promise<void> {
    this.nodeUid = info.uid;
    const now = Date.now();
    const ttl = Math.max(1000, this.cfg.node_info_ttl);
    await this.run(shardZero(this.shards), (s) =>
      s.sbNodes(...this.nodeKeys(), String(now), info.uid, JSON.stringify(info), String(now + ttl)),
    );
  }

  async nodes(): Promise<NodeInfo[]> {
    const values = await this.run(shardZero(this.shards), (s) => s.sbNodes(...this.nodeKeys(), String(Date.now()), '', '', '0'));
    return values.map((v) => JSON.parse(v) as NodeInfo);
  }

  /** Channels with a subscriber on any node: the PUB/SUB channels under our prefix, on every shard. */
  async channels(): Promise<string[]> {
    const pattern = escapeGlob(this.chanPrefix) + '*';
    const out = new Set<string>();
    await Promise.all(
      this.shards.map(async (shard) => {
        for (const c of servers(shard.cmd)) {
          const names = await this.run(shard, () => c.pubsub('CHANNELS', pattern) as Promise<string[]>);
          for (const n of names) out.add(n.slice(this.chanPrefix.length));
        }
      }),
    );
    return [...out];
  }
}

class RedisPresence implements PresenceStore {
  constructor(private readonly engine: RedisEngine) {}

  add(channel: string, info: ClientInfo): Promise<void> {
    return this.engine.presenceAdd(channel, info);
  }

  remove(channel: string, clientId: string): Promise<void> {
    return this.engine.presenceRemove(channel, clientId);
  }

  get(channel: string): Promise<Map<string, ClientInfo>> {
    return this.engine.presenceGet(channel);
  }

  async stats(channel: string): Promise<PresenceStats> {
    const m = await this.engine.presenceGet(channel);
    const users = new Set<string>();
    for (const info of m.values()) users.add(info.user);
    return { numClients: m.size, numUsers: users.size };
  }
}

function shardZero(shards: Shard[]): Shard {
  return shards[0]!;
}

function newEpoch(): string {
  return randomUUID().slice(0, 8);
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** The most a tail keeps per channel, whatever the recovery limit. */
const TAIL_MAX = 10_000;
/** Publications older than this leave the tail (a storm is over long before). */
const TAIL_WINDOW_MS = 60_000;

/** The newest publications of one stream (one epoch), offsets contiguous and ascending. */
class Tail {
  private epoch = '';
  private pubs: Publication[] = [];

  constructor(private readonly cap: number) {}

  reset(epoch: string): void {
    this.epoch = epoch;
    this.pubs = [];
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
  expire(): void {
    const minTime = Date.now() - TAIL_WINDOW_MS;
    const pubs = this.pubs;
    let drop = 0;
    while (drop < pubs.length && (pubs[drop]!.time ?? 0) < minTime) drop++;
    if (drop > 0) this.pubs = pubs.slice(drop);
  }

  /** Drops what is past the cap, in batches (amortized O(1) per push); age is the sweep's job. */
  private trim(): void {
    const pubs = this.pubs;
    if (pubs.length > this.cap + (this.cap >> 2)) this.pubs = pubs.slice(pubs.length - this.cap);
  }
}
