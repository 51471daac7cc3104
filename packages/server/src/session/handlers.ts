import type { NamespaceConfig } from '../config/load.js';
import { conflationKeyOf, laneOf, replyLane } from '../hub/delivery.js';
import { Errors, ReplyError } from '../protocol/codes.js';
import type { Method } from '../protocol/commands.js';
import { parsePosition, rawData, type ParamsOf } from '../protocol/params.js';
import type { RawJSON } from '../protocol/types.js';
import type { ResolvedChannel } from '../auth/channels.js';
import { isMapNamespace } from '../maps/options.js';
import { subClaims } from './claims.js';
import { mapClientPublish, mapSubscribe, type MapAuth } from './map-subscribe.js';
import type { SessionContext } from './context.js';
import { refreshCredentials, verifyToken, type ConnectCredentials } from './credentials.js';
import type { CommandGuard } from './guard.js';
import type { Json } from './hooks.js';
import { FLAG_CHANNEL_COMPACTION, type SubscriptionOwner, type SubscriptionSet } from './subscriptions.js';

export interface Reply {
  readonly result: unknown;
  /** Runs right after the reply is queued (e.g. a subscription going live). */
  readonly after?: () => void;
  /** The writer lane of the reply (a subscribe reply: `replyLane` of its channel's, so it stays behind what that lane holds). */
  readonly lane?: number;
}

/** A connection as its command handlers see it. */
export interface CommandSession extends SubscriptionOwner {
  readonly ctx: SessionContext;
  readonly ip: string;
  readonly subs: SubscriptionSet;
  readonly guard: CommandGuard;
  /** Still connected (the socket may close while a handler awaits). */
  readonly live: boolean;
  connect(p: ParamsOf<'connect'>): Promise<Reply>;
  /** Puts new credentials of the same user in place; returns the expiry fields of the reply. */
  refreshed(creds: ConnectCredentials): { expires?: boolean; ttl?: number };
}

type Handler<M extends Method> = (s: CommandSession, p: ParamsOf<M>) => Promise<Reply>;

/** One handler per client command; params arrive checked against the method's schema (protocol/params.ts). */
export const HANDLERS: { readonly [M in Method]: Handler<M> } = {
  connect: (s, p) => s.connect(p),
  subscribe,
  unsubscribe: async (s, p) => {
    s.subs.remove(p.channel);
    return { result: {} };
  },
  publish,
  presence: async (s, p) => {
    checkPresence(s, p.channel);
    const entries = await s.ctx.engine.presence.get(p.channel);
    const presence: Record<string, unknown> = {};
    for (const [client, info] of entries) presence[client] = s.codec.clientInfo(info);
    return { result: { presence } };
  },
  presence_stats: async (s, p) => {
    checkPresence(s, p.channel);
    const st = await s.ctx.engine.presence.stats(p.channel);
    return { result: { num_clients: st.numClients, num_users: st.numUsers } };
  },
  history,
  rpc: async (s, p) => {
    const method = p.method ?? '';
    const builtin = s.ctx.builtinRpc?.({ id: s.id, user: s.user, subscribedTo: (ch) => s.subs.has(ch) }, method, p.data);
    if (builtin) return { result: { data: s.codec.data(JSON.stringify(await builtin)) } };
    const hook = s.ctx.hooks.onRpc;
    if (!hook) throw new ReplyError(Errors.notAvailable);
    s.ctx.payloads.checkRpc(method, p.data);
    const data = await hook({ ...s.hookContext(), method, data: p.data as Json | undefined });
    return { result: { data: data === undefined ? undefined : s.codec.data(JSON.stringify(data)) } };
  },
  send: async (s, p) => {
    const hook = s.ctx.hooks.onMessage;
    if (hook) await hook({ ...s.hookContext(), data: p.data as Json | undefined });
    return { result: undefined };
  },
  refresh: async (s, p) => {
    const creds = await refreshCredentials(s.ctx, s, s.user, p.token);
    return { result: { client: s.id, version: s.ctx.node.version, ...s.refreshed(creds) } };
  },
  sub_refresh: async (s, p) => {
    const { ctx } = s;
    if (!s.subs.has(p.channel)) throw new ReplyError(Errors.permissionDenied);
    const payload = await verifyToken(ctx, ctx.credentials.subTokens, p.token, 'sub_refresh', s);
    const claims = subClaims(payload, s.user, p.channel, ctx.options.token.clock_skew);
    if (!s.subs.refreshed(p.channel, claims.expireAt)) throw new ReplyError(Errors.permissionDenied);
    const ttl = claims.expireAt > 0 ? Math.max(1, Math.floor((claims.expireAt - Date.now()) / 1000)) : undefined;
    return { result: { expires: ttl !== undefined || undefined, ttl } };
  },
};

async function subscribe(s: CommandSession, p: ParamsOf<'subscribe'>): Promise<Reply> {
  const { ctx } = s;
  const channel = p.channel;
  const resolved = ctx.channels.resolve(channel);
  if (s.subs.has(channel)) throw new ReplyError(Errors.alreadySubscribed);
  if (ctx.options.channel_limit > 0 && s.subs.size >= ctx.options.channel_limit) {
    ctx.metrics.limits.labels('channel_limit').inc();
    throw new ReplyError(Errors.limitExceeded);
  }
  const ns = resolved.options;
  if (isMapNamespace(ns) || (p.type ?? 0) !== 0) return mapSubscribe(s, p, resolved, () => authorize(s, p, resolved));
  const { chanInfo, data, expireAt, override, serverSideRefresh } = await authorize(s, p, resolved);
  if (!s.live) throw new ReplyError(Errors.internal);
  if (s.subs.has(channel)) throw new ReplyError(Errors.alreadySubscribed);
  const recover = p.recover ?? false;
  const { result, activate } = await s.subs.subscribe(channel, resolved, {
    recover,
    since: recover ? parsePosition(p) : undefined,
    recoverable: p.recoverable ?? false,
    positioned: p.positioned ?? false,
    joinLeave: p.join_leave ?? false,
    chanInfo,
    data,
    expireAt,
    override,
    serverSideRefresh,
    delta: p.delta ?? undefined,
    tagsFilter: p.tf,
    compaction: ((p.flag ?? 0) & FLAG_CHANNEL_COMPACTION) !== 0,
  });
  return { result, after: activate, lane: replyLane(laneOf(ns.priority)) };
}

/** Who may subscribe and with what: the subscription token's claims, the onSubscribe hook, or the namespace's rules. */
async function authorize(
  s: CommandSession,
  p: ParamsOf<'subscribe'>,
  resolved: ResolvedChannel,
): Promise<MapAuth & { override?: Readonly<Record<string, boolean>> }> {
  const { ctx } = s;
  const channel = p.channel;
  const ns = resolved.options;
  let chanInfo: RawJSON | undefined;
  let data: RawJSON | undefined;
  let expireAt = 0;
  let override: Readonly<Record<string, boolean>> | undefined;
  let serverSideRefresh = false;
  // client.insecure: every channel is open, private and user-limited ones too (a token given is still checked).
  const open = ctx.options.insecure;
  if (p.token) {
    const payload = await verifyToken(ctx, ctx.credentials.subTokens, p.token, 'subscribe', s);
    const claims = subClaims(payload, s.user, channel, ctx.options.token.clock_skew);
    chanInfo = claims.info;
    expireAt = claims.expireAt;
    override = claims.override;
  } else if (resolved.private && !open) {
    throw new ReplyError(Errors.permissionDenied);
  } else if (resolved.allowedUsers && !open) {
    if (!ns.allow_user_limited_channels || s.user === '' || !resolved.allowedUsers.includes(s.user)) {
      throw new ReplyError(Errors.permissionDenied);
    }
  } else {
    const hook = ctx.hooks.onSubscribe
      ? await ctx.hooks.onSubscribe({ ...s.hookContext(), channel, data: p.data as Json | undefined })
      : undefined;
    if (hook) {
      chanInfo = hook.info !== undefined ? JSON.stringify(hook.info) : undefined;
      data = hook.data !== undefined ? JSON.stringify(hook.data) : undefined;
      expireAt = (hook.expireAt ?? 0) * 1000;
      serverSideRefresh = ctx.hooks.onSubRefresh !== undefined;
    } else if (!open && !(s.user === '' ? ns.allow_subscribe_for_anonymous : ns.allow_subscribe_for_client)) {
      throw new ReplyError(Errors.permissionDenied);
    }
  }
  return { chanInfo, data, expireAt, override, serverSideRefresh };
}

async function publish(s: CommandSession, p: ParamsOf<'publish'>): Promise<Reply> {
  const { ctx } = s;
  const channel = p.channel;
  const ns = ctx.channels.resolve(channel).options;
  const now = Date.now();
  s.guard.publication(now);
  if (s.user !== '' && !(await ctx.limits.userPublication(s.user, now))) s.guard.refuse('user_publications_per_second');
  if (!ctx.limits.namespacePublication(ns, now)) s.guard.refuse('namespace_publications_per_second');
  if (isMapNamespace(ns) || (p.type ?? 0) !== 0) return mapClientPublish(s, p, ns);
  if (p.data === undefined) throw new ReplyError(Errors.badRequest);
  const subscribed = s.subs.has(channel);
  const nsAllows =
    ctx.options.insecure ||
    (s.user === '' ? ns.allow_publish_for_anonymous : ns.allow_publish_for_client) ||
    (ns.allow_publish_for_subscriber && subscribed);
  ctx.payloads.checkPublication(ns, p.data);
  if (ctx.fence) await ctx.fence(channel, ns, p.data);
  let data = rawData(p.data)!;
  let skipHistory = false;
  if (ctx.hooks.onPublish) {
    const r = await ctx.hooks.onPublish({ ...s.hookContext(), channel, data: p.data as Json });
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
    info: s.subs.infoIn(channel) ?? s.info,
    delta: ns.delta_publish || undefined,
    conflationKey: conflationKeyOf(undefined, ns.conflation_key, data),
  });
  ctx.metrics.publications.labels('client').inc();
  return { result: {} };
}

async function history(s: CommandSession, p: ParamsOf<'history'>): Promise<Reply> {
  const { ctx } = s;
  const channel = p.channel;
  const ns = ctx.channels.resolve(channel).options;
  if (!(ns.history_size > 0 && ns.history_ttl > 0)) throw new ReplyError(Errors.notAvailable);
  checkAccess(s, channel, ns.allow_history_for_subscriber, ns.allow_history_for_client, ns.allow_history_for_anonymous);
  const max = ctx.options.history_max_publication_limit;
  let limit = p.limit ?? 0;
  if (limit < 0 || limit > max) limit = max;
  const since = p.since ? parsePosition(p.since) : undefined;
  const h = await ctx.engine.history.read(channel, {
    limit,
    since,
    reverse: p.reverse ?? false,
    historyTtlMs: ns.history_ttl,
    historyMetaTtlMs: ns.history_meta_ttl,
  });
  if (since && since.epoch !== h.position.epoch) throw new ReplyError(Errors.unrecoverablePosition);
  return { result: { publications: s.codec.publications(h.publications), epoch: h.position.epoch, offset: h.position.offset } };
}

function checkPresence(s: CommandSession, channel: string): void {
  const ns: NamespaceConfig = s.ctx.channels.resolve(channel).options;
  if (!ns.presence) throw new ReplyError(Errors.notAvailable);
  checkAccess(s, channel, ns.allow_presence_for_subscriber, ns.allow_presence_for_client, ns.allow_presence_for_anonymous);
}

function checkAccess(s: CommandSession, channel: string, forSubscriber: boolean, forClient: boolean, forAnonymous: boolean): void {
  if (s.ctx.options.insecure) return;
  if (forSubscriber && s.subs.has(channel)) return;
  if (s.user === '' ? forAnonymous : forClient) return;
  throw new ReplyError(Errors.permissionDenied);
}
