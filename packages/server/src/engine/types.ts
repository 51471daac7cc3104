import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../protocol/types.js';

export interface PublishOptions {
  /** 0 = no history: the publication gets no offset and is not kept. */
  readonly historySize: number;
  readonly historyTtlMs: number;
  /** How long the stream's meta (offset, epoch) outlives its last publication; 0 = engine default. */
  readonly historyMetaTtlMs: number;
  readonly info?: ClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
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

export interface PresenceStore {
  add(channel: string, info: ClientInfo): Promise<void>;
  remove(channel: string, clientId: string, user: string): Promise<void>;
  get(channel: string): Promise<Map<string, ClientInfo>>;
  stats(channel: string): Promise<PresenceStats>;
}

/** Node-to-node control messages (API actions that must reach a user's connections on any node). */
export type ControlMessage =
  | { type: 'disconnect'; user: string; client?: string; session?: string; code: number; reason: string; whitelist?: string[] }
  | { type: 'unsubscribe'; user: string; channel: string; client?: string; session?: string }
  | { type: 'subscribe'; user: string; channel: string; client?: string; session?: string; options?: ServerSubscribeOptions }
  | { type: 'refresh'; user: string; client?: string; session?: string; expired?: boolean; expireAt?: number; info?: RawJSON }
  | { type: 'revoke'; user?: string; jti?: string; issuedBefore?: number };

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
 * Where data lives: broker (fan-out between nodes), history, presence and
 * the node registry. Session and hub code talk only to this interface.
 */
export interface Engine {
  readonly name: string;
  start(handlers: EngineHandlers): Promise<void>;
  publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult>;
  publishJoin(channel: string, info: ClientInfo): Promise<void>;
  publishLeave(channel: string, info: ClientInfo): Promise<void>;
  publishControl(msg: ControlMessage): Promise<void>;
  history(channel: string, opts: HistoryOptions): Promise<HistoryResult>;
  removeHistory(channel: string): Promise<void>;
  /** This node wants the channel's publications. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  readonly presence: PresenceStore;
  /** Channels with at least one subscriber on any node; undefined = the engine cannot tell (the node answers with its own). */
  channels?(): Promise<string[]>;
  /** Announce this node and list all live nodes. */
  updateNode?(info: NodeInfo): Promise<void>;
  nodes?(): Promise<NodeInfo[]>;
  /** A token bucket shared by all nodes (per-user limits across the cluster); undefined = node-local limits only. */
  takeToken?(key: string, ratePerSecond: number, burst: number): Promise<boolean>;
  /** False while the engine cannot serve (e.g. Redis down). */
  healthy(): boolean;
  close(): Promise<void>;
}
