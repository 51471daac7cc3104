import type { ResolvedChannel } from '../auth/channels.js';
import type { NamespaceConfig } from '../config/load.js';
import { EngineUnavailableError } from '../engine/errors.js';
import { laneOf, replyLane } from '../hub/delivery.js';
import { Subscriber, recoveredForms, type HubClient } from '../hub/hub.js';
import { DisconnectError, Errors, ReplyError, Unsubscribes } from '../protocol/codes.js';
import { FOSSIL } from '../protocol/delta.js';
import { compileTagsFilter, matchTags, TagsFilterError, type CompiledFilter } from '../protocol/tags-filter.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../protocol/types.js';
import type { SessionContext } from './context.js';
import { ExpiryTimer } from './expiry.js';
import type { ClientContext } from './hooks.js';
import { attempt } from './hook-call.js';

/** How a channel is subscribed: what the client asked for and what its credentials grant. */
export interface SubscribeRequest {
  readonly recover?: boolean;
  readonly since?: StreamPosition;
  readonly recoverable?: boolean;
  readonly positioned?: boolean;
  readonly joinLeave?: boolean;
  readonly chanInfo?: RawJSON;
  readonly data?: RawJSON;
  /** Unix ms when the subscription expires; 0 or absent = never. */
  readonly expireAt?: number;
  readonly override?: Readonly<Record<string, boolean>>;
  /** The backend refreshes the subscription (`onSubRefresh`), not the client. */
  readonly serverSideRefresh?: boolean;
  /** Delta compression the client asks for ('fossil'). */
  readonly delta?: string;
  /** The client's tags filter tree, unchecked. */
  readonly tagsFilter?: unknown;
  /** The client asks for channel compaction (subscription flag 1). */
  readonly compaction?: boolean;
}

/** Subscription flag bit of channel compaction (the SDK sets it on every subscribe). */
export const FLAG_CHANNEL_COMPACTION = 1;

/**
 * The Protobuf build of the SDK (5.7.4) compares a push's int64 `id` with
 * the subscribe reply's by identity (two Long objects, never equal), so a
 * Protobuf subscription would drop every push routed by id: compaction is
 * offered to JSON connections only.
 */
const COMPACTION_ENCODINGS = new Set(['json']);

/** The connection that owns the subscriptions. */
export interface SubscriptionOwner extends HubClient {
  readonly info: ClientInfo;
  hookContext(): ClientContext;
}

interface Subscription {
  readonly subscriber: Subscriber;
  readonly options: NamespaceConfig;
  readonly info: ClientInfo;
  readonly presence: boolean;
  readonly joinLeave: boolean;
  /** The backend refreshes it (`onSubRefresh`), not the client. */
  readonly serverSide: boolean;
  /** Made when the subscription first gets a deadline: most never expire, and a timer with its callback costs ~200 bytes. */
  expiry: ExpiryTimer | undefined;
  /** Runs when the subscription ends (a map subscription's cleanup). */
  readonly onRemove?: () => void;
}

/** A subscribe that spans several commands (a map subscription's state pages) and is not a subscription yet. */
export interface PendingSubscribe {
  /** Gives up: the subscriber leaves the hub. */
  drop(): void;
}

export interface Subscribed {
  readonly result: Record<string, unknown>;
  /** Must run right after the result is queued, so buffered publications follow the reply in order. */
  readonly activate: () => void;
}

type Ctx = Pick<SessionContext, 'subscribers' | 'engine' | 'options' | 'hooks' | 'metrics' | 'log' | 'limits' | 'maps'>;

/**
 * One connection's subscriptions: subscribing (hub entry, recovery from
 * history with live publications buffered and merged, presence, join),
 * expiry and removal (hub, presence, leave). Whatever fails half-way is
 * undone: a subscription that does not exist leaves no presence entry.
 */
export class SubscriptionSet {
  private readonly subs = new Map<string, Subscription>();
  /** Subscribes in progress over several commands, by channel (dropped with the channel's unsubscribe and on close). */
  readonly pending = new Map<string, PendingSubscribe>();

  constructor(
    private readonly ctx: Ctx,
    private readonly owner: SubscriptionOwner,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  has(channel: string): boolean {
    return this.subs.has(channel);
  }

  channels(): string[] {
    return [...this.subs.keys()];
  }

  /** The writer lane of a push about a subscribed channel (`replyLane` of the channel's; 0 when not subscribed). */
  laneOf(channel: string): number {
    const sub = this.subs.get(channel)?.subscriber;
    return sub ? replyLane(sub.lane) : 0;
  }

  /** The info a publication of this connection into the channel carries (its channel info when subscribed). */
  infoIn(channel: string): ClientInfo | undefined {
    return this.subs.get(channel)?.info;
  }

  /** Checks what the client asked of delta, tags filter and compaction; the bad request is counted and refused. */
  features(ns: NamespaceConfig, req: SubscribeRequest): { delta: boolean; filter: CompiledFilter | null; compact: boolean } {
    const { ctx, owner } = this;
    const refuse = (label: string, message: string, code: number = Errors.badRequest.code): never => {
      ctx.metrics.badInput.labels(label).inc();
      throw new ReplyError({ code, message });
    };
    const wantsDelta = req.delta !== undefined && req.delta !== '';
    if (wantsDelta && req.delta !== FOSSIL) refuse('delta', 'bad request: unknown delta type');
    let filter: CompiledFilter | null = null;
    if (req.tagsFilter !== undefined && req.tagsFilter !== null) {
      if (!ns.allow_tags_filter) refuse('tags_filter', Errors.permissionDenied.message, Errors.permissionDenied.code);
      if (wantsDelta) refuse('tags_filter', 'bad request: tags filter and delta cannot be used together');
      try {
        filter = compileTagsFilter(req.tagsFilter);
      } catch (e) {
        if (!(e instanceof TagsFilterError)) throw e;
        refuse('tags_filter', 'bad request: tags filter: ' + e.message);
      }
    }
    const delta = wantsDelta && (ns.allowed_delta_types ?? []).includes(FOSSIL);
    const compact = !!req.compaction && ns.allow_channel_compaction && COMPACTION_ENCODINGS.has(owner.codec.encoding);
    return { delta, filter, compact };
  }

  async subscribe(channel: string, resolved: ResolvedChannel, req: SubscribeRequest): Promise<Subscribed> {
    const { ctx, owner } = this;
    const ns = resolved.options;
    const features = this.features(ns, req);
    const ov = req.override ?? {};
    const historyOn = ns.history_size > 0 && ns.history_ttl > 0;
    const recoverable = (historyOn && (ov.force_recovery ?? ns.force_recovery)) || (historyOn && ns.allow_recovery && !!req.recoverable);
    const positioned =
      historyOn && (recoverable || (ov.force_positioning ?? ns.force_positioning) || (ns.allow_positioning && !!req.positioned));
    const presence = ov.presence ?? ns.presence;
    const joinLeaveOn = ov.join_leave ?? ns.join_leave;
    const pushJoinLeave = joinLeaveOn && (!!req.joinLeave || (ov.force_push_join_leave ?? ns.force_push_join_leave));

    const sub = new Subscriber(owner, channel);
    sub.positioned = positioned;
    sub.joinLeave = pushJoinLeave;
    sub.lane = laneOf(ns.priority);
    sub.delta = features.delta;
    sub.filter = features.filter;
    sub.compact = features.compact;
    // a delta subscription must see its reply before any publication: the SDK learns there that deltas follow
    if (positioned || sub.delta) sub.buffer = [];
    // The connection's info as it is now when no channel info is added (the session replaces its info, never changes it);
    // written out, not spread: V8 gives every `{ ...info, chanInfo }` a hidden class of its own (~300 bytes a subscription).
    const oi = owner.info;
    const info: ClientInfo =
      req.chanInfo === undefined ? oi : { user: oi.user, client: oi.client, connInfo: oi.connInfo, chanInfo: req.chanInfo };
    const serverSide = !!req.serverSideRefresh;
    const state: Subscription = {
      subscriber: sub,
      options: ns,
      info,
      presence,
      joinLeave: joinLeaveOn,
      serverSide,
      expiry: undefined,
    };
    this.subs.set(channel, state);
    const result: Record<string, unknown> = {};
    let presenceAdded = false;
    try {
      await ctx.subscribers.add(sub);
      if (positioned) await this.position(channel, ns, sub, req, recoverable, result);
      // Unsubscribed or closed while we awaited: add nothing that nobody would remove.
      if (this.subs.get(channel) !== state) throw new ReplyError(Errors.internal);
      if (presence) {
        presenceAdded = true;
        await ctx.engine.presence.add(channel, info);
        if (this.subs.get(channel) !== state) throw new ReplyError(Errors.internal);
      }
      if (joinLeaveOn) await ctx.engine.broker.publishJoin(channel, info);
      ctx.maps?.presence.joined(channel, ns, info);
    } catch (e) {
      if (this.subs.get(channel) === state) this.subs.delete(channel);
      ctx.subscribers.remove(sub);
      // Once the add was sent it is undone, whether it succeeded or not (a remove of nothing is harmless).
      if (presenceAdded) this.cleanup(ctx.engine.presence.remove(channel, owner.id, owner.user), channel);
      if (e instanceof ReplyError || e instanceof DisconnectError || e instanceof EngineUnavailableError) throw e;
      ctx.log.error({ client: owner.id, channel, err: e instanceof Error ? e.message : String(e) }, 'subscribe failed');
      throw new ReplyError(Errors.internal);
    }
    if (req.expireAt && req.expireAt > 0) {
      this.setExpiry(state, req.expireAt, serverSide);
      if (!serverSide) {
        result.expires = true;
        result.ttl = Math.max(1, Math.floor((req.expireAt - Date.now()) / 1000));
      }
    }
    if (req.data !== undefined) result.data = owner.codec.data(req.data);
    if (sub.delta) result.delta = true;
    if (sub.id > 0) result.id = sub.id;
    return { result, activate: () => mergeBuffered(sub) };
  }

  /** Reads the stream position (and the missed publications when recovering) into the result. */
  private async position(
    channel: string,
    ns: NamespaceConfig,
    sub: Subscriber,
    req: SubscribeRequest,
    recoverable: boolean,
    result: Record<string, unknown>,
  ): Promise<void> {
    const { ctx } = this;
    const histOpts = { historyTtlMs: ns.history_ttl, historyMetaTtlMs: ns.history_meta_ttl };
    let pubs: Publication[] = [];
    let recovered = false;
    let position: StreamPosition;
    if (req.recover && req.since && recoverable) {
      const limit = ctx.options.recovery_max_publication_limit;
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
    // the position covers what the tags filter left out; the client gets only what matches
    if (sub.filter !== null) pubs = pubs.filter((p) => matchTags(sub.filter!.filter, p.tags));
    result.recoverable = recoverable || undefined;
    result.positioned = true;
    result.epoch = position.epoch;
    result.offset = position.offset;
    if (req.recover) {
      result.was_recovering = true;
      result.recovered = recovered;
      if (pubs.length > 0 && sub.delta) {
        // first whole, then each a delta against the one before; live ones continue from the last
        const codec = this.owner.codec;
        const forms = recoveredForms(codec, pubs);
        result.publications = pubs.map((p, i) => codec.publicationAs(p, forms[i]!));
        const last = pubs[pubs.length - 1]!;
        sub.base = last;
        if (last.offset === position.offset) sub.seedChannelBase(last);
      } else if (pubs.length > 0) result.publications = this.owner.codec.publications(pubs);
    }
  }

  /**
   * A subscription whose subscriber the caller already added to the registry
   * (a map subscription going live); returns the expiry fields of its reply.
   */
  adopt(
    channel: string,
    sub: Subscriber,
    options: NamespaceConfig,
    info: ClientInfo,
    expireAt: number,
    serverSide: boolean,
    onRemove?: () => void,
  ): { expires?: boolean; ttl?: number } {
    const state: Subscription = {
      subscriber: sub,
      options,
      info,
      presence: false,
      joinLeave: false,
      serverSide,
      expiry: undefined,
      onRemove,
    };
    this.subs.set(channel, state);
    this.ctx.maps?.presence.joined(channel, options, info);
    if (expireAt > 0) {
      this.setExpiry(state, expireAt, serverSide);
      if (!serverSide) return { expires: true, ttl: Math.max(1, Math.floor((expireAt - Date.now()) / 1000)) };
    }
    return {};
  }

  /** Drops a subscription on this node: hub, expiry, presence, leave. */
  remove(channel: string): boolean {
    this.pending.get(channel)?.drop();
    const state = this.subs.get(channel);
    if (!state) return false;
    this.subs.delete(channel);
    state.expiry?.clear();
    const { ctx, owner } = this;
    ctx.subscribers.remove(state.subscriber);
    if (state.presence) this.cleanup(ctx.engine.presence.remove(channel, owner.id, owner.user), channel);
    if (state.joinLeave) this.cleanup(ctx.engine.broker.publishLeave(channel, state.info), channel);
    ctx.maps?.presence.left(channel, state.options, state.info);
    state.onRemove?.();
    return true;
  }

  removeAll(): void {
    for (const p of [...this.pending.values()]) p.drop();
    for (const channel of [...this.subs.keys()]) this.remove(channel);
  }

  /** A client's sub_refresh: the new expiry (0 = never); false when not subscribed. */
  refreshed(channel: string, expireAt: number): boolean {
    const state = this.subs.get(channel);
    if (!state) return false;
    if (expireAt > 0) this.setExpiry(state, expireAt, false);
    else state.expiry?.clear();
    return true;
  }

  private setExpiry(state: Subscription, expireAt: number, serverSide: boolean): void {
    // A client gets expired_close_delay to send its sub_refresh; the backend is asked right away.
    this.timerOf(state).set(expireAt + (serverSide ? 0 : this.ctx.options.expired_close_delay));
  }

  private timerOf(state: Subscription): ExpiryTimer {
    return (state.expiry ??= new ExpiryTimer(() => this.expired(state.subscriber.channel, state)));
  }

  private expired(channel: string, state: Subscription): void {
    if (this.subs.get(channel) !== state) return;
    const hook = this.ctx.hooks.onSubRefresh;
    if (!state.serverSide || !hook) return this.expire(channel, state);
    attempt(() => hook({ ...this.owner.hookContext(), channel })).then(
      (r) => {
        if (this.subs.get(channel) !== state) return;
        if (!r || r.expired || !r.expireAt) return this.expire(channel, state);
        this.setExpiry(state, r.expireAt * 1000, true);
      },
      (e: unknown) => {
        if (this.subs.get(channel) !== state) return;
        // A failing backend must not cut everyone off at once: retry shortly, and say so once per interval.
        if (this.ctx.limits.logOnce.shouldLog('sub_refresh_hook')) {
          this.ctx.log.warn({ client: this.owner.id, channel, err: String(e) }, 'sub refresh hook failed; retrying');
        }
        this.timerOf(state).set(Date.now() + 1000);
      },
    );
  }

  private expire(channel: string, state: Subscription): void {
    if (this.subs.get(channel) !== state) return;
    this.remove(channel);
    const { codec, writer } = this.owner;
    writer.enqueue(
      codec.unsubscribePush(channel, Unsubscribes.expired.code, Unsubscribes.expired.reason),
      replyLane(state.subscriber.lane),
    );
  }

  private cleanup(p: Promise<void>, channel: string): void {
    p.catch((err: unknown) => this.ctx.log.warn({ client: this.owner.id, channel, err: String(err) }, 'unsubscribe cleanup failed'));
  }
}

/**
 * Ends a subscription's recovery: live publications buffered while history
 * was read go out after it, skipping what the recovered set (or the reported
 * position) already covers; a gap is the subscriber's insufficient state.
 */
export function mergeBuffered(sub: Subscriber, _codec?: SubscriptionOwner['codec']): void {
  const buffered = sub.buffer;
  if (buffered === null) return;
  sub.buffer = null;
  for (const pub of buffered) {
    if (pub.offset > 0 && pub.offset <= sub.offset) continue;
    if (sub.filter !== null && !matchTags(sub.filter.filter, pub.tags)) {
      sub.skip(pub);
      continue;
    }
    if (!sub.deliver(pub)) break;
  }
}

/** Recovery succeeded when the epoch matches and nothing between `since` and the top is missing. */
function isRecovered(since: StreamPosition, pubs: readonly Publication[], top: StreamPosition, limit: number): boolean {
  if (since.epoch !== top.epoch) return false;
  if (pubs.length > limit) return false;
  if (pubs.length === 0) return since.offset === top.offset;
  return pubs[0]!.offset === since.offset + 1 && pubs[pubs.length - 1]!.offset === top.offset;
}
