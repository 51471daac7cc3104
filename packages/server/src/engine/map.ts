import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../protocol/types.js';

/*
 * The map role of an engine: channels that hold a key → value map the
 * server owns (map subscriptions, Centrifugo 6.8). Every mutation updates
 * the state, appends to the channel's stream (when it keeps one) and is
 * delivered as a publication, in one step:
 *
 *   - a publish/remove that changed the state reaches
 *     `EngineHandlers.onPublication(channel, pub)` on every node whose
 *     broker subscribed the channel (`Broker.subscribe`), with `pub.key`
 *     set (and `pub.removed` for a removal), in offset order per channel,
 *     through the same feed as ordinary publications;
 *   - offsets count every mutation of the channel, streamless ones too
 *     (1, 2, 3, ... under one epoch), so a subscriber can drop what it has;
 *   - a key whose TTL lapses is removed by the engine itself (within about a
 *     second, `MapStoreOptions.cleanupIntervalMs`) with a removal
 *     publication like `remove()`'s, info absent;
 *   - the epoch changes when the channel's meta is lost or expires
 *     (metaTtlMs after the last mutation): positions of the old epoch are
 *     not recoverable.
 */

/** Conditional publish: only when the key is absent (`if_new`) or present (`if_exists`). */
export type MapKeyMode = 'if_new' | 'if_exists';

/** Why a mutation changed nothing (no stream entry, no publication). */
export type MapSuppressReason =
  /** The idempotency key matched an earlier mutation inside its window. */
  | 'idempotency'
  /** `if_new` on a present key. */
  | 'key_exists'
  /** `if_exists` on an absent key, or remove of an absent key. */
  | 'key_not_found'
  /** A new key in a channel that holds `maxKeys` keys already. */
  | 'too_many_keys';

/** How a map channel keeps its stream and meta (the namespace's `map` options, resolved). */
export interface MapChannelOptions {
  /** Stream entries kept; 0 = streamless (no stream, offsets still count). */
  readonly streamSize: number;
  /** Stream entries older than this are not returned (ms; 0 = no age limit). */
  readonly streamTtlMs: number;
  /** How long the channel's meta (epoch, offset) outlives its last mutation (ms); 0 = engine default. */
  readonly metaTtlMs: number;
}

export interface MapPublishOptions extends MapChannelOptions {
  /** The key is removed this long after this publish unless published again (ms); 0 = never. */
  readonly keyTtlMs: number;
  /** At most this many keys in the channel; a new key beyond it is suppressed ('too_many_keys'); 0 = no limit. */
  readonly maxKeys?: number;
  readonly info?: ClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  /** The publication may go out as a fossil delta (against the key's previous value) to delta subscribers. */
  readonly delta?: boolean;
  readonly keyMode?: MapKeyMode;
  /** With `if_new` on a present key: still extend its TTL (presence keep-alive), nothing published. */
  readonly refreshTtlOnSuppress?: boolean;
  /** A repeated mutation with this key inside the window is suppressed ('idempotency') and returns the first position. */
  readonly idempotencyKey?: string;
  readonly idempotentResultTtlMs?: number;
}

export interface MapRemoveOptions extends MapChannelOptions {
  /** Who removed it (carried by the removal publication). */
  readonly info?: ClientInfo;
  readonly idempotencyKey?: string;
  readonly idempotentResultTtlMs?: number;
}

export interface MapUpdateResult extends StreamPosition {
  /** True when nothing changed: no stream entry, no publication. offset/epoch are then the channel's current top. */
  readonly suppressed?: boolean;
  readonly suppressReason?: MapSuppressReason;
}

export interface MapStateOptions {
  /** From `MapStateResult.cursor` of the page before; '' or absent = first page. */
  readonly cursor?: string;
  /** Entries per page (> 0); an engine may return fewer (never more than 2×). */
  readonly limit: number;
  /** Only this key (cursor and limit ignored). */
  readonly key?: string;
  readonly metaTtlMs: number;
}

export interface MapStateResult {
  /** Live entries (key, data, offset of their last write, info, tags, time); no removed ones, no lapsed ones. */
  readonly entries: Publication[];
  /** '' = this was the last page. Opaque to callers. */
  readonly cursor: string;
  /**
   * The channel's top position when this page was read. Every mutation after
   * it has a greater offset; a page may already show some of them.
   */
  readonly position: StreamPosition;
}

export interface MapStreamOptions {
  /** Publications after this position (offset exclusive); absent = from the oldest kept. */
  readonly since?: StreamPosition;
  /** At most this many; 0 = only the position; absent = all. */
  readonly limit?: number;
  readonly streamTtlMs: number;
  readonly metaTtlMs: number;
}

export interface MapStreamResult {
  /** Stream entries (mutations, removals with `removed: true`), oldest first. */
  readonly publications: Publication[];
  /** The channel's top position. */
  readonly position: StreamPosition;
  /**
   * False when `since` cannot be continued from this stream: another epoch,
   * or entries after it were trimmed (stream_size / stream_ttl) or never kept
   * (streamless). Publications are then empty.
   */
  readonly recoverable: boolean;
}

export interface MapStats {
  readonly numKeys: number;
}

/** Keyed channel state, its stream and delivery (the engine's `maps`). */
export interface MapStore {
  publish(channel: string, key: string, data: RawJSON, opts: MapPublishOptions): Promise<MapUpdateResult>;
  remove(channel: string, key: string, opts: MapRemoveOptions): Promise<MapUpdateResult>;
  /** One page of the current state. */
  readState(channel: string, opts: MapStateOptions): Promise<MapStateResult>;
  /** The channel's stream (catch-up and recovery). */
  readStream(channel: string, opts: MapStreamOptions): Promise<MapStreamResult>;
  stats(channel: string): Promise<MapStats>;
  /** Drops state, stream and meta: the next mutation starts a new epoch. Publishes nothing. */
  clear(channel: string): Promise<void>;
}

/** Engine construction options of the map role. */
export interface MapStoreOptions {
  /** How often lapsed keys are looked for and removed (default 1000 ms). */
  readonly cleanupIntervalMs?: number;
}
