import type { Logger } from '../observability/logger.js';
import type { LockStore, UserStatusStore } from './locks.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../protocol/types.js';
import type { MapStore } from './map.js';

export type * from './map.js';

export interface PublishOptions {
  /** 0 = no history: the publication gets no offset and is not kept. */
  readonly historySize: number;
  readonly historyTtlMs: number;
  /** How long the stream's meta (offset, epoch) outlives its last publication; 0 = engine default. */
  readonly historyMetaTtlMs: number;
  readonly info?: ClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  /** The publication may be sent as a fossil delta to delta subscriptions. */
  readonly delta?: boolean;
  /** Carried with the publication to every node: a slow subscriber's queue keeps only the newest per key. */
  readonly conflationKey?: string;
  /** A repeated publish with the same key inside the window returns the first result and publishes nothing. */
  readonly idempotencyKey?: string;
  readonly idempotentResultTtlMs?: number;
}

export interface HistoryOptions {
  /** Return at most this many publications; 0 = only the stream position; undefined = all. */
  readonly limit?: number;
  /** Return publications after this position (offset exclusive). */
  readonly since?: StreamPosition;
  readonly reverse?: boolean;
  /**
   * A subscriber's recovery: it is already registered for live publications,
   * so the engine may answer from what this node has seen of the stream
   * (its position may trail the stream's by publications still in flight).
   */
  readonly recovery?: boolean;
  /** With `recovery`: the channel's history_size (a stream keeps that many, so a recovery reaches no further back). */
  readonly historySize?: number;
  /** Publications older than this are not returned (0 = no age limit). */
  readonly historyTtlMs: number;
  readonly historyMetaTtlMs: number;
}

export interface HistoryResult {
  readonly publications: Publication[];
  /** The stream's current top position. */
  readonly position: StreamPosition;
}

export interface PublishResult extends StreamPosition {
  /** True when an idempotency key matched an earlier publish and nothing new was published. */
  readonly duplicate?: boolean;
}

export interface PresenceStats {
  readonly numClients: number;
  readonly numUsers: number;
}

/** Node-to-node control messages (API actions that must reach a user's connections on any node). */
export type ControlMessage =
  | { type: 'disconnect'; user: string; client?: string; session?: string; code: number; reason: string; whitelist?: string[] }
  | { type: 'unsubscribe'; user: string; channel: string; client?: string; session?: string }
  | { type: 'subscribe'; user: string; channel: string; client?: string; session?: string; options?: ServerSubscribeOptions }
  | { type: 'refresh'; user: string; client?: string; session?: string; expired?: boolean; expireAt?: number; info?: RawJSON }
  | { type: 'revoke'; user?: string; jti?: string; issuedBefore?: number }
  /**
   * An emulation request (client commands) for a session on node `node`, forwarded by node `from`
   * (which waits for the ack numbered `id`); data is base64 when binary (Protobuf).
   */
  | { type: 'emulation'; node: string; session: string; data: string; binary?: boolean; from: string; id: number }
  /** Node `node`'s forwarded emulation request `id` reached its session (found) or not. */
  | { type: 'emulation_ack'; node: string; id: number; found: boolean }
  // The connections API asks every node and each answers the asking node (`from` → `to`).
  | { type: 'connections_request'; id: string; from: string; user?: string; channel?: string; limit: number }
  | { type: 'connections_reply'; id: string; from: string; to: string; connections: ConnectionDescription[] }
  /**
   * A channel's history was removed: every node drops its recovery tail of the
   * channel (the publications it kept from the broker), so no recovery answers
   * with removed publications. The engine handles it; nodes never see it.
   */
  | { type: 'history_removed'; channel: string };

/** One connection as the connections API describes it (Centrifugo PRO's ConnectionInfo, plus where it is). */
export interface ConnectionDescription {
  readonly client: string;
  readonly user: string;
  readonly session: string;
  /** The node the connection is on. */
  readonly node: string;
  readonly transport: string;
  readonly protocol: 'json' | 'protobuf';
  readonly app_name?: string;
  readonly app_version?: string;
  /** Unix ms. */
  readonly connected_at: number;
  readonly ip: string;
  /** Connection info (JSON text as the connection holds it). */
  readonly conn_info?: RawJSON;
  readonly channels: readonly string[];
}

export interface ServerSubscribeOptions {
  readonly info?: RawJSON;
  readonly data?: RawJSON;
  readonly recover?: boolean;
  readonly since?: StreamPosition;
}

export interface NodeInfo {
  readonly uid: string;
  readonly name: string;
  readonly version: string;
  readonly numClients: number;
  readonly numUsers: number;
  readonly numSubs: number;
  readonly numChannels: number;
  readonly uptime: number;
}

export interface EngineHandlers {
  /** A publication for a channel this node subscribed to, in offset order per channel. */
  onPublication(channel: string, pub: Publication): void;
  onJoin(channel: string, info: ClientInfo): void;
  onLeave(channel: string, info: ClientInfo): void;
  onControl(msg: ControlMessage): void;
  /**
   * The engine lost its feed and may have missed publications for these
   * channels (e.g. a broker reconnect): subscribers must be told.
   */
  onResync?(channels: readonly string[] | 'all'): void;
}

/**
 * Fan-out between nodes: publications (with their history append, in one
 * step), join/leave, control messages, and which channels this node wants.
 */
export interface Broker {
  /** Starts delivering to `handlers` (the engine calls it from its own start). */
  start(handlers: EngineHandlers): Promise<void>;
  publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult>;
  publishJoin(channel: string, info: ClientInfo): Promise<void>;
  publishLeave(channel: string, info: ClientInfo): Promise<void>;
  publishControl(msg: ControlMessage): Promise<void>;
  /** This node wants the channel's publications. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
}

/** Channel streams: reads (including a subscriber's recovery) and removal. Appends go through the broker's publish. */
export interface HistoryStore {
  read(channel: string, opts: HistoryOptions): Promise<HistoryResult>;
  /** Drops the publications; the stream position (offset, epoch) stays. */
  remove(channel: string): Promise<void>;
}

export interface PresenceManager {
  add(channel: string, info: ClientInfo): Promise<void>;
  remove(channel: string, clientId: string, user: string): Promise<void>;
  get(channel: string): Promise<Map<string, ClientInfo>>;
  stats(channel: string): Promise<PresenceStats>;
}

/** @deprecated the old name of PresenceManager. */
export type PresenceStore = PresenceManager;

/** The cluster's nodes and channels (engines that span several nodes). */
export interface NodeRegistry {
  /** Announces this node (again before node_info_ttl runs out). */
  announce(info: NodeInfo): Promise<void>;
  /** Every live node, this one included once it announced itself. */
  list(): Promise<NodeInfo[]>;
  /** Channels with at least one subscriber on any node. */
  channels(): Promise<string[]>;
}

/** A token bucket shared by all nodes (per-user limits across the cluster). */
export interface SharedLimiter {
  /** True when a token was taken from the bucket `key`. */
  take(key: string, ratePerSecond: number, burst: number): Promise<boolean>;
}

/** What a revocation check looks at: the token's subject, id and issue time. */
export interface TokenIdentity {
  readonly user: string;
  readonly jti?: string;
  /** Issued at (unix ms); a token without it counts as issued before any invalidation. */
  readonly issuedAt?: number;
}

/**
 * Revoked tokens, shared by every node and kept until they expire (a
 * revocation outlives the token it revokes, then it is dropped).
 */
export interface RevocationStore {
  /** Revokes the token with this id until `expireAt` (unix ms). */
  revokeToken(jti: string, expireAt: number): Promise<void>;
  /** Invalidates the user's tokens issued before `issuedBefore` (unix ms) until `expireAt` (unix ms). */
  invalidateUser(user: string, issuedBefore: number, expireAt: number): Promise<void>;
  /** True when the token was revoked or its user's tokens of its age invalidated. */
  isRevoked(token: TokenIdentity): Promise<boolean>;
}

/** One event waiting in the webhook outbox: its outbox id and the text it was appended with. */
export interface OutboxEntry {
  readonly id: string;
  readonly body: string;
}

/**
 * The webhook outbox: events kept until a node acks their delivery, so a
 * delivery survives the node that queued it (Redis: a stream with a
 * consumer group). Bounded: an append to a full outbox is refused.
 */
export interface WebhookOutbox {
  /** Appends an entry; false when the outbox holds `maxSize` undelivered entries already (nothing appended). */
  append(body: string, maxSize: number): Promise<boolean>;
  /**
   * Hands `consumer` up to `count` entries: new ones, and ones claimed by any
   * consumer (a dead node's too) and neither acked nor touched for `reclaimAfterMs`.
   */
  claim(consumer: string, count: number, reclaimAfterMs: number): Promise<OutboxEntry[]>;
  /** The consumer still works on these (resets their idle time, so no one reclaims them). */
  touch(consumer: string, ids: readonly string[]): Promise<void>;
  /** Delivered (or given up): removes them. */
  ack(ids: readonly string[]): Promise<void>;
  /** Undelivered entries, claimed or not. */
  size(): Promise<number>;
}

/**
 * Which nodes have subscribers of a channel, cluster-wide, so "occupied"
 * (first subscriber anywhere) and "vacated" (last one anywhere) are told once.
 * A node's entries lapse after a TTL unless it refreshes them, so a dead node
 * does not keep a channel occupied for ever.
 */
export interface ChannelOccupancy {
  /** This node has the channel's first local subscriber; true when no node had one before. */
  occupy(channel: string, node: string): Promise<boolean>;
  /** This node's last local subscriber left; true when no node has one now. */
  vacate(channel: string, node: string): Promise<boolean>;
  /** Keeps this node's entries alive; returns the channels it occupied again from empty (its entries had lapsed). */
  refresh(channels: readonly string[], node: string): Promise<string[]>;
  /** Drops lapsed entries of dead nodes; returns the channels left with no node (vacated), each returned to one caller only. */
  sweep(): Promise<string[]>;
}

/** What an engine is given when it starts: where to deliver, and the embedder's logger. */
export interface EngineStartOptions {
  readonly log?: Logger;
}

/**
 * Where data lives, as the roles session, hub and node use. An engine is
 * a composition of them with one lifecycle (start, health, close).
 */
export interface Engine {
  readonly name: string;
  readonly broker: Broker;
  readonly history: HistoryStore;
  readonly presence: PresenceManager;
  /** Absent: the engine knows only this node (the node answers with its own info and channels). */
  readonly nodes?: NodeRegistry;
  /** Absent: per-user limits are node-local. */
  readonly limiter?: SharedLimiter;
  readonly revocations: RevocationStore;
  /** Absent: webhooks fall back to an outbox in this process (lost with it). */
  readonly outbox?: WebhookOutbox;
  /** Absent: occupancy is this node's own view. */
  readonly occupancy?: ChannelOccupancy;
  /** Collaborative field locks (docs/LOCKS.md). Absent: locks of this process only. */
  readonly locks?: LockStore;
  /** User status (docs/USER-STATUS.md). Absent: kept in this process only. */
  readonly userStatus?: UserStatusStore;
  /** Map channels (engine/map.ts). Absent: the engine has none, and a config with map namespaces is refused. */
  readonly maps?: MapStore;
  /** Connects, starts delivering to `handlers`, and logs through `opts.log` from then on. */
  start(handlers: EngineHandlers, opts?: EngineStartOptions): Promise<void>;
  /** False while the engine cannot serve (e.g. Redis down). */
  healthy(): boolean;
  close(): Promise<void>;
}
