import type { Codec } from '../protocol/codec.js';
import type { ClientInfo, Publication } from '../protocol/types.js';
import type { OutboundQueue } from '../transport/connection.js';
import { conflationId } from './delivery.js';

// The push bytes of a publication, made once per encoding (indexed by the
// codec's slot): fan-out and every recovering subscriber's merge of
// buffered publications share them.
const pushBytes = new WeakMap<Publication, Buffer[]>();

/**
 * Publication pushes encoded since start, by codec slot (0 JSON, 1 Protobuf):
 * tests read it to prove one encoding per publication per encoding.
 */
export const publicationEncodes: number[] = [0, 0];

/** The encoded publication push for a channel (each publication belongs to one channel). */
export function publicationBytes(codec: Codec, channel: string, pub: Publication): Buffer {
  let cache = pushBytes.get(pub);
  if (cache === undefined) {
    cache = [];
    pushBytes.set(pub, cache);
  }
  let bytes = cache[codec.slot];
  if (bytes === undefined) {
    bytes = cache[codec.slot] = codec.publicationPush(channel, pub);
    publicationEncodes[codec.slot]!++;
  }
  return bytes;
}

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
  constructor(
    readonly client: HubClient,
    readonly channel: string,
  ) {}

  /** Writes one publication already encoded for the channel, keeping offsets strict. */
  deliver(pub: Publication, bytes: Buffer, conflation?: string): boolean {
    const off = pub.offset;
    if (off > 0 && this.offset > 0) {
      if (off <= this.offset) return false; // already delivered (recovery overlap)
      if (off !== this.offset + 1 && this.positioned) {
        this.client.insufficientState(this.channel);
        return false;
      }
    }
    if (off > 0) this.offset = off;
    this.client.writer.enqueue(bytes, this.lane, conflation);
    return true;
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
  private readonly channels = new Map<string, Set<Subscriber>>();
  private subscriptionCount = 0;
  /** Deliveries queued to writers since start (read by metrics). */
  deliveries = 0;

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
    let set = this.channels.get(s.channel);
    const first = !set;
    if (!set) this.channels.set(s.channel, (set = new Set()));
    if (!set.has(s)) {
      set.add(s);
      this.subscriptionCount++;
    }
    return first;
  }

  /** Returns true when the channel has no subscribers on this node any more. */
  removeSubscriber(s: Subscriber): boolean {
    const set = this.channels.get(s.channel);
    if (!set || !set.delete(s)) return false;
    this.subscriptionCount--;
    if (set.size === 0) {
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
      const set = this.channels.get(ch);
      if (!set) continue;
      // insufficientState removes the subscriber from this set: walk a copy
      for (const s of [...set]) s.client.insufficientState(ch);
    }
  }

  hasSubscribers(channel: string): boolean {
    return this.channels.has(channel);
  }

  channelNames(): string[] {
    return [...this.channels.keys()];
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
   * Fan-out: the publication is encoded once per encoding and the same
   * bytes go to every subscriber of that encoding.
   */
  publish(channel: string, pub: Publication): void {
    const set = this.channels.get(channel);
    if (!set) return;
    let codec: Codec | undefined;
    let bytes: Buffer | undefined;
    const conflation = pub.conflationKey === undefined ? undefined : conflationId(channel, pub.conflationKey);
    let n = 0;
    for (const s of set) {
      if (s.buffer !== null) {
        s.buffer.push(pub);
        continue;
      }
      const c = s.client.codec;
      if (c !== codec) {
        codec = c;
        bytes = publicationBytes(c, channel, pub);
      }
      if (s.deliver(pub, bytes!, conflation)) n++;
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
    const set = this.channels.get(channel);
    if (!set) return;
    const bySlot: Buffer[] = [];
    for (const s of set) {
      if (!s.joinLeave || s.buffer !== null) continue;
      const c = s.client.codec;
      s.client.writer.enqueue((bySlot[c.slot] ??= leave ? c.leavePush(channel, info) : c.joinPush(channel, info)), s.lane);
    }
  }
}
