import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { KeySourceError, TokenError } from '../auth/jwt.js';
import type { ResolvedChannel } from '../auth/channels.js';
import type { NamespaceConfig } from '../config/load.js';
import { Subscriber, publicationBytes, type HubClient } from '../hub/hub.js';
import { EngineUnavailableError } from '../engine/errors.js';
import { Disconnects, DisconnectError, Errors, ReplyError, Unsubscribes, type Disconnect, type ProtocolError } from '../protocol/codes.js';
import type { Codec } from '../protocol/codec.js';
import { UNKNOWN, optBool, optData, optInt, optObject, optString, reqString, type Command, type Params } from '../protocol/commands.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../protocol/types.js';
import type { Heartbeat } from '../transport/heartbeat.js';
import type { ClientConnection, ConnectionHandler, OutboundQueue } from '../transport/connection.js';
import { connectClaims, subClaims } from './claims.js';
import type { SessionContext } from './context.js';
import type { ClientContext, Json } from './hooks.js';
import { TokenBucket } from './ratelimit.js';

type State = 'connecting' | 'connected' | 'closed';

interface SubState {
  readonly subscriber: Subscriber;
  readonly options: NamespaceConfig;
  readonly info: ClientInfo;
  readonly presence: boolean;
  readonly joinLeave: boolean;
  expireAt: number;
  timer?: NodeJS.Timeout;
  /** Subscription credentials came from a hook that refreshes them (no client sub_refresh). */
  serverSideRefresh?: boolean;
}

export interface SubscribeRequest {
  readonly recover?: boolean;
  readonly since?: StreamPosition;
  readonly recoverable?: boolean;
  readonly positioned?: boolean;
  readonly joinLeave?: boolean;
  readonly chanInfo?: RawJSON;
  readonly data?: RawJSON;
  readonly expireAt?: number;
  readonly serverSide?: boolean;
  readonly override?: Readonly<Record<string, boolean>>;
  readonly serverSideRefresh?: boolean;
}

interface Reply {
  readonly result: unknown;
  /** Runs right after the reply is queued (e.g. a subscription going live). */
  readonly after?: () => void;
}

/** Bound on frames waiting to be processed: a client that floods faster than we answer is cut off. */
const MAX_PENDING_FRAMES = 256;

/** One client connection: the protocol state machine from connect to close. */
export class Session implements HubClient, Heartbeat, ConnectionHandler {
  readonly id = randomUUID();
  user = '';
  info: ClientInfo = { user: '', client: this.id };
  readonly writer: OutboundQueue;
  readonly codec: Codec;
  readonly ip: string;
  state: State = 'connecting';
  awaitingPong = false;
  hbSlot = -1;
  hbPongSlot = -1;
  private readonly subs = new Map<string, SubState>();
  private inbox: Promise<void> | undefined;
  private pendingFrames = 0;
  private expireAt = 0;
  private expireTimer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private jti: string | undefined;
  /** Credentials came from a hook that also refreshes them (no client-side refresh). */
  private serverSideRefresh = false;
  private iat: number | undefined;
  private closeCode = 0;
  /** Counted in the user's connection set (client.user_connection_limit). */
  private trackedUser = false;
  /** The upgrade request, kept only until connect (hooks see it); afterwards only its headers. */
  private request: IncomingMessage | undefined;
  readonly headers: IncomingHttpHeaders | undefined;
  private readonly commandBucket: TokenBucket | undefined;
  private readonly publishBucket: TokenBucket | undefined;
  /** Refused-by-limit commands in a row, and error replies in total. */
  private refusedInRow = 0;
  private errorReplies = 0;

  constructor(
    private readonly ctx: SessionContext,
    conn: ClientConnection,
  ) {
    const request = conn.request;
    this.request = request;
    this.ip = conn.ip;
    this.codec = conn.codec;
    this.writer = conn.writer;
    // Headers cost ~1 KB per connection: kept only when a hook may read them after connect.
    const h = ctx.hooks;
    if (h.onSubscribe || h.onPublish || h.onRpc || h.onMessage || h.onRefresh || h.onSubRefresh || h.onDisconnect)
      this.headers = request.headers;
    const rl = ctx.config.client.rate_limit;
    if (rl.commands_per_second > 0)
      this.commandBucket = new TokenBucket(rl.commands_per_second, Math.max(rl.commands_burst, rl.commands_per_second));
    if (rl.publications_per_second > 0)
      this.publishBucket = new TokenBucket(rl.publications_per_second, Math.max(rl.publications_burst, rl.publications_per_second));
    conn.bind(this);
    const stale = ctx.config.client.stale_close_delay;
    if (stale > 0) {
      this.staleTimer = setTimeout(() => {
        if (this.state === 'connecting') this.disconnect(Disconnects.stale);
      }, stale);
      this.staleTimer.unref();
    }
  }

  get numSubscriptions(): number {
    return this.subs.size;
  }

  channels(): string[] {
    return [...this.subs.keys()];
  }

  // ---- transport events ----

  onFrame(buf: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.awaitingPong = false;
    this.ctx.metrics.bytesIn.inc(buf.length);
    let commands: Command[];
    try {
      commands = this.codec.decode(buf, isBinary);
    } catch (e) {
      if (e instanceof DisconnectError) this.badInput(e.kind ?? 'malformed_frame', e.disconnect);
      else this.badInput('malformed_frame', Disconnects.badRequest);
      return;
    }
    if (commands.length === 0) return;
    if (++this.pendingFrames > MAX_PENDING_FRAMES) {
      this.ctx.metrics.limits.labels('pending_commands').inc();
      this.disconnect(Disconnects.tooManyRequests);
      return;
    }
    this.inbox = this.inbox ? this.inbox.then(() => this.process(commands)) : this.process(commands);
  }

  onError(err: Error & { code?: unknown }): void {
    // ws refused a frame itself (above max_message_size → 1009, invalid UTF-8 → 1007, …)
    // and closes the socket: still bad input, so count it and log it once.
    if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
      const kind = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message_too_big' : err.code.slice(7).toLowerCase();
      this.ctx.metrics.badInput.labels(kind).inc();
      this.logBadInput(kind);
      return;
    }
    this.ctx.log.debug({ client: this.id, err: err.message }, 'websocket error');
  }

  private badInput(kind: string, d: Disconnect): void {
    this.ctx.metrics.badInput.labels(kind).inc();
    this.logBadInput(kind);
    this.disconnect(d);
  }

  /** Logged once per address and kind per interval (counted every time): a flood is not a log flood. */
  private logBadInput(kind: string): void {
    if (this.ctx.limits.logOnce.shouldLog('bad:' + kind + ':' + this.ip)) {
      this.ctx.log.info({ client: this.id, user: this.user, ip: this.ip, kind }, 'bad input from client');
    }
  }

  private async process(commands: Command[]): Promise<void> {
    try {
      for (const cmd of commands) {
        if (this.state === 'closed') return;
        await this.handle(cmd);
      }
    } finally {
      this.pendingFrames--;
    }
  }

  private async handle(cmd: Command): Promise<void> {
    const { id, method, params } = cmd;
    if (method === undefined) {
      if (params === UNKNOWN) {
        this.ctx.metrics.badInput.labels('unknown_method').inc();
        this.ctx.metrics.command('unknown', 'error');
        // Unknown methods cost a token and count as errors like any command, so they are no way around the limits.
        let error: ProtocolError = Errors.methodNotFound;
        if (this.commandBucket && !this.commandBucket.take()) {
          try {
            this.refuse('commands_per_second');
          } catch (e) {
            if (e instanceof DisconnectError) return this.disconnect(e.disconnect);
            error = Errors.tooManyRequests;
          }
        } else {
          this.refusedInRow = 0;
        }
        if (id > 0) this.writer.enqueue(this.codec.error(id, error));
        this.countErrorReply();
      }
      return; // an empty command is the client's pong
    }
    if ((this.state === 'connecting') !== (method === 'connect')) {
      this.badInput(method === 'connect' ? 'connect_twice' : 'command_before_connect', Disconnects.badRequest);
      return;
    }
    const started = performance.now();
    let result = 'ok';
    try {
      if (this.commandBucket && method !== 'connect' && !this.commandBucket.take()) this.refuse('commands_per_second');
      const reply = await this.dispatch(method, params);
      this.refusedInRow = 0;
      if (this.state === 'closed') return;
      if (method !== 'send') this.writer.enqueue(this.codec.reply(id, method, reply.result));
      reply.after?.();
    } catch (e) {
      if (e instanceof ReplyError) {
        result = String(e.error.code);
        if (e.error.code !== Errors.tooManyRequests.code) this.refusedInRow = 0;
        if (id > 0 && this.state !== 'closed') this.writer.enqueue(this.codec.error(id, e.error));
        // Rate-limit refusals are governed by rate_limit.disconnect_after, not counted as protocol errors.
        if (e.error.code !== Errors.tooManyRequests.code) this.countErrorReply();
        if (method === 'connect' && !(e.error.code === 109 || e.error.temporary)) {
          // The client gives up on a non-temporary connect error; free the socket.
          this.disconnect(Disconnects.connectionClosed);
        }
      } else if (e instanceof DisconnectError) {
        result = String(e.disconnect.code);
        this.disconnect(e.disconnect);
      } else if (e instanceof EngineUnavailableError) {
        // Temporary (code 100): the client retries. Logged once per kind per interval, not per command.
        result = '100';
        if (this.ctx.limits.logOnce.shouldLog('engine:' + e.kind))
          this.ctx.log.warn({ kind: e.kind, err: e.message, method }, 'engine unavailable');
        if (id > 0 && this.state !== 'closed') this.writer.enqueue(this.codec.error(id, Errors.internal));
      } else {
        result = '100';
        this.ctx.log.error({ client: this.id, method, err: e instanceof Error ? e.message : String(e) }, 'command failed');
        if (id > 0 && this.state !== 'closed') this.writer.enqueue(this.codec.error(id, Errors.internal));
      }
    } finally {
      this.ctx.metrics.command(method, result);
      this.ctx.metrics.commandDuration.labels(method).observe((performance.now() - started) / 1000);
    }
  }

  /** Refuses a command over a rate limit (111); persistent excess closes the connection (3013). */
  private refuse(limit: string): never {
    const { ctx } = this;
    ctx.metrics.limits.labels(limit).inc();
    if (ctx.limits.logOnce.shouldLog(limit + ':' + (this.user || this.ip))) {
      ctx.log.warn({ client: this.id, user: this.user, ip: this.ip, limit }, 'rate limit hit');
    }
    const max = ctx.config.client.rate_limit.disconnect_after;
    if (max > 0 && ++this.refusedInRow >= max) throw new DisconnectError(Disconnects.tooManyRequests);
    throw new ReplyError(Errors.tooManyRequests);
  }

  private countErrorReply(): void {
    const max = this.ctx.config.client.max_protocol_errors;
    if (max > 0 && ++this.errorReplies >= max) {
      this.ctx.metrics.limits.labels('max_protocol_errors').inc();
      this.disconnect(Disconnects.tooManyErrors);
    }
  }

  private dispatch(method: NonNullable<Command['method']>, p: Params): Promise<Reply> {
    switch (method) {
      case 'connect':
        return this.onConnect(p);
      case 'subscribe':
        return this.onSubscribe(p);
      case 'unsubscribe':
        return this.onUnsubscribe(p);
      case 'publish':
        return this.onPublish(p);
      case 'presence':
        return this.onPresence(p);
      case 'presence_stats':
        return this.onPresenceStats(p);
      case 'history':
        return this.onHistory(p);
      case 'rpc':
        return this.onRpc(p);
      case 'send':
        return this.onSend(p);
      case 'refresh':
        return this.onRefresh(p);
      case 'sub_refresh':
        return this.onSubRefresh(p);
    }
  }

  // ---- connect / refresh ----

  private async onConnect(p: Params): Promise<Reply> {
    const { ctx } = this;
    const cfg = ctx.config.client;
    const token = optString(p, 'token');
    const data = p.data as Json | undefined;
    let user: string | undefined;
    let connInfo: RawJSON | undefined;
    let channels: string[] = [];
    let subsClaim: Record<string, { info?: RawJSON; data?: RawJSON }> = {};
    let expireAt = 0;
    let replyData: RawJSON | undefined;

    if (ctx.hooks.onConnecting) {
      const r = await ctx.hooks.onConnecting({
        client: this.id,
        request: this.request!,
        token: token || undefined,
        data,
        name: optString(p, 'name'),
        version: optString(p, 'version'),
      });
      if (r) {
        user = r.user;
        connInfo = r.info !== undefined ? JSON.stringify(r.info) : undefined;
        channels = [...(r.channels ?? [])];
        expireAt = (r.expireAt ?? 0) * 1000;
        replyData = r.data !== undefined ? JSON.stringify(r.data) : undefined;
        this.serverSideRefresh = ctx.hooks.onRefresh !== undefined;
      }
    }
    if (user === undefined && token) {
      const claims = connectClaims(await this.verify(ctx.tokens, token, 'connect'), cfg.token.clock_skew);
      await this.checkNotRevoked(claims);
      user = claims.user;
      connInfo = claims.info;
      channels = [...claims.channels];
      subsClaim = { ...claims.subs };
      expireAt = claims.expireAt;
      this.jti = claims.jti;
      this.iat = claims.iat;
    }
    if (user === undefined) {
      if (!cfg.allow_anonymous_connect_without_token) throw new ReplyError(Errors.unauthorized);
      user = '';
    }
    if (cfg.connection_limit > 0 && ctx.hub.clients.size >= cfg.connection_limit) {
      ctx.metrics.limits.labels('connection_limit').inc();
      throw new DisconnectError(Disconnects.connectionLimit);
    }
    const trackUser = cfg.user_connection_limit > 0 && user !== '';
    if (trackUser) {
      // Counted through the engine's presence (a per-user key with TTL), so the
      // limit holds across nodes with the Redis engine.
      const local = ctx.hub.users.get(user)?.size ?? 0;
      const everywhere =
        local >= cfg.user_connection_limit ? local : (await ctx.engine.presence.stats(userConnectionsKey(user))).numClients;
      if (Math.max(local, everywhere) >= cfg.user_connection_limit) {
        ctx.metrics.limits.labels('user_connection_limit').inc();
        throw new ReplyError(Errors.limitExceeded);
      }
    }

    this.user = user;
    this.info = { user, client: this.id, connInfo };
    if (trackUser) {
      this.trackedUser = true;
      await ctx.engine.presence.add(userConnectionsKey(user), { user, client: this.id });
    }
    // The socket may have closed while we awaited hooks, tokens or the engine.
    if (this.state !== 'connecting') throw new ReplyError(Errors.internal);
    this.state = 'connected';
    this.request = undefined;
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
    ctx.hub.addClient(this);
    ctx.heartbeats.add(this);
    this.setExpiry(expireAt);

    // Server-side subscriptions: token/hook channels, `subs` claim, personal channel, config.
    const personal = ctx.channels.personalChannel(user, cfg.subscribe_to_user_personal_channel);
    const all = new Set<string>([...channels, ...Object.keys(subsClaim)]);
    if (personal) all.add(personal);
    for (const tpl of cfg.server_side_subscriptions) {
      if (tpl.includes('{user}') && user === '') continue;
      all.add(tpl.replaceAll('{user}', user));
    }
    const recoverReq = optObject(p, 'subs') ?? {};
    const subsResult: Record<string, unknown> = {};
    const activations: Array<() => void> = [];
    for (const channel of all) {
      let resolved: ResolvedChannel;
      try {
        resolved = ctx.channels.resolve(channel);
      } catch {
        ctx.log.warn({ client: this.id, channel }, 'server-side subscription to an invalid channel skipped');
        continue;
      }
      const r = recoverReq[channel] as Record<string, unknown> | undefined;
      const since = r && typeof r === 'object' && r.recover === true ? positionOf(r) : undefined;
      const { result, activate } = await this.subscribeChannel(channel, resolved, {
        recover: since !== undefined,
        since,
        chanInfo: subsClaim[channel]?.info,
        data: subsClaim[channel]?.data,
        serverSide: true,
      });
      subsResult[channel] = result;
      activations.push(activate);
    }
    const pingSeconds = Math.round(ctx.config.client.ping_interval / 1000);
    const result: Record<string, unknown> = {
      client: this.id,
      version: ctx.version,
      data: replyData !== undefined ? this.codec.data(replyData) : undefined,
      subs: activations.length > 0 ? subsResult : undefined,
      ping: pingSeconds > 0 ? pingSeconds : undefined,
      pong: pingSeconds > 0 ? true : undefined,
      node: ctx.nodeId,
      ...this.expiryFields(),
    };
    return { result, after: () => activations.forEach((a) => a()) };
  }

  private async onRefresh(p: Params): Promise<Reply> {
    const token = reqString(p, 'token');
    const claims = connectClaims(await this.verify(this.ctx.tokens, token, 'refresh'), this.ctx.config.client.token.clock_skew);
    if (claims.user !== this.user) throw new DisconnectError(Disconnects.invalidToken);
    await this.checkNotRevoked(claims);
    // The connection now stands on the new token: later revocations are checked against it.
    this.jti = claims.jti;
    this.iat = claims.iat;
    if (claims.info !== undefined) this.info = { ...this.info, connInfo: claims.info };
    this.setExpiry(claims.expireAt);
    return { result: { client: this.id, version: this.ctx.version, ...this.expiryFields() } };
  }

  /**
   * Revoked by jti, or issued before the user's invalidation time. A token
   * without `iat` cannot show it was issued after that time, so it counts as
   * older (the same rule the live check in node.ts applies).
   */
  private async checkNotRevoked(claims: { user: string; jti?: string; iat?: number }): Promise<void> {
    const { ctx } = this;
    if (await ctx.tokenRevoked({ user: claims.user, jti: claims.jti, issuedAt: (claims.iat ?? 0) * 1000 })) {
      ctx.metrics.badInput.labels('revoked_token').inc();
      throw new DisconnectError(Disconnects.invalidToken);
    }
  }

  private async verify(verifier: SessionContext['tokens'], token: string, what: string): Promise<import('jose').JWTPayload> {
    try {
      return await verifier.verify(token);
    } catch (e) {
      if (e instanceof TokenError) {
        this.ctx.metrics.badInput.labels(`${what}_token_${e.kind}`).inc();
        if (e.kind === 'expired') throw new ReplyError(Errors.tokenExpired);
        this.ctx.log.info({ client: this.id, ip: this.ip, reason: e.message }, `invalid ${what} token`);
        if (what === 'subscribe' || what === 'sub_refresh') throw new ReplyError(Errors.permissionDenied);
        throw new DisconnectError(Disconnects.invalidToken);
      }
      if (e instanceof KeySourceError) {
        // Not the client's fault: a temporary error it retries, logged once per interval rather than per attempt.
        this.ctx.metrics.badInput.labels('token_key_source_unavailable').inc();
        if (this.ctx.limits.logOnce.shouldLog('jwks'))
          this.ctx.log.error({ err: e.message }, 'cannot verify tokens: key source unavailable');
        throw new ReplyError(Errors.internal);
      }
      throw e;
    }
  }

  private expiryFields(): { expires?: boolean; ttl?: number } {
    if (this.expireAt <= 0 || this.serverSideRefresh) return {};
    return { expires: true, ttl: Math.max(1, Math.floor((this.expireAt - Date.now()) / 1000)) };
  }

  private setExpiry(expireAt: number): void {
    this.expireAt = expireAt;
    if (this.expireTimer) clearTimeout(this.expireTimer);
    this.expireTimer = undefined;
    if (expireAt <= 0) return;
    const serverSide = this.serverSideRefresh;
    const delay = expireAt - Date.now() + (serverSide ? 0 : this.ctx.config.client.expired_close_delay);
    this.expireTimer = setTimeout(
      () => {
        if (!(this.expireAt > 0 && this.expireAt <= Date.now()) || this.state !== 'connected') return;
        if (!serverSide) {
          this.disconnect(Disconnects.expired);
          return;
        }
        // Credentials came from the backend: ask it again instead of the client.
        Promise.resolve(this.ctx.hooks.onRefresh!(this.hookContext())).then(
          (r) => {
            if (this.state !== 'connected') return;
            if (!r || r.expired || !r.expireAt) return this.disconnect(Disconnects.expired);
            if (r.info !== undefined) this.info = { ...this.info, connInfo: JSON.stringify(r.info) };
            this.setExpiry(r.expireAt * 1000);
          },
          (e: unknown) => {
            if (e instanceof DisconnectError) return this.disconnect(e.disconnect);
            // A failing backend must not cut everyone off at once: retry shortly.
            this.ctx.log.warn({ client: this.id, err: String(e) }, 'refresh hook failed; retrying');
            this.setExpiry(Date.now() + 1000);
          },
        );
      },
      Math.max(0, delay),
    );
    this.expireTimer.unref();
  }

  // ---- subscriptions ----

  private async onSubscribe(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    const { ctx } = this;
    const resolved = ctx.channels.resolve(channel);
    if (this.subs.has(channel)) throw new ReplyError(Errors.alreadySubscribed);
    if (ctx.config.client.channel_limit > 0 && this.subs.size >= ctx.config.client.channel_limit) {
      ctx.metrics.limits.labels('channel_limit').inc();
      throw new ReplyError(Errors.limitExceeded);
    }
    const ns = resolved.options;
    const token = optString(p, 'token');
    let chanInfo: RawJSON | undefined;
    let data: RawJSON | undefined;
    let expireAt = 0;
    let override: Record<string, boolean> | undefined;
    let serverSideRefresh = false;
    if (token) {
      const claims = subClaims(
        await this.verify(ctx.subTokens, token, 'subscribe'),
        this.user,
        channel,
        ctx.config.client.token.clock_skew,
      );
      chanInfo = claims.info;
      expireAt = claims.expireAt;
      override = claims.override;
    } else if (resolved.private) {
      throw new ReplyError(Errors.permissionDenied);
    } else if (resolved.allowedUsers) {
      if (!ns.allow_user_limited_channels || this.user === '' || !resolved.allowedUsers.includes(this.user)) {
        throw new ReplyError(Errors.permissionDenied);
      }
    } else {
      const hook = ctx.hooks.onSubscribe
        ? await ctx.hooks.onSubscribe({ ...this.hookContext(), channel, data: p.data as Json | undefined })
        : undefined;
      if (hook) {
        chanInfo = hook.info !== undefined ? JSON.stringify(hook.info) : undefined;
        data = hook.data !== undefined ? JSON.stringify(hook.data) : undefined;
        expireAt = (hook.expireAt ?? 0) * 1000;
        serverSideRefresh = ctx.hooks.onSubRefresh !== undefined;
      } else if (!(this.user === '' ? ns.allow_subscribe_for_anonymous : ns.allow_subscribe_for_client)) {
        throw new ReplyError(Errors.permissionDenied);
      }
    }
    if (this.state !== 'connected') throw new ReplyError(Errors.internal);
    if (this.subs.has(channel)) throw new ReplyError(Errors.alreadySubscribed);
    const recover = optBool(p, 'recover');
    const since = recover ? positionOf(p) : undefined;
    const { result, activate } = await this.subscribeChannel(channel, resolved, {
      recover,
      since,
      recoverable: optBool(p, 'recoverable'),
      positioned: optBool(p, 'positioned'),
      joinLeave: optBool(p, 'join_leave'),
      chanInfo,
      data,
      expireAt,
      override,
      serverSideRefresh,
    });
    return { result, after: activate };
  }

  /**
   * Subscribes this connection to a channel it is allowed into: hub entry,
   * recovery from history with live publications buffered and merged,
   * presence and join. `activate` must run right after the result is
   * queued, so buffered publications follow the reply in order.
   */
  async subscribeChannel(
    channel: string,
    resolved: ResolvedChannel,
    req: SubscribeRequest,
  ): Promise<{ result: Record<string, unknown>; activate: () => void }> {
    const { ctx } = this;
    const ns = resolved.options;
    const ov = req.override ?? {};
    const historyOn = ns.history_size > 0 && ns.history_ttl > 0;
    const recoverable = (historyOn && (ov.force_recovery ?? ns.force_recovery)) || (historyOn && ns.allow_recovery && !!req.recoverable);
    const positioned =
      historyOn && (recoverable || (ov.force_positioning ?? ns.force_positioning) || (ns.allow_positioning && !!req.positioned));
    const presence = ov.presence ?? ns.presence;
    const joinLeaveOn = ov.join_leave ?? ns.join_leave;
    const pushJoinLeave = joinLeaveOn && (!!req.joinLeave || (ov.force_push_join_leave ?? ns.force_push_join_leave));

    const sub = new Subscriber(this, channel);
    sub.positioned = positioned;
    sub.joinLeave = pushJoinLeave;
    if (positioned) sub.buffer = [];
    const info: ClientInfo = { ...this.info, chanInfo: req.chanInfo };
    const state: SubState = {
      subscriber: sub,
      options: ns,
      info,
      presence,
      joinLeave: joinLeaveOn,
      expireAt: 0,
      serverSideRefresh: req.serverSideRefresh,
    };
    this.subs.set(channel, state);
    const result: Record<string, unknown> = {};
    try {
      await ctx.addSubscriber(sub);
      if (positioned) {
        const histOpts = { historyTtlMs: ns.history_ttl, historyMetaTtlMs: ns.history_meta_ttl };
        let pubs: Publication[] = [];
        let recovered = false;
        let position: StreamPosition;
        if (req.recover && req.since && recoverable) {
          const limit = ctx.config.client.recovery_max_publication_limit;
          const h = await ctx.engine.history.read(channel, {
            ...histOpts,
            since: req.since,
            limit: limit + 1,
            recovery: true,
            historySize: ns.history_size,
          });
          position = h.position;
          recovered = isRecovered(req.since, h.publications, h.position, limit);
          if (recovered) pubs = h.publications;
          ctx.metrics.recoveries.labels(String(recovered)).inc();
        } else {
          position = (await ctx.engine.history.read(channel, { ...histOpts, limit: 0 })).position;
        }
        sub.offset = pubs.length > 0 ? pubs[pubs.length - 1]!.offset : position.offset;
        result.recoverable = recoverable || undefined;
        result.positioned = positioned || undefined;
        result.epoch = position.epoch;
        result.offset = position.offset;
        if (req.recover) {
          result.was_recovering = true;
          result.recovered = recovered;
          if (pubs.length > 0) result.publications = this.codec.publications(pubs);
        }
      }
      // Unsubscribed or closed while we awaited: add nothing that nobody would remove.
      if (this.subs.get(channel) !== state) throw new ReplyError(Errors.internal);
      if (presence) {
        await ctx.engine.presence.add(channel, info);
        if (this.subs.get(channel) !== state) {
          await ctx.engine.presence.remove(channel, this.id, this.user);
          throw new ReplyError(Errors.internal);
        }
      }
      if (joinLeaveOn) await ctx.engine.broker.publishJoin(channel, info);
    } catch (e) {
      if (this.subs.get(channel) === state) this.subs.delete(channel);
      ctx.removeSubscriber(sub);
      if (e instanceof ReplyError || e instanceof DisconnectError || e instanceof EngineUnavailableError) throw e;
      ctx.log.error({ client: this.id, channel, err: e instanceof Error ? e.message : String(e) }, 'subscribe failed');
      throw new ReplyError(Errors.internal);
    }
    if (req.expireAt && req.expireAt > 0) {
      this.setSubExpiry(channel, state, req.expireAt);
      if (!req.serverSideRefresh) {
        result.expires = true;
        result.ttl = Math.max(1, Math.floor((req.expireAt - Date.now()) / 1000));
      }
    }
    if (req.data !== undefined) result.data = this.codec.data(req.data);
    const activate = (): void => {
      const buffered = sub.buffer;
      if (buffered === null) return;
      sub.buffer = null;
      for (const pub of buffered) {
        if (pub.offset <= sub.offset) continue; // already in the recovered set or before the reported position
        if (!sub.deliver(pub, publicationBytes(this.codec, channel, pub))) break;
      }
    };
    return { result, activate };
  }

  private async onUnsubscribe(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    this.removeSubscription(channel);
    return { result: {} };
  }

  /** Drops a subscription on this node: hub, presence, leave. */
  removeSubscription(channel: string): boolean {
    const state = this.subs.get(channel);
    if (!state) return false;
    this.subs.delete(channel);
    if (state.timer) clearTimeout(state.timer);
    this.ctx.removeSubscriber(state.subscriber);
    const { engine, log } = this.ctx;
    const fail = (err: unknown): void => log.warn({ client: this.id, channel, err: String(err) }, 'unsubscribe cleanup failed');
    if (state.presence) engine.presence.remove(channel, this.id, this.user).catch(fail);
    if (state.joinLeave) engine.broker.publishLeave(channel, state.info).catch(fail);
    return true;
  }

  insufficientState(channel: string): void {
    if (!this.removeSubscription(channel)) return;
    this.ctx.metrics.badInput.labels('insufficient_state').inc();
    this.writer.enqueue(this.codec.unsubscribePush(channel, Unsubscribes.insufficientState.code, Unsubscribes.insufficientState.reason));
  }

  /** Server API: subscribe this connection and tell it with a subscribe push. */
  async serverSubscribe(channel: string, req: SubscribeRequest): Promise<void> {
    if (this.state !== 'connected' || this.subs.has(channel)) return;
    const resolved = this.ctx.channels.resolve(channel);
    const { result, activate } = await this.subscribeChannel(channel, resolved, { ...req, serverSide: true });
    if (this.state !== 'connected') return;
    this.writer.enqueue(this.codec.subscribePush(channel, result));
    activate();
  }

  /** Server API: unsubscribe and tell the client (2000, it does not resubscribe). */
  serverUnsubscribe(channel: string): void {
    if (this.removeSubscription(channel)) {
      this.writer.enqueue(this.codec.unsubscribePush(channel, Unsubscribes.server.code, Unsubscribes.server.reason));
    }
  }

  /** Server API refresh: new expiry or immediate expiry. */
  serverRefresh(expired: boolean, expireAt: number | undefined, info: RawJSON | undefined): void {
    if (info !== undefined) this.info = { ...this.info, connInfo: info };
    if (expired) {
      this.disconnect(Disconnects.expired);
      return;
    }
    if (expireAt !== undefined) {
      this.setExpiry(expireAt);
      const f = this.expiryFields();
      this.writer.enqueue(this.codec.refreshPush(!!f.expires, f.ttl ?? 0));
    }
  }

  private setSubExpiry(channel: string, state: SubState, expireAt: number): void {
    state.expireAt = expireAt;
    if (state.timer) clearTimeout(state.timer);
    const serverSide = state.serverSideRefresh;
    const expire = (): void => {
      if (this.subs.get(channel) !== state) return;
      this.removeSubscription(channel);
      this.writer.enqueue(this.codec.unsubscribePush(channel, Unsubscribes.expired.code, Unsubscribes.expired.reason));
    };
    state.timer = setTimeout(
      () => {
        if (this.subs.get(channel) !== state || state.expireAt > Date.now()) return;
        if (!serverSide) return expire();
        Promise.resolve(this.ctx.hooks.onSubRefresh!({ ...this.hookContext(), channel })).then(
          (r) => (!r || r.expired || !r.expireAt ? expire() : this.setSubExpiry(channel, state, r.expireAt * 1000)),
          () => this.setSubExpiry(channel, state, Date.now() + 1000),
        );
      },
      Math.max(0, expireAt - Date.now() + (serverSide ? 0 : this.ctx.config.client.expired_close_delay)),
    );
    state.timer.unref();
  }

  private async onSubRefresh(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    const token = reqString(p, 'token');
    const state = this.subs.get(channel);
    if (!state) throw new ReplyError(Errors.permissionDenied);
    const claims = subClaims(
      await this.verify(this.ctx.subTokens, token, 'sub_refresh'),
      this.user,
      channel,
      this.ctx.config.client.token.clock_skew,
    );
    if (claims.expireAt > 0) this.setSubExpiry(channel, state, claims.expireAt);
    else if (state.timer) clearTimeout(state.timer);
    const ttl = claims.expireAt > 0 ? Math.max(1, Math.floor((claims.expireAt - Date.now()) / 1000)) : undefined;
    return { result: { expires: ttl !== undefined || undefined, ttl } };
  }

  // ---- publish / history / presence / rpc ----

  private async onPublish(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    if (p.data === undefined) throw new ReplyError(Errors.badRequest);
    const { ctx } = this;
    const ns = ctx.channels.resolve(channel).options;
    const now = Date.now();
    if (this.publishBucket && !this.publishBucket.take(now)) this.refuse('publications_per_second');
    if (this.user !== '' && !(await ctx.limits.userPublication(ctx.engine.limiter, this.user, now)))
      this.refuse('user_publications_per_second');
    if (!ctx.limits.namespacePublication(ns, now)) this.refuse('namespace_publications_per_second');
    const subscribed = this.subs.get(channel);
    const nsAllows =
      (this.user === '' ? ns.allow_publish_for_anonymous : ns.allow_publish_for_client) ||
      (ns.allow_publish_for_subscriber && subscribed !== undefined);
    ctx.validators.checkPublication(ns, p.data);
    let data = optData(p)!;
    let skipHistory = false;
    if (ctx.hooks.onPublish) {
      const r = await ctx.hooks.onPublish({ ...this.hookContext(), channel, data: p.data as Json });
      if (!r && !nsAllows) throw new ReplyError(Errors.permissionDenied);
      if (r && r.data !== undefined) data = JSON.stringify(r.data);
      skipHistory = !!(r && r.skipHistory);
    } else if (!nsAllows) {
      throw new ReplyError(Errors.permissionDenied);
    }
    await ctx.engine.broker.publish(channel, data, {
      historySize: skipHistory ? 0 : ns.history_size,
      historyTtlMs: skipHistory ? 0 : ns.history_ttl,
      historyMetaTtlMs: ns.history_meta_ttl,
      info: subscribed?.info ?? this.info,
    });
    ctx.metrics.publications.labels('client').inc();
    return { result: {} };
  }

  private async onHistory(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    const { ctx } = this;
    const ns = ctx.channels.resolve(channel).options;
    if (!(ns.history_size > 0 && ns.history_ttl > 0)) throw new ReplyError(Errors.notAvailable);
    this.checkAccess(channel, ns.allow_history_for_subscriber, ns.allow_history_for_client, ns.allow_history_for_anonymous);
    const rawLimit = p.limit;
    if (rawLimit !== undefined && rawLimit !== null && (typeof rawLimit !== 'number' || !Number.isSafeInteger(rawLimit) || rawLimit < -1)) {
      throw new ReplyError(Errors.badRequest);
    }
    const max = ctx.config.client.history_max_publication_limit;
    let limit = typeof rawLimit === 'number' ? rawLimit : 0;
    if (limit < 0 || limit > max) limit = max;
    const sinceObj = optObject(p, 'since');
    const since = sinceObj ? positionOf(sinceObj) : undefined;
    const h = await ctx.engine.history.read(channel, {
      limit,
      since,
      reverse: optBool(p, 'reverse'),
      historyTtlMs: ns.history_ttl,
      historyMetaTtlMs: ns.history_meta_ttl,
    });
    if (since && since.epoch !== h.position.epoch) throw new ReplyError(Errors.unrecoverablePosition);
    return {
      result: { publications: this.codec.publications(h.publications), epoch: h.position.epoch, offset: h.position.offset },
    };
  }

  private async onPresence(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    const ns = this.presenceNamespace(channel);
    this.checkAccess(channel, ns.allow_presence_for_subscriber, ns.allow_presence_for_client, ns.allow_presence_for_anonymous);
    const entries = await this.ctx.engine.presence.get(channel);
    const presence: Record<string, unknown> = {};
    for (const [client, info] of entries) presence[client] = this.codec.clientInfo(info);
    return { result: { presence } };
  }

  private async onPresenceStats(p: Params): Promise<Reply> {
    const channel = reqString(p, 'channel');
    const ns = this.presenceNamespace(channel);
    this.checkAccess(channel, ns.allow_presence_for_subscriber, ns.allow_presence_for_client, ns.allow_presence_for_anonymous);
    const s = await this.ctx.engine.presence.stats(channel);
    return { result: { num_clients: s.numClients, num_users: s.numUsers } };
  }

  private presenceNamespace(channel: string): NamespaceConfig {
    const ns = this.ctx.channels.resolve(channel).options;
    if (!ns.presence) throw new ReplyError(Errors.notAvailable);
    return ns;
  }

  private checkAccess(channel: string, forSubscriber: boolean, forClient: boolean, forAnonymous: boolean): void {
    if (forSubscriber && this.subs.has(channel)) return;
    if (this.user === '' ? forAnonymous : forClient) return;
    throw new ReplyError(Errors.permissionDenied);
  }

  private async onRpc(p: Params): Promise<Reply> {
    const method = optString(p, 'method') ?? '';
    const hook = this.ctx.hooks.onRpc;
    if (!hook) throw new ReplyError(Errors.notAvailable);
    this.ctx.validators.checkRpc(method, p.data);
    const data = await hook({ ...this.hookContext(), method, data: p.data as Json | undefined });
    return { result: { data: data === undefined ? undefined : this.codec.data(JSON.stringify(data)) } };
  }

  private async onSend(p: Params): Promise<Reply> {
    const hook = this.ctx.hooks.onMessage;
    if (hook) await hook({ ...this.hookContext(), data: p.data as Json | undefined });
    return { result: undefined };
  }

  private hookContext(): ClientContext {
    return {
      client: this.id,
      user: this.user,
      headers: this.headers,
      info: this.info.connInfo !== undefined ? (JSON.parse(this.info.connInfo) as Json) : undefined,
    };
  }

  // ---- heartbeats, slow consumers, close ----

  sendPing(): void {
    this.writer.enqueue(this.codec.ping());
  }

  onNoPong(): void {
    this.disconnect(Disconnects.noPong);
  }

  onWriterOverflow(): void {
    this.ctx.metrics.queueDrops.inc();
    this.ctx.log.info({ client: this.id, user: this.user, ip: this.ip }, 'slow consumer disconnected');
    this.writer.discard();
    this.disconnect(Disconnects.slow, false);
  }

  /** Closes the connection with a disconnect code (sending what is queued unless `flush` is false). */
  disconnect(d: Disconnect, flush = true): void {
    if (this.state === 'closed') return;
    this.closeCode = d.code;
    this.ctx.metrics.disconnects.labels(String(d.code)).inc();
    if (!flush) this.writer.discard();
    this.writer.close(d.code, d.reason);
    this.cleanup();
  }

  onClosed(): void {
    if (this.state === 'closed') return;
    this.closeCode = Disconnects.connectionClosed.code;
    this.ctx.metrics.disconnects.labels('client').inc();
    this.cleanup();
  }

  private cleanup(): void {
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    if (this.staleTimer) clearTimeout(this.staleTimer);
    if (this.expireTimer) clearTimeout(this.expireTimer);
    this.ctx.heartbeats.remove(this);
    for (const channel of [...this.subs.keys()]) this.removeSubscription(channel);
    this.ctx.hub.removeClient(this);
    if (this.trackedUser) {
      this.ctx.engine.presence.remove(userConnectionsKey(this.user), this.id, this.user).catch(() => undefined);
    }
    this.ctx.sessionClosed(this);
    if (wasConnected && this.ctx.hooks.onDisconnect) {
      try {
        this.ctx.hooks.onDisconnect({ ...this.hookContext(), code: this.closeCode, reason: '' });
      } catch (e) {
        this.ctx.log.warn({ err: String(e) }, 'onDisconnect hook threw');
      }
    }
  }

  /** Token-level facts for revocation checks. */
  tokenIdentity(): { jti?: string; iat?: number } {
    return { jti: this.jti, iat: this.iat };
  }
}

/** The presence key that counts a user's connections on all nodes (not a channel clients can name: it has a NUL). */
function userConnectionsKey(user: string): string {
  return '\u0000user_connections:' + user;
}

function positionOf(p: Params): StreamPosition | undefined {
  const offset = optInt(p, 'offset') ?? 0;
  const epoch = optString(p, 'epoch') ?? '';
  return { offset, epoch };
}

/** Recovery succeeded when the epoch matches and nothing between `since` and the top is missing. */
function isRecovered(since: StreamPosition, pubs: readonly Publication[], top: StreamPosition, limit: number): boolean {
  if (since.epoch !== top.epoch) return false;
  if (pubs.length > limit) return false;
  if (pubs.length === 0) return since.offset === top.offset;
  return pubs[0]!.offset === since.offset + 1 && pubs[pubs.length - 1]!.offset === top.offset;
}
