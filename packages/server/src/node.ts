import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { ChannelRules } from './auth/channels.js';
import { TokenVerifier } from './auth/jwt.js';
import { loadConfig, type Config } from './config/load.js';
import { MemoryEngine } from './engine/memory/engine.js';
import { DEFAULT_REVOCATION_TTL_MS } from './engine/defaults.js';
import type { ControlMessage, Engine, NodeInfo, PublishResult, ServerSubscribeOptions } from './engine/types.js';
import { Hub, type Subscriber } from './hub/hub.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { Disconnects, Errors, ReplyError, type Disconnect } from './protocol/codes.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from './protocol/types.js';
import type { SessionContext } from './session/context.js';
import type { Hooks } from './session/hooks.js';
import { Session } from './session/session.js';
import { HeartbeatWheel } from './transport/heartbeat.js';
import { NodeLimits } from './session/ratelimit.js';
import { WebSocketEndpoint, type UpgradeRefusal } from './transport/websocket.js';
import { writerStats } from './transport/writer.js';
import type { ClientConnection } from './transport/connection.js';
import { WebSocketConnection } from './transport/websocket-connection.js';
import { jsonCodec } from './protocol/json.js';
import { originAllowed } from './auth/origin.js';
import { anyProxy, proxyHooks } from './auth/proxy.js';
import { PayloadValidators } from './auth/schemas.js';
import { VERSION } from './version.js';

export interface SwitchboardOptions {
  /** Config as an object (Centrifugo v6 key names), merged over defaults. Ignored when `resolvedConfig` is given. */
  config?: Record<string, unknown>;
  resolvedConfig?: Config;
  hooks?: Hooks;
  logger?: Logger;
  /** Use this engine instead of the one the config names. */
  engine?: Engine;
}

export interface ApiPublishOptions {
  readonly skipHistory?: boolean;
  readonly tags?: Readonly<Record<string, string>>;
  readonly idempotencyKey?: string;
  readonly info?: ClientInfo;
}

export interface ApiTarget {
  readonly user: string;
  readonly client?: string;
  readonly session?: string;
}

/**
 * A Switchboard node: wires config, engine, hub, sessions and transport,
 * and is the public in-process API (`publish`, `disconnect`, `presence`, …).
 */
export class Switchboard {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly hub = new Hub();
  readonly engine: Engine;
  readonly nodeId = randomUUID();
  readonly name: string;
  readonly version = VERSION;
  readonly hooks: Hooks;
  private readonly tokens: TokenVerifier;
  private readonly subTokens: TokenVerifier;
  private readonly channelRules: ChannelRules;
  private readonly heartbeats: HeartbeatWheel;
  readonly limits: NodeLimits;
  private readonly endpoint: WebSocketEndpoint;
  private readonly sessions = new Set<Session>();
  private readonly perIp = new Map<string, number>();
  private readonly engineSubs = new Map<string, Promise<void>>();
  private readonly pendingUnsubs = new Map<string, Promise<void>>();
  private readonly startedAt = Date.now();
  private connectWindow = { second: 0, count: 0 };
  private started = false;
  private draining = false;
  private statsTimer: NodeJS.Timeout | undefined;
  private readonly ctx: SessionContext;

  constructor(opts: SwitchboardOptions = {}) {
    this.config = opts.resolvedConfig ?? loadConfig({ object: opts.config ?? {} }).config;
    const c = this.config;
    this.log = opts.logger ?? createLogger(c.log.level);
    this.name = c.node.name || `switchboard-${process.pid}`;
    this.channelRules = new ChannelRules(c.channel);
    this.hooks = anyProxy(c) ? proxyHooks(c, opts.hooks ?? {}, this.channelRules, this.log, this.metrics) : (opts.hooks ?? {});
    this.tokens = new TokenVerifier(c.client.token);
    const st = c.client.subscription_token;
    this.subTokens = st.enabled ? new TokenVerifier({ ...c.client.token, ...st, algorithms: c.client.token.algorithms }) : this.tokens;
    this.heartbeats = new HeartbeatWheel(c.client.ping_interval, c.client.pong_timeout);
    this.limits = new NodeLimits(c.client.rate_limit);
    this.engine = opts.engine ?? new MemoryEngine();
    this.endpoint = new WebSocketEndpoint({
      path: '/connection/websocket',
      maxPayload: c.client.max_message_size,
      compression: c.websocket.compression
        ? { threshold: c.websocket.compression_min_size, level: c.websocket.compression_level }
        : undefined,
      check: (req) => this.checkUpgrade(req),
      onConnection: (ws, req) => this.accept(new WebSocketConnection(ws, req, ipOf(req), jsonCodec, c.client.queue_max_size)),
    });
    this.ctx = {
      config: c,
      engine: this.engine,
      hub: this.hub,
      metrics: this.metrics,
      log: this.log,
      tokens: this.tokens,
      subTokens: this.subTokens,
      channels: this.channelRules,
      hooks: this.hooks,
      heartbeats: this.heartbeats,
      limits: this.limits,
      validators: new PayloadValidators(c),
      nodeId: this.nodeId,
      version: this.version,
      tokenRevoked: (token) => this.engine.revocations.isRevoked(token),
      addSubscriber: (sub) => this.addSubscriber(sub),
      removeSubscriber: (sub) => this.removeSubscriber(sub),
      sessionClosed: (s) => {
        this.sessions.delete(s as Session);
        const n = (this.perIp.get(s.ip) ?? 1) - 1;
        if (n <= 0) this.perIp.delete(s.ip);
        else this.perIp.set(s.ip, n);
      },
    };
  }

  /** Connects the engine and starts heartbeats. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.engine.start(
      {
        onPublication: (ch, pub) => this.hub.publish(ch, pub),
        onJoin: (ch, info) => this.hub.join(ch, info),
        onLeave: (ch, info) => this.hub.leave(ch, info),
        onControl: (msg) => this.applyControl(msg),
        onResync: (channels) => this.resync(channels),
      },
      { log: this.log },
    );
    this.heartbeats.start();
    const registry = this.engine.nodes;
    if (registry) {
      const announce = (): void => {
        registry.announce(this.nodeInfo()).catch((e: unknown) => this.log.warn({ err: String(e) }, 'node announce failed'));
      };
      announce();
      this.statsTimer = setInterval(announce, 3000);
      this.statsTimer.unref();
    }
  }

  /** Serves WebSocket connections on an existing HTTP server (plain http, Fastify's `server`, Express's listener). */
  attach(server: Server): void {
    this.endpoint.attach(server);
  }

  get ready(): boolean {
    return this.started && !this.draining && this.engine.healthy();
  }

  get shuttingDown(): boolean {
    return this.draining;
  }

  // ---- connections ----

  private checkUpgrade(req: IncomingMessage): UpgradeRefusal | undefined {
    const c = this.config.client;
    if (!this.started || this.draining) return { status: 503, message: 'not ready' };
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, req.headers.host, c.allowed_origins)) {
      this.metrics.badInput.labels('origin').inc();
      this.log.info({ origin, ip: ipOf(req) }, 'websocket upgrade refused: origin not allowed');
      return { status: 403, message: 'origin not allowed' };
    }
    const ip = ipOf(req);
    if (c.connection_limit_per_ip > 0 && (this.perIp.get(ip) ?? 0) >= c.connection_limit_per_ip) {
      this.metrics.limits.labels('connection_limit_per_ip').inc();
      return { status: 429, message: 'too many connections from this address' };
    }
    if (!this.limits.ipConnects.take(ip)) {
      this.metrics.limits.labels('ip_connects_per_second').inc();
      if (this.limits.logOnce.shouldLog('ip:' + ip)) this.log.warn({ ip }, 'connect rate limit hit for address');
      return { status: 429, message: 'too many connection attempts from this address' };
    }
    if (c.connection_rate_limit > 0) {
      const sec = Math.floor(Date.now() / 1000);
      if (this.connectWindow.second !== sec) this.connectWindow = { second: sec, count: 0 };
      if (++this.connectWindow.count > c.connection_rate_limit) {
        this.metrics.limits.labels('connection_rate_limit').inc();
        return { status: 429, message: 'too many connection attempts' };
      }
    }
    return undefined;
  }

  private accept(conn: ClientConnection): void {
    this.perIp.set(conn.ip, (this.perIp.get(conn.ip) ?? 0) + 1);
    this.sessions.add(new Session(this.ctx, conn));
  }

  private async addSubscriber(sub: Subscriber): Promise<void> {
    const ch = sub.channel;
    const first = this.hub.addSubscriber(sub);
    let p = this.engineSubs.get(ch);
    if (first || !p) {
      const prev = this.pendingUnsubs.get(ch) ?? Promise.resolve();
      const created: Promise<void> = prev.then(() => this.engine.broker.subscribe(ch));
      p = created;
      this.engineSubs.set(ch, created);
      created.catch(() => {
        if (this.engineSubs.get(ch) === created) this.engineSubs.delete(ch);
      });
    }
    await p;
  }

  private removeSubscriber(sub: Subscriber): void {
    const ch = sub.channel;
    if (!this.hub.removeSubscriber(sub)) return;
    const p = this.engineSubs.get(ch) ?? Promise.resolve();
    this.engineSubs.delete(ch);
    const u = p
      .catch(() => undefined)
      .then(() => (this.hub.hasSubscribers(ch) ? undefined : this.engine.broker.unsubscribe(ch)))
      .catch((e: unknown) => this.log.warn({ channel: ch, err: String(e) }, 'engine unsubscribe failed'))
      .finally(() => {
        if (this.pendingUnsubs.get(ch) === u) this.pendingUnsubs.delete(ch);
      });
    this.pendingUnsubs.set(ch, u);
  }

  /** The engine may have lost publications: positioned subscribers resubscribe and recover. */
  private resync(channels: readonly string[] | 'all'): void {
    const set = channels === 'all' ? null : new Set(channels);
    for (const s of this.sessions) {
      for (const ch of s.channels()) if (!set || set.has(ch)) s.insufficientState(ch);
    }
  }

  // ---- control: API actions that reach a user's connections on every node ----

  private applyControl(msg: ControlMessage): void {
    if (msg.type === 'revoke') {
      for (const s of this.sessions) {
        const id = s.tokenIdentity();
        if (
          (msg.jti && id.jti === msg.jti) ||
          (msg.user && s.user === msg.user && msg.issuedBefore && (id.iat ?? 0) * 1000 < msg.issuedBefore)
        ) {
          s.disconnect(Disconnects.invalidToken);
        }
      }
      return;
    }
    for (const c of this.hub.userClients(msg.user)) {
      const s = c as Session;
      if (msg.client && s.id !== msg.client) continue;
      switch (msg.type) {
        case 'disconnect':
          if (msg.whitelist?.includes(s.id)) continue;
          s.disconnect({ code: msg.code, reason: msg.reason });
          break;
        case 'unsubscribe':
          s.serverUnsubscribe(msg.channel);
          break;
        case 'subscribe':
          s.serverSubscribe(msg.channel, {
            chanInfo: msg.options?.info,
            data: msg.options?.data,
            recover: msg.options?.recover,
            since: msg.options?.since,
          }).catch((e: unknown) => this.log.warn({ client: s.id, channel: msg.channel, err: String(e) }, 'server subscribe failed'));
          break;
        case 'refresh':
          s.serverRefresh(!!msg.expired, msg.expireAt, msg.info);
          break;
      }
    }
  }

  // ---- in-process API (also behind the HTTP server API) ----

  private namespaceOf(channel: string) {
    return this.channelRules.resolve(channel).options;
  }

  async publish(channel: string, data: unknown, opts: ApiPublishOptions = {}): Promise<PublishResult> {
    this.ensureStarted();
    const ns = this.namespaceOf(channel);
    const raw = toRaw(data);
    const res = await this.engine.broker.publish(channel, raw, {
      historySize: opts.skipHistory ? 0 : ns.history_size,
      historyTtlMs: opts.skipHistory ? 0 : ns.history_ttl,
      historyMetaTtlMs: ns.history_meta_ttl,
      tags: opts.tags,
      idempotencyKey: opts.idempotencyKey,
      info: opts.info,
    });
    if (!res.duplicate) this.metrics.publications.labels('api').inc();
    return res;
  }

  async broadcast(channels: readonly string[], data: unknown, opts: ApiPublishOptions = {}): Promise<Array<PublishResult | ReplyError>> {
    return Promise.all(
      channels.map((ch) =>
        this.publish(ch, data, opts).catch((e: unknown) => (e instanceof ReplyError ? e : new ReplyError(Errors.internal))),
      ),
    );
  }

  async subscribe(target: ApiTarget, channel: string, options: ServerSubscribeOptions = {}): Promise<void> {
    this.namespaceOf(channel);
    await this.engine.broker.publishControl({
      type: 'subscribe',
      user: target.user,
      client: target.client,
      session: target.session,
      channel,
      options,
    });
  }

  async unsubscribe(target: ApiTarget, channel: string): Promise<void> {
    await this.engine.broker.publishControl({
      type: 'unsubscribe',
      user: target.user,
      client: target.client,
      session: target.session,
      channel,
    });
  }

  async disconnect(target: ApiTarget & { whitelist?: string[] }, d: Disconnect = Disconnects.forceNoReconnect): Promise<void> {
    await this.engine.broker.publishControl({
      type: 'disconnect',
      user: target.user,
      client: target.client,
      session: target.session,
      code: d.code,
      reason: d.reason,
      whitelist: target.whitelist,
    });
  }

  async refresh(target: ApiTarget, opts: { expired?: boolean; expireAt?: number; info?: unknown }): Promise<void> {
    await this.engine.broker.publishControl({
      type: 'refresh',
      user: target.user,
      client: target.client,
      session: target.session,
      expired: opts.expired,
      expireAt: opts.expireAt !== undefined ? opts.expireAt * 1000 : undefined,
      info: opts.info !== undefined ? toRaw(opts.info) : undefined,
    });
  }

  /**
   * Revokes a token by `jti`, or all of a user's tokens issued before a time (unix seconds), until `expireAt`
   * (unix seconds; default a week, see DEFAULT_REVOCATION_TTL_MS); live connections are closed with 3500.
   */
  async revoke(opts: { jti?: string; user?: string; issuedBefore?: number; expireAt?: number }): Promise<void> {
    const until = opts.expireAt ? opts.expireAt * 1000 : Date.now() + DEFAULT_REVOCATION_TTL_MS;
    if (opts.jti) await this.engine.revocations.revokeToken(opts.jti, until);
    if (opts.user && opts.issuedBefore !== undefined)
      await this.engine.revocations.invalidateUser(opts.user, opts.issuedBefore * 1000, until);
    await this.engine.broker.publishControl({
      type: 'revoke',
      jti: opts.jti,
      user: opts.user,
      issuedBefore: opts.issuedBefore !== undefined ? opts.issuedBefore * 1000 : undefined,
    });
  }

  async presence(channel: string): Promise<Map<string, ClientInfo>> {
    if (!this.namespaceOf(channel).presence) throw new ReplyError(Errors.notAvailable);
    return this.engine.presence.get(channel);
  }

  async presenceStats(channel: string): Promise<{ numClients: number; numUsers: number }> {
    if (!this.namespaceOf(channel).presence) throw new ReplyError(Errors.notAvailable);
    return this.engine.presence.stats(channel);
  }

  async history(
    channel: string,
    opts: { limit?: number; since?: StreamPosition; reverse?: boolean } = {},
  ): Promise<{ publications: Publication[]; position: StreamPosition }> {
    const ns = this.namespaceOf(channel);
    if (!(ns.history_size > 0 && ns.history_ttl > 0)) throw new ReplyError(Errors.notAvailable);
    const h = await this.engine.history.read(channel, {
      limit: opts.limit,
      since: opts.since,
      reverse: opts.reverse,
      historyTtlMs: ns.history_ttl,
      historyMetaTtlMs: ns.history_meta_ttl,
    });
    if (opts.since && opts.since.epoch !== h.position.epoch) throw new ReplyError(Errors.unrecoverablePosition);
    return h;
  }

  async historyRemove(channel: string): Promise<void> {
    this.namespaceOf(channel);
    await this.engine.history.remove(channel);
  }

  /** Channels with subscribers (all nodes when the engine can tell) and this node's subscriber counts. */
  async channels(pattern?: string): Promise<Map<string, number>> {
    const names = this.engine.nodes ? await this.engine.nodes.channels() : this.hub.channelNames();
    const re = pattern ? globToRegExp(pattern) : undefined;
    const out = new Map<string, number>();
    for (const ch of names) if (!re || re.test(ch)) out.set(ch, this.hub.numSubscribers(ch));
    return out;
  }

  nodeInfo(): NodeInfo {
    return {
      uid: this.nodeId,
      name: this.name,
      version: this.version,
      numClients: this.hub.clients.size,
      numUsers: this.hub.users.size,
      numSubs: this.hub.numSubscriptions,
      numChannels: this.hub.numChannels,
      uptime: Math.floor((Date.now() - this.startedAt) / 1000),
    };
  }

  async info(): Promise<NodeInfo[]> {
    if (this.engine.nodes) {
      const nodes = await this.engine.nodes.list();
      const self = this.nodeInfo();
      return [self, ...nodes.filter((n) => n.uid !== self.uid)];
    }
    return [this.nodeInfo()];
  }

  // ---- shutdown ----

  /**
   * Graceful drain: refuse new connections, tell clients to reconnect
   * (3001) in batches, flush their writers, close the engine.
   */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.endpoint.stopAccepting();
    const { batch_size, batch_interval, timeout } = this.config.shutdown;
    const deadline = Date.now() + timeout;
    const all = [...this.sessions];
    for (let i = 0; i < all.length; i += Math.max(1, batch_size)) {
      for (const s of all.slice(i, i + Math.max(1, batch_size))) s.disconnect(Disconnects.shutdown);
      if (i + batch_size < all.length && Date.now() < deadline) await sleep(batch_interval);
    }
    this.heartbeats.stop();
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.endpoint.close();
    await this.engine.close();
  }

  private ensureStarted(): void {
    if (!this.started) throw new ReplyError(Errors.notAvailable);
  }

  private lastCollected = { deliveries: 0, bytes: 0, frames: 0 };

  /** Brings gauges and the counters kept outside prom-client (hot path) up to date; called before each scrape. */
  collectMetrics(): void {
    const m = this.metrics;
    const hub = this.hub;
    const last = this.lastCollected;
    m.connections.set(hub.clients.size);
    m.users.set(hub.users.size);
    m.subscriptions.set(hub.numSubscriptions);
    m.channels.set(hub.numChannels);
    m.deliveries.inc(hub.deliveries - last.deliveries);
    m.bytesOut.inc(Math.max(0, writerStats.bytesOut - last.bytes));
    m.framesOut.inc(Math.max(0, writerStats.framesOut - last.frames));
    this.lastCollected = { deliveries: hub.deliveries, bytes: writerStats.bytesOut, frames: writerStats.framesOut };
  }
}

function ipOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

function toRaw(data: unknown): RawJSON {
  if (data === undefined) throw new ReplyError(Errors.badRequest);
  return JSON.stringify(data);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function globToRegExp(glob: string): RegExp {
  const esc = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp('^' + esc + '$');
}
