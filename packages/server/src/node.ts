import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ChannelRules } from './auth/channels.js';
import { TokenVerifier } from './auth/jwt.js';
import { loadConfig, type Config } from './config/load.js';
import { MemoryEngine } from './engine/memory/engine.js';
import { DEFAULT_REVOCATION_TTL_MS } from './engine/defaults.js';
import type { Broker, Engine, NodeInfo, PublishResult, ServerSubscribeOptions } from './engine/types.js';
import { Hub, type Subscriber } from './hub/hub.js';
import { conflationKeyOf } from './hub/delivery.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { Disconnects, Errors, ReplyError, type Disconnect } from './protocol/codes.js';
import type { ClientInfo, Publication, StreamPosition } from './protocol/types.js';
import type { SessionContext } from './session/context.js';
import type { Hooks } from './session/hooks.js';
import { Session } from './session/session.js';
import { HeartbeatWheel } from './transport/heartbeat.js';
import { NodeLimits } from './session/ratelimit.js';
import { WebSocketEndpoint } from './transport/websocket.js';
import { Flusher } from './transport/flusher.js';
import type { ClientConnection } from './transport/connection.js';
import { WebSocketConnection } from './transport/websocket-connection.js';
import { HttpEndpoint } from './transport/http-endpoint.js';
import { originAllowed } from './auth/origin.js';
import { codecForRequest } from './protocol/select.js';
import { anyProxy, proxyHooks } from './auth/proxy.js';
import { ChannelSubscriptions } from './node/channel-subscriptions.js';
import { ControlApplier } from './node/control.js';
import { ConnectionsGatherer, type ConnectionsQuery, type DescribedConnection } from './node/connections.js';
import type { ConnectionDescription } from './engine/types.js';
import { drain } from './node/drain.js';
import { EmulationRelay } from './node/emulation-relay.js';
import { NodeMetricsCollector } from './node/metrics-collector.js';
import { UpgradeGate, ipOf } from './node/upgrade-gate.js';
import { FifoDeadlines } from './session/deadlines.js';
import { UniTransports } from './node/uni-transports.js';
import { historyLimit, publicClientInfo, publicPublication, type PublicClientInfo, type PublicPublication } from './node/public-values.js';
export type { PublicPublication, PublicClientInfo } from './node/public-values.js';
export type { SwitchboardOptions, ApiPublishOptions, HistoryOptions, ApiTarget } from './node/options.js';
import type { SwitchboardOptions, ApiPublishOptions, HistoryOptions, ApiTarget } from './node/options.js';
import { globToRegExp, toRaw } from './node/values.js';
import { PayloadValidators } from './auth/schemas.js';
import { VERSION } from './version.js';
import type { FileService } from './files/service.js';
import { filesPrefix, mountFiles } from './files/mount.js';
import { NodeWebhooks } from './node/webhooks.js';
import {
  NodeMaps,
  publicMapEntry,
  type MapPublishOptions,
  type MapRemoveOptions,
  type MapStateQuery,
  type MapStreamQuery,
  type PublicMapEntry,
} from './node/maps.js';
import type { MapUpdateResult } from './engine/map.js';
export type { MapPublishOptions, MapRemoveOptions, MapStateQuery, MapStreamQuery, PublicMapEntry } from './node/maps.js';
import { SharedPollService } from './sharedpoll/service.js';
import { fanoutHandler, tracedBroker } from './node/tracing-paths.js';
import { Tracing } from './observability/tracing.js';
import { createCollab, type Collab, type HolderEntry, type LeaseReply, type UserStatus } from './locks/index.js';

/**
 * A Switchboard node: wires config, engine, hub, sessions and transport,
 * and is the public in-process API (`publish`, `disconnect`, `presence`, …).
 * The node's other jobs are small objects of their own in node/: the
 * upgrade gate, the engine subscriptions, the control applier, the
 * metrics collector and the drain (revocations live in the engine).
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
  /** Channel publication schemas: checked on every path (client, HTTP API, in-process). */
  private readonly payloads: PayloadValidators;
  private readonly heartbeats: HeartbeatWheel;
  readonly limits: NodeLimits;
  private readonly endpoint: WebSocketEndpoint;
  /** http_stream and sse with `/emulation` (when enabled). */
  private readonly httpEndpoint: HttpEndpoint;
  /** `/emulation` requests to and from the other nodes. */
  private readonly relay: EmulationRelay;
  /** uni_websocket, uni_sse, uni_http_stream (each when enabled). */
  private readonly uni: UniTransports;
  private readonly sessions = new Set<Session>();
  /** This node's flush pass and writer statistics (not shared with other nodes in the process). */
  private readonly flusher = new Flusher();
  private readonly gate: UpgradeGate;
  private readonly subscriptions: ChannelSubscriptions;
  private readonly control: ControlApplier;
  private readonly collector: NodeMetricsCollector;
  private readonly gatherer: ConnectionsGatherer;
  private readonly startedAt = Date.now();
  private started = false;
  private draining = false;
  private statsTimer: NodeJS.Timeout | undefined;
  private readonly ctx: SessionContext;
  /** Resumable uploads and downloads under `files.path` (files.enabled; loaded by start()), their tokens and signed URLs. */
  files: FileService | undefined;
  /** Map channels: mutations with the namespace's rules, map presence (also behind `mapPublish` and the HTTP API). */
  readonly maps: NodeMaps;
  /** OpenTelemetry tracing; undefined (nothing traced, nothing paid) unless `opentelemetry.enabled`. */
  readonly tracing: Tracing | undefined;
  private readonly webhooks: NodeWebhooks | undefined;
  /** Shared poll subscriptions: this node's trackers and its backend poll loops. */
  readonly sharedPoll: SharedPollService;
  /** The engine's broker, traced when tracing is on. */
  private readonly broker: Broker;
  /** Field locks and user status (docs/LOCKS.md, docs/USER-STATUS.md). */
  private readonly collab: Collab;

  constructor(opts: SwitchboardOptions = {}) {
    const loaded = opts.resolvedConfig ? undefined : loadConfig({ object: opts.config ?? {} });
    this.config = opts.resolvedConfig ?? loaded!.config;
    const c = this.config;
    this.log = opts.logger ?? createLogger(c.log.level);
    // The CLI logs its own load's warnings; an embedding app gets the same ones here.
    for (const w of loaded?.warnings ?? []) this.log.warn(w);
    // As `serve` does: no key and not insecure → a key for this node's lifetime (read it as `apiKey`),
    // so an embedded httpApiPlugin answers to a key, never to nobody.
    if (!c.http_api.key && !c.http_api.insecure) c.http_api.key = randomBytes(24).toString('base64url');
    this.name = c.node.name || `switchboard-${process.pid}`;
    this.channelRules = new ChannelRules(c.channel);
    this.payloads = new PayloadValidators(c);
    this.hooks = anyProxy(c) ? proxyHooks(c, opts.hooks ?? {}, this.channelRules, this.log, this.metrics) : (opts.hooks ?? {});
    this.tokens = new TokenVerifier(c.client.token);
    const st = c.client.subscription_token;
    this.subTokens = st.enabled ? new TokenVerifier({ ...c.client.token, ...st, algorithms: c.client.token.algorithms }) : this.tokens;
    this.heartbeats = new HeartbeatWheel(c.client.ping_interval, c.client.pong_timeout);
    this.limits = new NodeLimits(c.client.rate_limit);
    this.engine = opts.engine ?? new MemoryEngine();
    this.maps = new NodeMaps(c, this.engine.maps, (ch) => this.channelRules.resolve(ch).options, this.metrics, this.log);
    this.gate = new UpgradeGate(c.client, {
      metrics: this.metrics,
      log: this.log,
      ipConnects: this.limits.ipConnects,
      logOnce: this.limits.logOnce,
      serving: () => this.started && !this.draining,
    });
    this.subscriptions = new ChannelSubscriptions(this.hub, this.engine.broker, this.log);
    this.tracing = Tracing.create(c.opentelemetry, this.nodeId, this.metrics, this.log);
    this.broker = this.tracing ? tracedBroker(this.tracing, this.engine.broker) : this.engine.broker;
    this.webhooks = NodeWebhooks.create(c, {
      engine: this.engine,
      hub: this.hub,
      nodeId: this.nodeId,
      channels: this.channelRules,
      metrics: this.metrics,
      log: this.log,
    });
    this.sharedPoll = new SharedPollService(c, { metrics: this.metrics, log: this.log });
    this.control = new ControlApplier({
      // Sessions are the hub's only clients; the applier sees them through its narrow interface.
      find: (target) => this.hub.matching(target) as Session[],
      all: () => this.sessions,
      log: this.log,
    });
    this.gatherer = new ConnectionsGatherer({
      nodeId: this.nodeId,
      broker: this.engine.broker,
      nodes: this.engine.nodes,
      local: (q) => this.localConnections(q),
      log: this.log,
    });
    this.collector = new NodeMetricsCollector(this.metrics, this.hub, this.flusher.stats);
    this.endpoint = new WebSocketEndpoint({
      path: '/connection/websocket',
      maxPayload: c.client.max_message_size,
      compression: c.websocket.compression
        ? { threshold: c.websocket.compression_min_size, level: c.websocket.compression_level }
        : undefined,
      check: (req) => this.gate.check(req),
      onConnection: (ws, req) => this.accept(new WebSocketConnection(ws, req, codecForRequest(req), c.client.queue_max_size, this.flusher)),
    });
    this.httpEndpoint = new HttpEndpoint({
      nodeId: this.nodeId,
      httpStream: c.http_stream,
      sse: c.sse,
      emulation: c.emulation,
      maxQueue: c.client.queue_max_size,
      flusher: this.flusher,
      check: (req) => this.gate.check(req),
      originAllowed: (origin, req) => originAllowed(origin, req.headers.host, c.client.allowed_origins),
      ipOf,
      accept: (conn) => this.accept(conn),
      forward: this.engine.nodes ? (er) => this.relay.forward(er) : undefined,
      bad: (reason) => this.metrics.badInput.labels(reason).inc(),
      warn: (obj, msg) => this.log.warn(obj, msg),
    });
    this.relay = new EmulationRelay(this.nodeId, this.engine.broker, (er) => this.httpEndpoint.deliver(er));
    this.uni = new UniTransports(c, { gate: this.gate, metrics: this.metrics, flusher: this.flusher, accept: (conn) => this.accept(conn) });
    const hub = this.hub;
    const heartbeats = this.heartbeats;
    const limits = this.limits;
    const engine = this.engine;
    const collab = (this.collab = createCollab(c, this.engine, this.metrics, this.log));
    const subscribers = {
      add: (sub: Subscriber) => this.subscriptions.add(sub),
      remove: (sub: Subscriber) => this.subscriptions.remove(sub),
      encodes: this.hub.encodes,
    };
    this.ctx = {
      options: c.client,
      stale: c.client.stale_close_delay > 0 ? new FifoDeadlines(c.client.stale_close_delay, (s) => s.staleDue()) : undefined,
      node: { id: this.nodeId, version: this.version },
      connections: collab.connections({
        get count() {
          return hub.clients.size;
        },
        ofUser: (user) => hub.users.get(user)?.size ?? 0,
        add: (s) => {
          hub.addClient(s);
          heartbeats.add(s);
          this.webhooks?.sessionConnected(s);
        },
        remove: (s) => {
          heartbeats.remove(s);
          hub.removeClient(s);
          this.webhooks?.sessionRemoved(s);
        },
        closed: (s) => {
          this.sessions.delete(s as Session);
          if (this.gate.tracksIp) this.gate.closed(s.ip);
        },
      }),
      subscribers: this.webhooks ? this.webhooks.subscribers(subscribers) : subscribers,
      engine: this.tracing ? { broker: this.broker, history: engine.history, presence: engine.presence } : engine,
      maps: { service: this.maps.service, presence: this.maps.presence },
      tracing: this.tracing?.client ? this.tracing : undefined,
      credentials: {
        tokens: this.tokens,
        subTokens: this.subTokens,
        isRevoked: (t) => engine.revocations.isRevoked({ user: t.user, jti: t.jti, issuedAt: (t.iat ?? 0) * 1000 }),
      },
      channels: this.channelRules,
      hooks: this.hooks,
      limits: {
        logOnce: limits.logOnce,
        userPublication: (user, now) => limits.userPublication(engine.limiter, user, now),
        namespacePublication: (ns, now) => limits.namespacePublication(ns, now),
      },
      payloads: this.payloads,
      metrics: this.metrics,
      log: this.log,
      builtinRpc: collab.rpc,
      fence: c.locks.enabled ? (channel, ns, data) => collab.locks.fencePublication(channel, ns.fenced, data) : undefined,
      sharedPoll: this.sharedPoll,
    };
  }

  /** Connects the engine and starts heartbeats. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.engine.start(
      {
        onPublication: fanoutHandler(this.hub, this.tracing),
        onJoin: (ch, info) => this.hub.join(ch, info),
        onLeave: (ch, info) => this.hub.leave(ch, info),
        onControl: (msg) => {
          if (msg.type === 'connections_request' || msg.type === 'connections_reply') this.gatherer.handle(msg);
          else if (!this.relay.onControl(msg)) this.control.apply(msg);
        },
        onResync: (channels) => this.hub.resync(channels),
      },
      { log: this.log },
    );
    this.heartbeats.start();
    this.collab.start(this, this.channelRules);
    this.maps.start();
    if (this.config.files.enabled) await this.startFiles();
    this.webhooks?.start();
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

  /** tus and its stores are loaded only when files are on. */
  private async startFiles(): Promise<void> {
    const { FileService } = await import('./files/service.js');
    const engine = this.engine;
    this.files = new FileService(this.config.files, {
      tokens: this.tokens,
      channels: this.channelRules,
      isRevoked: (t) => engine.revocations.isRevoked({ user: t.user, jti: t.jti, issuedAt: (t.iat ?? 0) * 1000 }),
      metrics: this.metrics,
      log: this.log,
      publish: (ch, data, o) => this.publish(ch, data, o),
    });
    this.files.start();
  }

  /** Serves WebSocket connections on an existing HTTP server (plain http, Fastify's `server`, Express's listener). */
  attach(server: Server): void {
    this.endpoint.attach(server);
    this.uni.attach(server);
    if (this.config.files.enabled) {
      mountFiles(server, filesPrefix(this.config.files.path), () => {
        const f = this.files;
        return f && ((req, res) => void f.handle(req, res));
      });
    }
  }

  /**
   * Serves a plain HTTP request for a unidirectional endpoint (uni_sse,
   * uni_http_stream, when enabled) and returns true; false for any other
   * path. For an embedding app's own request handler; `startServer` routes
   * these paths itself.
   */
  handleUniRequest(req: IncomingMessage, res: ServerResponse): boolean {
    return this.uni.handle(req, res);
  }

  /** The paths `handleUniRequest` serves. */
  get uniHttpPaths(): string[] {
    return this.uni.httpPaths;
  }

  /**
   * Serves the HTTP emulation transports (`http_stream`, `sse` and
   * `/emulation`, when enabled) from an app's own request handler: call it
   * first; it answers and returns true for those paths, false otherwise.
   */
  handleHttp(req: IncomingMessage, res: ServerResponse): boolean {
    return this.httpEndpoint.handle(req, res);
  }

  /** The HTTP server API key: `http_api.key`, or the one generated at construction ('' with `http_api.insecure`). */
  get apiKey(): string {
    return this.config.http_api.key;
  }

  get ready(): boolean {
    return this.started && !this.draining && this.engine.healthy();
  }

  get shuttingDown(): boolean {
    return this.draining;
  }

  // ---- connections ----

  private accept(conn: ClientConnection): void {
    if (this.gate.tracksIp) this.gate.opened(conn.ip);
    this.sessions.add(new Session(this.ctx, conn));
  }

  // ---- in-process API (also behind the HTTP server API) ----

  private namespaceOf(channel: string) {
    return this.channelRules.resolve(channel).options;
  }

  async publish(channel: string, data: unknown, opts: ApiPublishOptions = {}): Promise<PublishResult> {
    this.ensureStarted();
    const ns = this.namespaceOf(channel);
    try {
      this.payloads.checkPublication(ns, data);
    } catch (e) {
      this.metrics.badInput.labels('publication_schema').inc();
      throw e;
    }
    if (opts.fence !== undefined) await this.collab.locks.fence(channel, opts.fence);
    const raw = toRaw(data);
    const res = await this.broker.publish(channel, raw, {
      historySize: opts.skipHistory ? 0 : ns.history_size,
      historyTtlMs: opts.skipHistory ? 0 : ns.history_ttl,
      historyMetaTtlMs: ns.history_meta_ttl,
      tags: opts.tags,
      idempotencyKey: opts.idempotencyKey,
      info: opts.info,
      delta: (opts.delta ?? ns.delta_publish) || undefined,
      conflationKey: conflationKeyOf(opts.conflationKey, ns.conflation_key, raw),
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

  // ---- field locks and user status (docs/LOCKS.md, docs/USER-STATUS.md) ----

  /** The node's locks: holder observers (`observe`), the holders channel of a document. */
  get locks(): Collab['locks'] {
    return this.collab.locks;
  }

  /** A backend-held lease on `key` (`<document>/<field>`); 150 when another client holds it. */
  lockAcquire(key: string, opts: { ttlMs?: number; user?: string; client?: string } = {}): Promise<LeaseReply> {
    return this.collab.locks.acquire(key, { user: opts.user ?? '', client: opts.client || 'api' }, opts.ttlMs, false);
  }

  lockRenew(key: string, token: string, opts: { ttlMs?: number } = {}): Promise<LeaseReply> {
    return this.collab.locks.renew(key, token, undefined, opts.ttlMs);
  }

  lockRelease(key: string, token: string): Promise<{ released_at: number }> {
    return this.collab.locks.release(key, token, undefined);
  }

  lockGet(document: string): Promise<HolderEntry[]> {
    return this.collab.locks.holders(document);
  }

  updateUserStatus(users: readonly string[]): Promise<void> {
    return this.collab.userStatus.update(users);
  }

  getUserStatus(users: readonly string[]): Promise<UserStatus[]> {
    return this.collab.userStatus.get(users);
  }

  deleteUserStatus(users: readonly string[]): Promise<void> {
    return this.collab.userStatus.remove(users);
  }

  /** A channel's presence by client id, conn/chan info parsed (as the HTTP API returns it). */
  async presence(channel: string): Promise<Map<string, PublicClientInfo>> {
    const out = new Map<string, PublicClientInfo>();
    for (const [id, info] of await this.presenceRaw(channel)) out.set(id, publicClientInfo(info));
    return out;
  }

  /** @internal Presence in the engine's form (info as JSON text), for the HTTP API's encoder. */
  async presenceRaw(channel: string): Promise<Map<string, ClientInfo>> {
    if (!this.namespaceOf(channel).presence) throw new ReplyError(Errors.notAvailable);
    return this.engine.presence.get(channel);
  }

  async presenceStats(channel: string): Promise<{ numClients: number; numUsers: number }> {
    if (!this.namespaceOf(channel).presence) throw new ReplyError(Errors.notAvailable);
    return this.engine.presence.stats(channel);
  }

  /** A channel's history, publication data parsed (as the HTTP API returns it). */
  async history(channel: string, opts: HistoryOptions = {}): Promise<{ publications: PublicPublication[]; position: StreamPosition }> {
    const h = await this.historyRaw(channel, opts);
    return { publications: h.publications.map(publicPublication), position: h.position };
  }

  /** @internal History in the engine's form (data as JSON text), for the HTTP API's encoder. */
  async historyRaw(channel: string, opts: HistoryOptions = {}): Promise<{ publications: Publication[]; position: StreamPosition }> {
    const limit = historyLimit(opts.limit);
    const ns = this.namespaceOf(channel);
    if (!(ns.history_size > 0 && ns.history_ttl > 0)) throw new ReplyError(Errors.notAvailable);
    const h = await this.engine.history.read(channel, {
      limit,
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

  /** Sets a key of a map channel (docs/MAPS.md); `suppressed` when a key mode or idempotency key kept it from changing. */
  async mapPublish(channel: string, key: string, data: unknown, opts: MapPublishOptions = {}): Promise<MapUpdateResult> {
    this.ensureStarted();
    return this.maps.publish(channel, key, data, opts);
  }

  /** Removes a key of a map channel; `suppressed` (key_not_found) when it was not there. */
  async mapRemove(channel: string, key: string, opts: MapRemoveOptions = {}): Promise<MapUpdateResult> {
    this.ensureStarted();
    return this.maps.remove(channel, key, opts);
  }

  /** One page of a map channel's entries (`cursor` '' on the last page). */
  async mapReadState(
    channel: string,
    q: MapStateQuery = {},
  ): Promise<{ entries: PublicMapEntry[]; cursor: string; position: StreamPosition }> {
    const r = await this.maps.readState(channel, q);
    return { entries: r.entries.map(publicMapEntry), cursor: r.cursor, position: r.position };
  }

  /** A map channel's change stream (positioned maps). */
  async mapReadStream(channel: string, q: MapStreamQuery = {}): Promise<{ publications: PublicMapEntry[]; position: StreamPosition }> {
    const r = await this.maps.readStream(channel, q);
    return { publications: r.publications.map(publicMapEntry), position: r.position };
  }

  async mapStats(channel: string): Promise<{ numKeys: number }> {
    return this.maps.stats(channel);
  }

  /** Drops a map channel's state and stream (subscribers are not told; the next subscribe starts a new epoch). */
  async mapClear(channel: string): Promise<void> {
    await this.maps.clear(channel);
  }

  /** Channels with subscribers (all nodes when the engine can tell) and this node's subscriber counts. */
  async channels(pattern?: string): Promise<Map<string, number>> {
    const names = this.engine.nodes ? await this.engine.nodes.channels() : this.hub.channelNames();
    const re = pattern ? globToRegExp(pattern) : undefined;
    const out = new Map<string, number>();
    for (const ch of names) if (!re || re.test(ch)) out.set(ch, this.hub.numSubscribers(ch));
    return out;
  }

  /**
   * Connections on every node (Centrifugo PRO's `connections`): a user's, a
   * channel's subscribers, both, or (neither) all, at most `limit` per node.
   * `missing` lists nodes that did not answer in time.
   */
  async connections(
    q: { user?: string; channel?: string; limit?: number } = {},
  ): Promise<{ connections: ConnectionDescription[]; missing: string[] }> {
    this.ensureStarted();
    return this.gatherer.gather({ user: q.user, channel: q.channel, limit: q.limit ?? 1000 });
  }

  private localConnections(q: ConnectionsQuery): Iterable<DescribedConnection> {
    const hub = this.hub;
    let list: Iterable<unknown>;
    if (q.channel !== undefined) list = hub.channelClients(q.channel).filter((c) => q.user === undefined || c.user === q.user);
    else if (q.user !== undefined) list = hub.userClients(q.user);
    else list = hub.clients.values();
    // The hub's clients are sessions (see the control applier's find).
    return list as Iterable<Session>;
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
    this.httpEndpoint.stopAccepting();
    this.uni.stopAccepting();
    await drain([...this.sessions], this.config.shutdown);
    this.heartbeats.stop();
    this.collab.stop();
    this.sharedPoll.stop();
    this.files?.stop();
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.endpoint.close();
    this.uni.close();
    this.webhooks?.stop();
    this.maps.close();
    await this.engine.close();
    await this.tracing?.shutdown();
  }

  private ensureStarted(): void {
    if (!this.started) throw new ReplyError(Errors.notAvailable);
  }

  /** Brings gauges and the counters kept outside prom-client (hot path) up to date; called before each scrape. */
  collectMetrics(): void {
    this.collector.collect();
  }
}
