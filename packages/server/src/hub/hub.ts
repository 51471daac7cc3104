import type { Codec, PayloadForm } from '../protocol/codec.js';
import { rawToBytes } from '../protocol/binary.js';
import { fossilDelta } from '../protocol/delta.js';
import { matchTags, type CompiledFilter, type TagsFilter } from '../protocol/tags-filter.js';
import type { ClientInfo, Publication } from '../protocol/types.js';
import type { OutboundQueue } from '../transport/connection.js';
import { conflationId } from './delivery.js';

// The push bytes of a publication, made once per encoding (indexed by the
// codec's slot): fan-out and every recovering subscriber's merge of
// buffered publications share them.
const pushBytes = new WeakMap<Publication, Buffer[]>();

/** Fossil deltas computed since start, by codec slot: one per publication per encoding, shared by all delta subscribers. */
export const deltaComputations: number[] = [0, 0];

/** Tags filter evaluations in fan-out since start: one per distinct filter per publication (tests read it). */
export const filterEvaluations = { count: 0 };

/**
 * The encoded publication push for a channel (each publication belongs to one
 * channel); an encoding made here is counted in `encodes` (the node's, by codec slot).
 */
export function publicationBytes(codec: Codec, channel: string, pub: Publication, encodes: number[]): Buffer {
  let cache = pushBytes.get(pub);
  if (cache === undefined) {
    cache = [];
    pushBytes.set(pub, cache);
  }
  let bytes = cache[codec.slot];
  if (bytes === undefined) {
    bytes = cache[codec.slot] = codec.publicationPush(channel, pub);
    encodes[codec.slot] = (encodes[codec.slot] ?? 0) + 1;
  }
  return bytes;
}

/*
 * Delta compression and channel compaction, prepared once per publication:
 * the hub remembers the previous publication of each channel it fanned out
 * (`deltaBase`) and the fossil delta from it is computed once per encoding
 * and shared by every delta subscriber whose last payload was that base.
 * A channel's compaction id is one per channel per node, so pushes routed
 * by id are shared bytes as well. Variants per codec slot:
 * [compact 0/1] x [plain, full (delta subscription), delta].
 */
const VARIANTS = 6;
const KIND: Record<'plain' | 'full' | 'delta', number> = { plain: 0, full: 1, delta: 2 };
const variantBytes = new WeakMap<Publication, Buffer[]>();
/** The payload of the publication before it (not the publication: that would chain every publication to its predecessor). */
const deltaBase = new WeakMap<Publication, string>();
/** Per codec slot: the delta (Buffer), or null when a delta does not pay. */
const deltas = new WeakMap<Publication, (Buffer | null)[]>();

function payloadBytes(codec: Codec, raw: string): Uint8Array {
  return codec.encoding === 'json' ? Buffer.from(raw, 'utf8') : rawToBytes(raw);
}

function deltaOf(codec: Codec, base: string, pub: Publication): Buffer | null {
  let cache = deltas.get(pub);
  if (cache === undefined) deltas.set(pub, (cache = []));
  let d = cache[codec.slot];
  if (d === undefined) {
    d = cache[codec.slot] = fossilDelta(payloadBytes(codec, base), payloadBytes(codec, pub.data), codec.encoding === 'json') ?? null;
    deltaComputations[codec.slot]!++;
  }
  return d;
}

function variant(
  codec: Codec,
  channel: string,
  id: number,
  pub: Publication,
  kind: 'plain' | 'full' | 'delta',
  form: PayloadForm,
  encodes: number[],
): Buffer {
  if (id === 0 && kind === 'plain') return publicationBytes(codec, channel, pub, encodes);
  let cache = variantBytes.get(pub);
  if (cache === undefined) variantBytes.set(pub, (cache = []));
  const i = codec.slot * VARIANTS + (id > 0 ? 3 : 0) + KIND[kind];
  let bytes = cache[i];
  if (bytes === undefined) {
    bytes = cache[i] = codec.publicationPushAs(channel, id, pub, form);
    encodes[codec.slot] = (encodes[codec.slot] ?? 0) + 1;
  }
  return bytes;
}

/**
 * Fossil deltas for a subscriber's recovered publications: the first one
 * whole, each next one a delta against the one before it when that pays.
 */
export function recoveredForms(codec: Codec, pubs: readonly Publication[]): PayloadForm[] {
  return pubs.map((p, i) =>
    i === 0
      ? 'full'
      : (fossilDelta(payloadBytes(codec, pubs[i - 1]!.data), payloadBytes(codec, p.data), codec.encoding === 'json') ?? 'full'),
  );
}

/** Encodes for a subscriber no longer in a hub (a late merge after it left): counted nowhere. */
const detached: number[] = [0, 0];

/** What the hub needs of a connection. */
export interface HubClient {
  /** The client id, sent to the client in the connect reply. */
  readonly id: string;
  /**
   * The connection's session id: unique per connection and distinct from
   * the client id (as centrifuge's); API targets may name it. Only
   * emulation transports send it to their client.
   */
  readonly session: string;
  readonly user: string;
  readonly writer: OutboundQueue;
  readonly codec: Codec;
  /** A positioned subscriber saw a gap in offsets: it must resubscribe and recover. */
  insufficientState(channel: string): void;
}

/**
 * One connection's subscription to one channel, as fan-out sees it. While
 * `buffer` is set the subscription is recovering and live publications are
 * kept for the merge instead of being written.
 */
export class Subscriber {
  buffer: Publication[] | null = null;
  /** Offset of the last publication delivered (0 = none / not tracked). */
  offset = 0;
  positioned = false;
  joinLeave = false;
  /** The writer lane of the channel's priority class (`delivery.ts`): 1 = normal. */
  lane = 1;
  /** Negotiated fossil delta compression. */
  delta = false;
  /** With `delta`: the publication whose payload the client holds as its delta base (null: the next one goes whole). */
  base: Publication | null = null;
  /** A map subscription with `delta`: the payload the client holds per key (deltas are per key). */
  keyBase: Map<string, string> | null = null;
  /** Tags filter (null = every publication). */
  filter: CompiledFilter | null = null;
  /** Asked for channel compaction: pushes are routed by `id`. */
  compact = false;
  /** The channel's compaction id on this node (set by the hub when `compact`), sent in the subscribe reply. */
  id = 0;
  /** The hub's entry of the channel while subscribed (its node's encode counts with it). */
  entry: { prev: Publication | null; readonly encodes: number[] } | null = null;
  constructor(
    readonly client: HubClient,
    readonly channel: string,
  ) {}

  /** Offset bookkeeping: false when the publication is a duplicate or (positioned) after a gap. */
  private advance(pub: Publication): boolean {
    const off = pub.offset;
    // A positioned subscriber knows its position even at 0 (a new stream): its first publication is 1.
    if (off > 0 && (this.offset > 0 || this.positioned)) {
      if (off <= this.offset) return false; // already delivered (recovery overlap)
      if (off !== this.offset + 1 && this.positioned) {
        this.client.insufficientState(this.channel);
        return false;
      }
    }
    if (off > 0) this.offset = off;
    return true;
  }

  /**
   * A recovery read the stream up to `top` and nothing newer has reached the
   * hub since this subscriber was added: `top` is the channel's previous
   * publication, so the next one can go out as a delta against it.
   */
  seedChannelBase(top: Publication): void {
    if (this.entry !== null && this.entry.prev === null) this.entry.prev = top;
  }

  /** A publication the tags filter keeps from this subscriber: only the position moves. */
  skip(pub: Publication): void {
    this.advance(pub);
  }

  /** Writes one publication (in the bytes given, or those this subscription needs), keeping offsets strict. */
  deliver(pub: Publication, bytes?: Buffer, conflation?: string): boolean {
    if (!this.advance(pub)) return false;
    // A delta names the publication before it: replacing a queued one would break the chain, so delta subscribers never conflate.
    this.client.writer.enqueue(bytes ?? this.bytesFor(pub), this.lane, this.delta ? undefined : conflation);
    return true;
  }

  private bytesFor(pub: Publication): Buffer {
    const codec = this.client.codec;
    const id = this.compact ? this.id : 0;
    const encodes = this.entry?.encodes ?? detached;
    if (!this.delta || pub.removed) {
      if (pub.removed) this.keyBase?.delete(pub.key!);
      return variant(codec, this.channel, id, pub, 'plain', 'plain', encodes);
    }
    if (this.keyBase !== null && pub.key !== undefined) return this.keyBytes(pub, this.keyBase, id, encodes);
    const mine = this.base;
    this.base = pub;
    const base = deltaBase.get(pub);
    // The client applies the delta to the payload it holds: the same text is the same bytes.
    if (base !== undefined && mine !== null && mine.data === base) {
      const d = deltaOf(codec, base, pub);
      if (d !== null) return variant(codec, this.channel, id, pub, 'delta', d, encodes);
    }
    return variant(codec, this.channel, id, pub, 'full', 'full', encodes);
  }

  /**
   * A map key's publication: a delta against the key's previous value when
   * the client holds it. The first delta subscriber to get the publication
   * fixes its base (what it holds for the key; subscribers of one channel
   * nearly always hold the same), so the delta is computed once and shared.
   */
  private keyBytes(pub: Publication, keyBase: Map<string, string>, id: number, encodes: number[]): Buffer {
    const codec = this.client.codec;
    const key = pub.key!;
    const mine = keyBase.get(key);
    keyBase.set(key, pub.data);
    let base = deltaBase.get(pub);
    if (base === undefined && mine !== undefined && pub.delta === true) deltaBase.set(pub, (base = mine));
    if (base !== undefined && mine === base) {
      const d = deltaOf(codec, base, pub);
      if (d !== null) return variant(codec, this.channel, id, pub, 'delta', d, encodes);
    }
    return variant(codec, this.channel, id, pub, 'full', 'full', encodes);
  }
}

function groupMatches(f: TagsFilter, pub: Publication): boolean {
  filterEvaluations.count++;
  return matchTags(f, pub.tags);
}

/** Subscribers of one channel that share a tags filter (or have none). */
interface FilterGroup {
  readonly filter: TagsFilter | null;
  readonly subs: Set<Subscriber>;
  /** Positioned members: a filtered-out publication still moves their position. */
  positioned: number;
}

/** A channel's subscribers on this node, grouped by tags filter ('' = none). */
class ChannelEntry {
  readonly groups = new Map<string, FilterGroup>();
  size = 0;
  /** The last publication fanned out: the base of the next one's delta. */
  prev: Publication | null = null;
  constructor(
    readonly id: number,
    readonly encodes: number[],
  ) {}

  *subscribers(): IterableIterator<Subscriber> {
    for (const g of this.groups.values()) yield* g.subs;
  }
}

/** Which connections a server API action (disconnect, subscribe, unsubscribe, refresh) is for. */
export interface ClientTarget {
  /** '' = any user when client or session is given; the anonymous connections otherwise. */
  readonly user: string;
  readonly client?: string;
  readonly session?: string;
}

/** The node's local index of connections, users and channel subscriptions; local fan-out. */
export class Hub {
  readonly clients = new Map<string, HubClient>();
  readonly users = new Map<string, Set<HubClient>>();
  private readonly channels = new Map<string, ChannelEntry>();
  private subscriptionCount = 0;
  /** Compaction ids are never reused on a node, so a stale id can never name another channel. */
  private nextChannelId = 0;
  /** Deliveries queued to writers since start (read by metrics). */
  deliveries = 0;
  /** Publication pushes encoded on this node since start, by codec slot (0 JSON, 1 Protobuf; read by metrics). */
  readonly encodes: number[] = [0, 0];

  addClient(c: HubClient): void {
    this.clients.set(c.id, c);
    let set = this.users.get(c.user);
    if (!set) this.users.set(c.user, (set = new Set()));
    set.add(c);
  }

  removeClient(c: HubClient): void {
    if (this.clients.get(c.id) !== c) return;
    this.clients.delete(c.id);
    const set = this.users.get(c.user);
    if (set) {
      set.delete(c);
      if (set.size === 0) this.users.delete(c.user);
    }
  }

  userClients(user: string): readonly HubClient[] {
    const set = this.users.get(user);
    return set ? [...set] : [];
  }

  /**
   * The connections a target names: each given field must match (as in
   * centrifuge's hub). A client id finds that connection whoever its user
   * is; a user narrows to that user's connections; a session narrows to one
   * connection. A session-only target is looked up by a walk over this
   * node's connections (an API action, not a hot path); an empty target
   * means the anonymous connections, as before.
   */
  matching(target: ClientTarget): HubClient[] {
    const { user, client, session } = target;
    let candidates: Iterable<HubClient>;
    if (client) {
      const c = this.clients.get(client);
      candidates = c ? [c] : [];
    } else if (user !== '' || !session) {
      candidates = this.users.get(user) ?? [];
    } else {
      candidates = this.clients.values();
    }
    const out: HubClient[] = [];
    for (const c of candidates) {
      if (user !== '' && c.user !== user) continue;
      if (session && c.session !== session) continue;
      out.push(c);
    }
    return out;
  }

  /** Returns true when this is the node's first subscriber of the channel. */
  addSubscriber(s: Subscriber): boolean {
    let e = this.channels.get(s.channel);
    const first = !e;
    if (!e) this.channels.set(s.channel, (e = new ChannelEntry(++this.nextChannelId, this.encodes)));
    const key = s.filter?.key ?? '';
    let g = e.groups.get(key);
    if (!g) e.groups.set(key, (g = { filter: s.filter?.filter ?? null, subs: new Set(), positioned: 0 }));
    if (!g.subs.has(s)) {
      g.subs.add(s);
      if (s.positioned) g.positioned++;
      e.size++;
      this.subscriptionCount++;
    }
    s.id = s.compact ? e.id : 0;
    s.entry = e;
    return first;
  }

  /** Returns true when the channel has no subscribers on this node any more. */
  removeSubscriber(s: Subscriber): boolean {
    const e = this.channels.get(s.channel);
    if (!e) return false;
    const key = s.filter?.key ?? '';
    const g = e.groups.get(key);
    if (!g || !g.subs.delete(s)) return false;
    s.entry = null;
    if (s.positioned) g.positioned--;
    if (g.subs.size === 0) e.groups.delete(key);
    e.size--;
    this.subscriptionCount--;
    if (e.size === 0) {
      this.channels.delete(s.channel);
      return true;
    }
    return false;
  }

  /**
   * The engine may have lost publications of these channels: each of their
   * subscribers on this node resubscribes and recovers. Walks the channel
   * index, so the cost follows the subscribers of the named channels.
   */
  resync(channels: readonly string[] | 'all'): void {
    const names = channels === 'all' ? [...this.channels.keys()] : channels;
    for (const ch of names) {
      const e = this.channels.get(ch);
      if (!e) continue;
      // insufficientState removes the subscriber from this entry: walk a copy
      for (const s of [...e.subscribers()]) s.client.insufficientState(ch);
    }
  }

  hasSubscribers(channel: string): boolean {
    return this.channels.has(channel);
  }

  channelNames(): string[] {
    return [...this.channels.keys()];
  }

  /** This node's connections subscribed to the channel (an API walk, not fan-out). */
  channelClients(channel: string): HubClient[] {
    const e = this.channels.get(channel);
    return e ? [...e.subscribers()].map((s) => s.client) : [];
  }

  numSubscribers(channel: string): number {
    return this.channels.get(channel)?.size ?? 0;
  }

  get numChannels(): number {
    return this.channels.size;
  }

  get numSubscriptions(): number {
    return this.subscriptionCount;
  }

  /**
   * Fan-out: the publication is encoded once per encoding (and form: plain,
   * delta, compacted) and the same bytes go to every subscriber that needs
   * that form. A tags filter is evaluated once per group of subscribers
   * that share it, not once per subscriber.
   */
  publish(channel: string, pub: Publication): void {
    const e = this.channels.get(channel);
    if (!e) return;
    // map keys' deltas are per key: their base is set when the first delta subscriber gets one (keyBytes)
    if (pub.key === undefined) {
      const prev = e.prev;
      e.prev = pub;
      if (prev !== null && pub.delta === true) deltaBase.set(pub, prev.data);
    }
    const conflation = pub.conflationKey === undefined ? undefined : conflationId(channel, pub.conflationKey);
    let n = 0;
    // plain pushes by codec slot: the common case costs no lookup per subscriber
    let plain0: Buffer | undefined;
    let plain1: Buffer | undefined;
    for (const g of e.groups.values()) {
      if (g.filter !== null && !groupMatches(g.filter, pub)) {
        if (g.positioned === 0) continue;
        for (const s of g.subs) {
          if (s.buffer !== null) s.buffer.push(pub);
          else s.skip(pub);
        }
        continue;
      }
      for (const s of g.subs) {
        if (s.buffer !== null) {
          s.buffer.push(pub);
          continue;
        }
        let bytes: Buffer | undefined;
        if (!s.delta && !s.compact) {
          const c = s.client.codec;
          if (c.slot === 0) bytes = plain0 ??= publicationBytes(c, channel, pub, this.encodes);
          else if (c.slot === 1) bytes = plain1 ??= publicationBytes(c, channel, pub, this.encodes);
        }
        if (s.deliver(pub, bytes, conflation)) n++;
      }
    }
    this.deliveries += n;
  }

  join(channel: string, info: ClientInfo): void {
    this.pushToJoinLeave(channel, info, false);
  }

  leave(channel: string, info: ClientInfo): void {
    this.pushToJoinLeave(channel, info, true);
  }

  private pushToJoinLeave(channel: string, info: ClientInfo, leave: boolean): void {
    const e = this.channels.get(channel);
    if (!e) return;
    const bySlot: Buffer[] = [];
    for (const s of e.subscribers()) {
      if (!s.joinLeave || s.buffer !== null) continue;
      const c = s.client.codec;
      const id = s.compact ? e.id : 0;
      s.client.writer.enqueue(
        (bySlot[c.slot * 2 + (id > 0 ? 1 : 0)] ??= leave ? c.leavePush(channel, info, id) : c.joinPush(channel, info, id)),
        s.lane,
      );
    }
  }
}
