import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { EngineUnavailableError } from '../engine/errors.js';
import { laneOf, replyLane } from '../hub/delivery.js';
import type { HubClient } from '../hub/hub.js';
import { Disconnects, DisconnectError, Errors, ReplyError, Unsubscribes, type Disconnect, type ProtocolError } from '../protocol/codes.js';
import type { Codec } from '../protocol/codec.js';
import { UNKNOWN, type Command, type Method } from '../protocol/commands.js';
import { parseParams, type ParamsOf } from '../protocol/params.js';
import type { ClientInfo, RawJSON } from '../protocol/types.js';
import type { Heartbeat } from '../transport/heartbeat.js';
import type { ClientConnection, ConnectionHandler, OutboundQueue } from '../transport/connection.js';
import { connectServerSide, userConnectionsKey } from './connect.js';
import type { SessionContext } from './context.js';
import { connectCredentials, type Applicant, type ConnectCredentials } from './credentials.js';
import { CommandGuard } from './guard.js';
import { commandInbox, type CommandInbox, type InboxOwner } from './inbox.js';
import { CredentialLease } from './lease.js';
import { HANDLERS, type CommandSession, type Reply } from './handlers.js';
import type { ClientContext, Json } from './hooks.js';
import { SubscriptionSet, type SubscribeRequest } from './subscriptions.js';
import { SpanKind } from '@opentelemetry/api';

export type { SubscribeRequest } from './subscriptions.js';

type State = 'connecting' | 'connected' | 'closed';

/**
 * Transports whose connections span several requests report their session id
 * in the connect reply (as centrifuge does: emulation requests name it).
 */
const BIDIRECTIONAL = new Set(['websocket']);

/**
 * One client connection: the protocol state machine from connect to close.
 * Commands are handled in arrival order, one at a time unless
 * client.concurrency allows more (inbox.ts); each goes to its handler in
 * the table (handlers.ts), through the command guard.
 */
export class Session implements HubClient, Heartbeat, ConnectionHandler, CommandSession, InboxOwner {
  readonly id = randomUUID();
  /**
   * The session id API targets can name (disconnect, unsubscribe, subscribe,
   * refresh): one per connection, distinct from the client id, as in
   * centrifuge. Only emulation and unidirectional transports send it to the
   * client (in the connect reply); hooks and the backend see it always.
   */
  get session(): string {
    // made when first asked for (hooks, a target match, an emulation connect): most WebSocket connections never are
    return (this.sessionId ??= randomUUID());
  }
  private sessionId: string | undefined;
  /** Whether the connect reply carries `session`. */
  private readonly reportsSession: boolean;
  /** A unidirectional transport: connect errors become disconnects, the client never pongs (see connection.ts). */
  private readonly unidirectional: boolean;
  private readonly pongs: boolean;
  user = '';
  info: ClientInfo = { user: '', client: this.id };
  readonly writer: OutboundQueue;
  readonly codec: Codec;
  private readonly conn: ClientConnection;
  readonly subs: SubscriptionSet;
  readonly guard: CommandGuard;
  state: State = 'connecting';
  awaitingPong = false;
  hbSlot = -1;
  hbPongSlot = -1;
  private readonly inbox: CommandInbox;
  private readonly lease: CredentialLease;
  private closeCode = 0;
  /** The engine's entry counting this connection among its user's (client.user_connection_limit), once its add was sent. */
  private userSlot: Promise<void> | undefined;
  /** The upgrade request, kept only until connect (hooks see it); afterwards only its headers. */
  private request: IncomingMessage | undefined;
  readonly headers: IncomingHttpHeaders | undefined;
  /** The transport's name (`websocket`, …), for the connections API. */
  readonly transport: string;
  /** Unix ms when the connect succeeded (0 before). */
  connectedAt = 0;
  /** The client's `name` and `version` from its connect command (two fields, not an object: 40 bytes less per connection). */
  private appName: string | undefined;
  private appVersion: string | undefined;

  constructor(
    readonly ctx: SessionContext,
    conn: ClientConnection,
  ) {
    this.request = conn.request;
    this.conn = conn;
    this.codec = conn.codec;
    this.writer = conn.writer;
    this.transport = conn.transport;
    this.reportsSession = !BIDIRECTIONAL.has(conn.transport);
    this.sessionId = conn.sessionId;
    this.unidirectional = conn.unidirectional === true;
    this.pongs = conn.pongs !== false;
    // Headers cost ~1 KB per connection: kept only when a hook may read them after connect.
    const h = ctx.hooks;
    if (h.onSubscribe || h.onPublish || h.onRpc || h.onMessage || h.onRefresh || h.onSubRefresh || h.onDisconnect)
      this.headers = conn.request.headers;
    this.guard = new CommandGuard(ctx, ctx.options, this);
    this.subs = new SubscriptionSet(ctx, this);
    this.lease = new CredentialLease(ctx, this);
    this.inbox = commandInbox(ctx.options.concurrency, this);
    conn.bind(this);
    ctx.stale?.add(this);
  }

  /** The peer's address (the transport asks the socket only when something needs it). */
  get ip(): string {
    return this.conn.ip;
  }

  /** client.stale_close_delay passed since the upgrade (ctx.stale): no connect command came. */
  staleDue(): void {
    if (this.state === 'connecting') this.disconnect(Disconnects.stale);
  }

  get live(): boolean {
    return this.state === 'connected';
  }

  get numSubscriptions(): number {
    return this.subs.size;
  }

  channels(): string[] {
    return this.subs.channels();
  }

  // ---- transport events ----

  onFrame(buf: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.awaitingPong = false;
    this.ctx.metrics.received(buf.length);
    let commands: Command[];
    try {
      commands = this.codec.decode(buf, isBinary);
    } catch (e) {
      if (e instanceof DisconnectError) this.badInput(e.kind ?? 'malformed_frame', e.disconnect);
      else this.badInput('malformed_frame', Disconnects.badRequest);
      return;
    }
    if (commands.length === 0) return;
    if (!this.inbox.push(commands)) {
      this.ctx.metrics.limits.labels('pending_commands').inc();
      this.disconnect(Disconnects.tooManyRequests);
    }
  }

  /** The client's `name` and `version` from its connect command (for the connections API). */
  get app(): { readonly name?: string; readonly version?: string } {
    return { name: this.appName, version: this.appVersion };
  }

  onError(err: Error & { code?: unknown }): void {
    // The transport refused a frame itself (above max_message_size → 1009, invalid UTF-8 → 1007, …)
    // and closes the socket: still bad input, so count it and log it once.
    if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
      this.guard.badInput(err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message_too_big' : err.code.slice(7).toLowerCase());
      return;
    }
    this.ctx.log.debug({ client: this.id, err: err.message }, 'transport error');
  }

  private badInput(kind: string, d: Disconnect): void {
    this.guard.badInput(kind);
    this.disconnect(d);
  }

  /** A failure outside any command's handling (a bug): the connection cannot be trusted to continue. (For the inbox.) */
  failed(e: unknown): void {
    this.ctx.log.error({ client: this.id, err: e instanceof Error ? e.message : String(e) }, 'session failed');
    this.disconnect(Disconnects.serverError);
  }

  /** One command from arrival to reply (called by the inbox, in order or overlapping per client.concurrency). */
  async handle(cmd: Command): Promise<void> {
    const { id, method, params } = cmd;
    if (method === undefined) {
      if (params === UNKNOWN) this.unknownMethod(id);
      return; // an empty command is the client's pong
    }
    if ((this.state === 'connecting') !== (method === 'connect')) {
      this.badInput(method === 'connect' ? 'connect_twice' : 'command_before_connect', Disconnects.badRequest);
      return;
    }
    const { metrics } = this.ctx;
    const started = performance.now();
    let result = 'ok';
    try {
      if (method !== 'connect') {
        this.guard.command();
        this.ctx.connections.active?.(this);
      }
      const t = this.ctx.tracing;
      const reply = t
        ? await t.run(`client ${method}`, SpanKind.SERVER, { 'rpc.method': method, 'enduser.id': this.user }, () =>
            this.dispatch(method, params),
          )
        : await this.dispatch(method, params);
      this.guard.passed();
      if (this.state === 'closed') return;
      if (method !== 'send') this.writer.enqueue(this.codec.reply(id, method, reply.result), reply.lane);
      reply.after?.();
    } catch (e) {
      result = this.failure(id, method, e);
    } finally {
      metrics.command(method, result);
      metrics.commandDuration.labels(method).observe((performance.now() - started) / 1000);
    }
  }

  private dispatch<M extends Method>(method: M, params: Command['params']): Promise<Reply> {
    const handler = HANDLERS[method] as (s: CommandSession, p: ParamsOf<M>) => Promise<Reply>;
    return handler(this, parseParams(method, params));
  }

  /** Answers a failed command (error reply or disconnect); returns the metrics label of the outcome. */
  private failure(id: number, method: Method, e: unknown): string {
    if (method === 'connect' && this.unidirectional && !(e instanceof DisconnectError)) return this.uniConnectFailure(e);
    if (e instanceof ReplyError) {
      const limited = e.error.code === Errors.tooManyRequests.code;
      if (!limited) this.guard.passed();
      if (id > 0 && this.state !== 'closed') this.writer.enqueue(this.codec.error(id, e.error));
      // Rate-limit refusals are governed by rate_limit.disconnect_after, not counted as protocol errors;
      // nor is "lock held" (150): contention for a field lock is an answer, not a misbehaving client.
      if (!limited && e.error.code !== Errors.lockHeld.code) this.countErrorReply();
      // The client gives up on a non-temporary connect error; free the socket.
      if (method === 'connect' && !(e.error.code === Errors.tokenExpired.code || e.error.temporary))
        this.disconnect(Disconnects.connectionClosed);
      return String(e.error.code);
    }
    if (e instanceof DisconnectError) {
      this.disconnect(e.disconnect);
      return String(e.disconnect.code);
    }
    if (e instanceof EngineUnavailableError) {
      // Temporary (100): the client retries. Logged once per kind per interval, not per command.
      if (this.ctx.limits.logOnce.shouldLog('engine:' + e.kind))
        this.ctx.log.warn({ kind: e.kind, err: e.message, method }, 'engine unavailable');
    } else this.ctx.log.error({ client: this.id, method, err: e instanceof Error ? e.message : String(e) }, 'command failed');
    if (id > 0 && this.state !== 'closed') this.writer.enqueue(this.codec.error(id, Errors.internal));
    return '100';
  }

  /**
   * A unidirectional client cannot read an error reply: a failed connect
   * closes with a disconnect code, mapped as centrifuge maps it (token
   * expired → 3005, too many requests → 3013, permission denied → 3507,
   * anything else → 3004, which tells the client to reconnect); a connect
   * request with fields of the wrong types closes with 3501, as Centrifugo's
   * uni_websocket does when it cannot parse one.
   */
  private uniConnectFailure(e: unknown): string {
    let d: Disconnect = Disconnects.serverError;
    if (e instanceof ReplyError) {
      const code = e.error.code;
      if (code === Errors.tokenExpired.code || code === Errors.expired.code) d = Disconnects.expired;
      else if (code === Errors.tooManyRequests.code) d = Disconnects.tooManyRequests;
      else if (code === Errors.permissionDenied.code) d = Disconnects.permissionDenied;
      else if (code === Errors.badRequest.code) {
        // a connect request with fields of the wrong types, as Centrifugo's uni_websocket closes on it
        this.guard.badInput('malformed_connect');
        d = Disconnects.badRequest;
      }
    } else if (e instanceof EngineUnavailableError) {
      if (this.ctx.limits.logOnce.shouldLog('engine:' + e.kind)) this.ctx.log.warn({ kind: e.kind, err: e.message }, 'engine unavailable');
    } else this.ctx.log.error({ client: this.id, err: e instanceof Error ? e.message : String(e) }, 'connect failed');
    this.disconnect(d);
    return e instanceof ReplyError ? String(e.error.code) : '100';
  }

  /** Unknown methods cost a token and count as errors like any command, so they are no way around the limits. */
  private unknownMethod(id: number): void {
    this.ctx.metrics.badInput.labels('unknown_method').inc();
    this.ctx.metrics.command('unknown', 'error');
    let error: ProtocolError = Errors.methodNotFound;
    try {
      this.guard.command();
      this.guard.passed();
    } catch (e) {
      if (e instanceof DisconnectError) return this.disconnect(e.disconnect);
      error = Errors.tooManyRequests;
    }
    if (id > 0) this.writer.enqueue(this.codec.error(id, error));
    this.countErrorReply();
  }

  private countErrorReply(): void {
    if (this.guard.errorReply()) this.disconnect(Disconnects.tooManyErrors);
  }

  // ---- connect, refresh, expiry ----

  async connect(p: ParamsOf<'connect'>): Promise<Reply> {
    const { ctx } = this;
    const opts = ctx.options;
    const creds = await connectCredentials(ctx, this.applicant(), p);
    const user = creds.user;
    if (opts.connection_limit > 0 && ctx.connections.count >= opts.connection_limit) {
      ctx.metrics.limits.labels('connection_limit').inc();
      throw new DisconnectError(Disconnects.connectionLimit);
    }
    const trackUser = opts.user_connection_limit > 0 && user !== '';
    if (trackUser) {
      // Counted through the engine's presence (a per-user key with TTL), so the limit holds across nodes.
      const local = ctx.connections.ofUser(user);
      const everywhere =
        local >= opts.user_connection_limit ? local : (await ctx.engine.presence.stats(userConnectionsKey(user))).numClients;
      if (Math.max(local, everywhere) >= opts.user_connection_limit) {
        ctx.metrics.limits.labels('user_connection_limit').inc();
        throw new ReplyError(Errors.limitExceeded);
      }
    }
    // The socket may have closed while we awaited hooks, tokens or the engine: add nothing then.
    if (this.state !== 'connecting') throw new ReplyError(Errors.internal);
    this.user = user;
    this.info = { user, client: this.id, connInfo: creds.info };
    if (trackUser) {
      // From here a close removes the entry, after the add (see cleanup).
      this.userSlot = ctx.engine.presence.add(userConnectionsKey(user), { user, client: this.id });
      await this.userSlot;
      if (this.state !== 'connecting') throw new ReplyError(Errors.internal);
    }
    this.state = 'connected';
    this.connectedAt = Date.now();
    this.appName = p.name ?? undefined;
    this.appVersion = p.version ?? undefined;
    this.request = undefined;
    ctx.stale?.delete(this);
    ctx.connections.add(this);
    this.lease.begin(creds);
    const subs = await connectServerSide(this, creds, p);
    const pingSeconds = Math.round(opts.ping_interval / 1000);
    const result: Record<string, unknown> = {
      client: this.id,
      version: ctx.node.version,
      data: creds.replyData !== undefined ? this.codec.data(creds.replyData) : undefined,
      subs: subs.activations.length > 0 ? subs.results : undefined,
      ping: pingSeconds > 0 ? pingSeconds : undefined,
      pong: pingSeconds > 0 && !this.unidirectional ? true : undefined,
      session: this.reportsSession ? this.session : undefined,
      node: ctx.node.id,
      ...this.lease.fields(),
    };
    return { result, after: () => subs.activations.forEach((a) => a()) };
  }

  /** Who is connecting, for credentials checks: the session id and the address only when one is asked for (a log line, a hook). */
  private applicant(): Applicant {
    const conn = this.conn;
    return {
      id: this.id,
      session: () => this.session,
      get ip() {
        return conn.ip;
      },
      request: this.request!,
    };
  }

  refreshed(creds: ConnectCredentials): { expires?: boolean; ttl?: number } {
    if (creds.info !== undefined) this.info = { user: this.info.user, client: this.info.client, connInfo: creds.info };
    this.lease.renew(creds);
    return this.lease.fields();
  }

  hookContext(): ClientContext {
    return {
      client: this.id,
      session: this.session,
      user: this.user,
      headers: this.headers,
      info: this.info.connInfo !== undefined ? (JSON.parse(this.info.connInfo) as Json) : undefined,
    };
  }

  // ---- server API actions (on every node through control messages) ----

  /** Subscribes this connection and tells it with a subscribe push. */
  async serverSubscribe(channel: string, req: SubscribeRequest): Promise<void> {
    if (this.state !== 'connected' || this.subs.has(channel)) return;
    const resolved = this.ctx.channels.resolve(channel);
    const { result, activate } = await this.subs.subscribe(channel, resolved, req);
    if (this.state !== 'connected') return;
    this.writer.enqueue(this.codec.subscribePush(channel, result), replyLane(laneOf(resolved.options.priority)));
    activate();
  }

  /** Unsubscribes and tells the client (2000, it does not resubscribe). */
  serverUnsubscribe(channel: string): void {
    const lane = this.subs.laneOf(channel);
    if (this.subs.remove(channel) || this.ctx.sharedPoll?.unsubscribe(this, channel)) {
      this.writer.enqueue(this.codec.unsubscribePush(channel, Unsubscribes.server.code, Unsubscribes.server.reason), lane);
    }
  }

  /** New expiry or immediate expiry. */
  serverRefresh(expired: boolean, expireAt: number | undefined, info: RawJSON | undefined): void {
    if (info !== undefined) this.info = { user: this.info.user, client: this.info.client, connInfo: info };
    if (expired) return this.disconnect(Disconnects.expired);
    if (expireAt !== undefined) {
      this.lease.extend(expireAt);
      const f = this.lease.fields();
      this.writer.enqueue(this.codec.refreshPush(!!f.expires, f.ttl ?? 0));
    }
  }

  /** A positioned subscriber saw a gap: it resubscribes and recovers. */
  insufficientState(channel: string): void {
    const lane = this.subs.laneOf(channel);
    if (!this.subs.remove(channel)) return;
    this.ctx.metrics.badInput.labels('insufficient_state').inc();
    this.writer.enqueue(
      this.codec.unsubscribePush(channel, Unsubscribes.insufficientState.code, Unsubscribes.insufficientState.reason),
      lane,
    );
  }

  /** Token-level facts for revocation checks. */
  tokenIdentity(): { jti?: string; iat?: number } {
    return this.lease.identity;
  }

  // ---- heartbeats, slow consumers, close ----

  sendPing(): void {
    this.writer.enqueue(this.codec.ping());
  }

  onNoPong(): void {
    if (!this.pongs) return;
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

  /** Leaves nothing behind, whatever state the session reached: timers, subscriptions, index, user slot. */
  private cleanup(): void {
    const { ctx } = this;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    ctx.stale?.delete(this);
    this.lease.end();
    this.subs.removeAll();
    ctx.sharedPoll?.closed(this);
    ctx.connections.remove(this);
    if (this.userSlot) {
      // After the add settles, so a remove can never overtake it and leave the entry behind.
      const key = userConnectionsKey(this.user);
      const remove = (): Promise<void> => ctx.engine.presence.remove(key, this.id, this.user);
      this.userSlot
        .then(remove, remove)
        .catch((e: unknown) => ctx.log.warn({ client: this.id, err: String(e) }, 'user connection cleanup failed'));
    }
    ctx.connections.closed(this);
    if (wasConnected && ctx.hooks.onDisconnect) {
      try {
        ctx.hooks.onDisconnect({ ...this.hookContext(), code: this.closeCode, reason: '' });
      } catch (e) {
        ctx.log.warn({ err: String(e) }, 'onDisconnect hook threw');
      }
    }
  }
}
