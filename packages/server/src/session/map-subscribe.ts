import type { ResolvedChannel } from '../auth/channels.js';
import type { NamespaceConfig } from '../config/load.js';
import { laneOf, replyLane } from '../hub/delivery.js';
import { Subscriber } from '../hub/hub.js';
import { channelOptions, isAMap, isStreamless, liveLimit, notAMap, pageSize, WIRE_TYPE } from '../maps/options.js';
import type { MapService } from '../maps/service.js';
import { Errors, ReplyError } from '../protocol/codes.js';
import { parsePosition, rawData, type ParamsOf } from '../protocol/params.js';
import { matchTags } from '../protocol/tags-filter.js';
import type { ClientInfo, Publication, RawJSON } from '../protocol/types.js';
import type { SessionContext } from './context.js';
import {
  FLAG_CHANNEL_COMPACTION,
  mergeBuffered,
  type PendingSubscribe,
  type SubscriptionOwner,
  type SubscriptionSet,
} from './subscriptions.js';

/** The connection as the map commands see it (handlers.ts's CommandSession fits). */
interface CommandSession extends SubscriptionOwner {
  readonly ctx: SessionContext;
  readonly subs: SubscriptionSet;
  /** Still connected (the socket may close while a handler awaits). */
  readonly live: boolean;
}

/** A command's reply (handlers.ts's Reply). */
interface Reply {
  readonly result: unknown;
  readonly after?: () => void;
  readonly lane?: number;
}

/*
 * Map subscriptions (the SDK's newMapSubscription), server side. The SDK
 * walks phases with one subscribe command each:
 *   state (phase 2): pages of the current entries, `cursor` to the next;
 *   stream (phase 1): catch-up from a position (a positioned map's recovery);
 *   live (phase 0 in the reply): the server decides when it is live.
 * No gap: the subscriber enters the hub (buffering) before the first state
 * page is read, so every mutation after that page's position is either
 * buffered or read; going live sends the buffered ones after the last page
 * (the SDK applies them by key over the state, last one wins) and the rest
 * follow live. A recovery reads the stream the same way (registered first,
 * then read, then merged by offset), as a stream subscription recovers.
 */

/** What the subscribe's authorization granted (token claims or the onSubscribe hook). */
export interface MapAuth {
  readonly chanInfo?: RawJSON;
  readonly data?: RawJSON;
  readonly expireAt: number;
  readonly serverSideRefresh: boolean;
}

/** Most live publications a subscriber may buffer while it pages the state, in pages (beyond: it starts over). */
const BUFFER_PAGES = 10;

/** A map subscribe between its first state page and going live. */
class PendingMap implements PendingSubscribe {
  epoch = '';
  /** The position of the first state page: buffered publications above it go out when live. */
  offset = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly s: CommandSession,
    readonly channel: string,
    readonly sub: Subscriber,
    readonly auth: MapAuth,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.drop(), Math.max(1, timeoutMs));
    this.timer.unref();
  }

  get live(): boolean {
    return this.s.subs.pending.get(this.channel) === this;
  }

  drop(): void {
    clearTimeout(this.timer);
    if (this.s.subs.pending.get(this.channel) === this) this.s.subs.pending.delete(this.channel);
    this.s.ctx.subscribers.remove(this.sub);
  }

  /** Leaves `pending` without leaving the hub (it is becoming a subscription). */
  settle(): void {
    clearTimeout(this.timer);
    if (this.s.subs.pending.get(this.channel) === this) this.s.subs.pending.delete(this.channel);
  }
}

function unrecoverable(): ReplyError {
  return new ReplyError(Errors.unrecoverablePosition);
}

function mapsOf(s: CommandSession): MapService {
  const m = s.ctx.maps;
  if (!m) throw new ReplyError(Errors.notAvailable);
  return m.service;
}

/** A subscribe to a map namespace's channel, or a map subscribe to any channel (the type must match the namespace). */
export async function mapSubscribe(
  s: CommandSession,
  p: ParamsOf<'subscribe'>,
  resolved: ResolvedChannel,
  authorize: () => Promise<MapAuth>,
): Promise<Reply> {
  const ns = resolved.options;
  const type = p.type ?? 0;
  const want = WIRE_TYPE[ns.subscription_type];
  if (type !== want) {
    s.ctx.metrics.badInput.labels('map_channel_type').inc();
    if (want === 0) throw notAMap();
    if (type === 0) throw isAMap();
    throw new ReplyError({
      code: Errors.badRequest.code,
      message: `bad request: the channel is ${ns.subscription_type}, subscribe with type ${want}`,
    });
  }
  mapsOf(s);
  const phase = p.phase ?? 0;
  if (phase === 2) return statePage(s, p, ns, authorize);
  if (phase === 1) return streamPage(s, p, ns, authorize);
  s.ctx.metrics.badInput.labels('map_phase').inc();
  throw new ReplyError({ code: Errors.badRequest.code, message: 'bad request: a map subscribe starts with phase 2 (state) or 1 (stream)' });
}

/** A subscriber in the hub, buffering, with the features the client asked for. */
async function enter(
  s: CommandSession,
  p: ParamsOf<'subscribe'>,
  ns: NamespaceConfig,
  auth: MapAuth,
  channel: string,
): Promise<PendingMap> {
  const features = s.subs.features(ns, {
    delta: p.delta ?? undefined,
    tagsFilter: p.tf,
    compaction: ((p.flag ?? 0) & FLAG_CHANNEL_COMPACTION) !== 0,
  });
  const sub = new Subscriber(s, channel);
  sub.positioned = true;
  sub.lane = laneOf(ns.priority);
  sub.delta = features.delta;
  sub.filter = features.filter;
  sub.compact = features.compact;
  if (sub.delta) sub.keyBase = new Map();
  sub.buffer = [];
  const pend = new PendingMap(s, channel, sub, auth, ns.map.subscribe_catch_up_timeout);
  s.subs.pending.get(channel)?.drop();
  s.subs.pending.set(channel, pend);
  try {
    await s.ctx.subscribers.add(sub);
  } catch (e) {
    pend.drop();
    throw e;
  }
  if (!pend.live || !s.live) {
    pend.drop();
    throw new ReplyError(Errors.internal);
  }
  return pend;
}

async function statePage(
  s: CommandSession,
  p: ParamsOf<'subscribe'>,
  ns: NamespaceConfig,
  authorize: () => Promise<MapAuth>,
): Promise<Reply> {
  const channel = p.channel;
  const store = mapsOf(s).store;
  const cursor = p.cursor ?? '';
  const limit = pageSize(ns, p.limit);
  const pend = s.subs.pending.get(channel);
  if (cursor === '') {
    // the first page of a flow (a repeated first page starts over)
    pend?.drop();
    const auth = await authorize();
    const entered = await enter(s, p, ns, auth, channel);
    const page = await store.readState(channel, { limit, metaTtlMs: ns.map.meta_ttl });
    if (!entered.live) throw new ReplyError(Errors.internal);
    entered.epoch = page.position.epoch;
    entered.offset = page.position.offset;
    entered.sub.offset = page.position.offset;
    if (page.cursor === '') return goLive(s, ns, entered, page.entries, []);
    return {
      result: { phase: 2, epoch: entered.epoch, offset: entered.offset, cursor: page.cursor, state: stateOf(s, entered.sub, page.entries) },
    };
  }
  if (!(pend instanceof PendingMap) || (p.epoch ?? '') !== pend.epoch) {
    pend?.drop();
    throw unrecoverable();
  }
  if (pend.sub.buffer !== null && pend.sub.buffer.length > BUFFER_PAGES * Math.max(limit, ns.map.max_page_size)) {
    // too much changed while the client paged: start over rather than hold it all
    pend.drop();
    throw unrecoverable();
  }
  const page = await store.readState(channel, { cursor, limit, metaTtlMs: ns.map.meta_ttl });
  if (!pend.live) throw unrecoverable();
  if (page.position.epoch !== pend.epoch) {
    pend.drop();
    throw unrecoverable();
  }
  if (page.cursor === '') return goLive(s, ns, pend, page.entries, []);
  return { result: { phase: 2, epoch: pend.epoch, offset: pend.offset, cursor: page.cursor, state: stateOf(s, pend.sub, page.entries) } };
}

async function streamPage(
  s: CommandSession,
  p: ParamsOf<'subscribe'>,
  ns: NamespaceConfig,
  authorize: () => Promise<MapAuth>,
): Promise<Reply> {
  const channel = p.channel;
  const { ctx } = s;
  const store = mapsOf(s).store;
  s.subs.pending.get(channel)?.drop();
  const since = parsePosition(p);
  const recovering = p.recover ?? false;
  if (isStreamless(ns)) {
    if (recovering) ctx.metrics.recoveries.labels('false').inc();
    throw unrecoverable();
  }
  const auth = await authorize();
  const pend = await enter(s, p, ns, auth, channel);
  const max = liveLimit(ns);
  const opts = channelOptions(ns);
  const st = await store.readStream(channel, { since, limit: max + 1, streamTtlMs: opts.streamTtlMs, metaTtlMs: opts.metaTtlMs });
  if (!pend.live) throw new ReplyError(Errors.internal);
  if (!st.recoverable) {
    pend.drop();
    if (recovering) ctx.metrics.recoveries.labels('false').inc();
    throw unrecoverable();
  }
  if (st.publications.length > max) {
    // too far behind to go live in one step: a page, and the client asks again from its end
    pend.drop();
    const page = st.publications.slice(0, pageSize(ns, p.limit));
    const last = page[page.length - 1]!;
    return { result: { phase: 1, epoch: st.position.epoch, offset: last.offset, publications: pubsOf(s, pend.sub, page) } };
  }
  pend.epoch = st.position.epoch;
  pend.offset = since.offset;
  if (recovering) ctx.metrics.recoveries.labels('true').inc();
  return goLive(s, ns, pend, null, st.publications, recovering);
}

/**
 * The reply that makes the subscription live: the last state page (from a
 * state flow), the stream or buffered publications after the flow's position,
 * and the subscription in place; publications still buffered follow it.
 */
function goLive(
  s: CommandSession,
  ns: NamespaceConfig,
  pend: PendingMap,
  entries: Publication[] | null,
  read: Publication[],
  recovering = false,
): Reply {
  const sub = pend.sub;
  pend.settle();
  // from a state flow: every mutation after the first page's position that reached the hub
  const buffered = entries !== null ? sub.buffer!.splice(0) : [];
  let pubs = entries !== null ? buffered.filter((x) => x.offset > pend.offset) : read;
  sub.offset = pubs.length > 0 ? pubs[pubs.length - 1]!.offset : pend.offset;
  if (sub.filter !== null) pubs = pubs.filter((x) => matchTags(sub.filter!.filter, x.tags));
  const result: Record<string, unknown> = {
    epoch: pend.epoch,
    offset: sub.offset,
    positioned: true,
    recoverable: !isStreamless(ns) || undefined,
  };
  if (entries !== null) result.state = stateOf(s, sub, entries);
  if (pubs.length > 0) result.publications = pubsOf(s, sub, pubs);
  if (recovering) {
    result.was_recovering = true;
    result.recovered = true;
  }
  const channel = sub.channel;
  const oi = s.info;
  const auth = pend.auth;
  const info: ClientInfo =
    auth.chanInfo === undefined ? oi : { user: oi.user, client: oi.client, connInfo: oi.connInfo, chanInfo: auth.chanInfo };
  const service = mapsOf(s);
  const onRemove = ns.map.remove_client_on_unsubscribe
    ? () => {
        service
          .remove(channel, s.id, {}, ns)
          .catch((e: unknown) => s.ctx.log.warn({ channel, err: String(e) }, 'map entry removal failed'));
      }
    : undefined;
  Object.assign(result, s.subs.adopt(channel, sub, ns, info, auth.expireAt, auth.serverSideRefresh, onRemove));
  if (auth.data !== undefined) result.data = s.codec.data(auth.data);
  if (sub.delta) result.delta = true;
  if (sub.id > 0) result.id = sub.id;
  return { result, after: () => mergeBuffered(sub), lane: replyLane(sub.lane) };
}

/** State entries as the client gets them: those its tags filter keeps; whole payloads it seeds its per-key deltas with. */
function stateOf(s: CommandSession, sub: Subscriber, entries: Publication[]): unknown {
  const kept = sub.filter !== null ? entries.filter((e) => matchTags(sub.filter!.filter, e.tags)) : entries;
  return pubsOf(s, sub, kept);
}

function pubsOf(s: CommandSession, sub: Subscriber, pubs: Publication[]): unknown {
  if (!sub.delta) return s.codec.publications(pubs);
  const kb = sub.keyBase!;
  return pubs.map((x) => {
    if (x.removed) kb.delete(x.key!);
    else kb.set(x.key!, x.data);
    return s.codec.publicationAs(x, x.removed ? 'plain' : 'full');
  });
}

/** A client's map publish or remove (publish command with type 1). */
export async function mapClientPublish(s: CommandSession, p: ParamsOf<'publish'>, ns: NamespaceConfig): Promise<Reply> {
  const { ctx } = s;
  const channel = p.channel;
  const service = mapsOf(s);
  if ((p.type ?? 0) !== 1) {
    ctx.metrics.badInput.labels('map_channel_type').inc();
    throw isAMap();
  }
  if (ns.subscription_type !== 'map') {
    ctx.metrics.badInput.labels('map_channel_type').inc();
    throw ns.subscription_type === 'stream' ? notAMap() : new ReplyError(Errors.permissionDenied);
  }
  const removing = p.removed ?? false;
  const m = ns.map;
  const subscribed = s.subs.has(channel);
  const allowed =
    ctx.options.insecure ||
    (removing
      ? (s.user === '' ? m.allow_remove_for_anonymous : m.allow_remove_for_client) || (m.allow_remove_for_subscriber && subscribed)
      : (s.user === '' ? m.allow_publish_for_anonymous : m.allow_publish_for_client) || (m.allow_publish_for_subscriber && subscribed));
  if (!allowed) throw new ReplyError(Errors.permissionDenied);
  const key = m.client_key === 'client_id' ? s.id : m.client_key === 'user_id' ? s.user : (p.key ?? '');
  const info = s.subs.infoIn(channel) ?? s.info;
  if (removing) {
    await service.remove(channel, key, { info }, ns);
    return { result: {} };
  }
  if (p.data === undefined) {
    ctx.metrics.badInput.labels('map_value').inc();
    throw new ReplyError({ code: Errors.badRequest.code, message: 'bad request: map publish without data' });
  }
  ctx.payloads.checkPublication(ns, p.data);
  await service.publish(channel, key, rawData(p.data)!, { info }, ns);
  ctx.metrics.publications.labels('client').inc();
  return { result: {} };
}
