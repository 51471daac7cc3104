import type { Config, NamespaceConfig } from '../config/load.js';
import type { MapKeyMode, MapStore, MapUpdateResult } from '../engine/map.js';
import { isMapNamespace, mapConfigProblems, channelOptions } from '../maps/options.js';
import { MapPresence } from '../maps/presence.js';
import { MapService } from '../maps/service.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Errors, ReplyError } from '../protocol/codes.js';
import type { Publication, StreamPosition } from '../protocol/types.js';
import { publicClientInfo, type PublicClientInfo } from './public-values.js';
import { toRaw } from './values.js';

/** Options of `Switchboard.mapPublish` (the HTTP API's `map_publish` params, camelCased). */
export interface MapPublishOptions {
  /** Overrides the namespace's key_ttl (ms; 0 = never lapses). */
  readonly keyTtl?: number;
  readonly tags?: Readonly<Record<string, string>>;
  readonly keyMode?: MapKeyMode;
  readonly idempotencyKey?: string;
  /** Overrides the namespace's delta_publish. */
  readonly delta?: boolean;
}

export interface MapRemoveOptions {
  readonly idempotencyKey?: string;
}

/** One map entry as the in-process API returns it (data parsed). */
export interface PublicMapEntry {
  readonly key: string;
  readonly offset: number;
  readonly data: unknown;
  readonly removed?: boolean;
  readonly info?: PublicClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  readonly time?: number;
}

export interface MapStateQuery {
  readonly cursor?: string;
  /** Entries per page (default the namespace's default_page_size, at most max_page_size). */
  readonly limit?: number;
  /** Only this key. */
  readonly key?: string;
}

export interface MapStreamQuery {
  readonly since?: StreamPosition;
  /** 0 = only the position; absent = all kept. */
  readonly limit?: number;
}

export function publicMapEntry(p: Publication): PublicMapEntry {
  return {
    key: p.key ?? '',
    offset: p.offset,
    data: p.removed ? null : (JSON.parse(p.data) as unknown),
    ...(p.removed ? { removed: true } : {}),
    ...(p.info !== undefined ? { info: publicClientInfo(p.info) } : {}),
    ...(p.tags !== undefined ? { tags: p.tags } : {}),
    ...(p.time !== undefined ? { time: p.time } : {}),
  };
}

/** Map channels on a node: the service sessions and the API share, map presence, and the in-process API. */
export class NodeMaps {
  readonly service: MapService;
  readonly presence: MapPresence;
  /** Keep-alive period of presence entries: a third of the shortest presence key_ttl. */
  private readonly presenceRefreshMs: number;

  constructor(
    config: Config,
    store: MapStore | undefined,
    private readonly resolve: (channel: string) => NamespaceConfig,
    metrics: Metrics,
    log: Logger,
  ) {
    const nss: Array<[string, NamespaceConfig]> = [
      ['channel.without_namespace', config.channel.without_namespace],
      ...config.channel.namespaces.map((n, i): [string, NamespaceConfig] => [`channel.namespaces.${i}`, n]),
    ];
    const problems = nss.flatMap(([where, ns]) => mapConfigProblems(ns, where));
    if (!store && nss.some(([, ns]) => isMapNamespace(ns))) problems.push('map namespaces need an engine with maps (memory or redis)');
    if (problems.length > 0) throw new Error('invalid map configuration: ' + problems.join('; '));
    const ttls = nss
      .filter(([, ns]) => ns.subscription_type === 'map_clients' || ns.subscription_type === 'map_users')
      .map(([, ns]) => ns.map.key_ttl);
    this.presenceRefreshMs = ttls.length > 0 ? Math.floor(Math.min(...ttls) / 3) : 0;
    this.service = new MapService({ store, resolve, metrics, log });
    this.presence = new MapPresence(this.service, log);
  }

  start(): void {
    if (this.presenceRefreshMs > 0) this.presence.start(this.presenceRefreshMs);
  }

  close(): void {
    this.presence.close();
  }

  async publish(channel: string, key: string, data: unknown, opts: MapPublishOptions = {}): Promise<MapUpdateResult> {
    return this.service.publish(channel, key, toRaw(data), {
      keyTtlMs: opts.keyTtl,
      tags: opts.tags,
      keyMode: opts.keyMode,
      idempotencyKey: opts.idempotencyKey,
      delta: opts.delta,
    });
  }

  async remove(channel: string, key: string, opts: MapRemoveOptions = {}): Promise<MapUpdateResult> {
    return this.service.remove(channel, key, { idempotencyKey: opts.idempotencyKey });
  }

  /** One page of a map channel's state (map, map_clients or map_users). */
  async readState(channel: string, q: MapStateQuery = {}): Promise<{ entries: Publication[]; cursor: string; position: StreamPosition }> {
    const ns = this.service.mapNamespace(channel, ['map', 'map_clients', 'map_users']);
    const limit = checkLimit(q.limit) ?? (ns.map.default_page_size || 100);
    const r = await this.service.store.readState(channel, {
      cursor: q.cursor,
      limit: Math.min(limit, Math.max(1, ns.map.max_page_size)),
      key: q.key,
      metaTtlMs: ns.map.meta_ttl,
    });
    return { entries: r.entries, cursor: r.cursor, position: r.position };
  }

  /** A map channel's stream; 112 when `since` cannot be continued. */
  async readStream(channel: string, q: MapStreamQuery = {}): Promise<{ publications: Publication[]; position: StreamPosition }> {
    const ns = this.service.mapNamespace(channel, ['map', 'map_clients', 'map_users']);
    const o = channelOptions(ns);
    const r = await this.service.store.readStream(channel, {
      since: q.since,
      limit: checkLimit(q.limit),
      streamTtlMs: o.streamTtlMs,
      metaTtlMs: o.metaTtlMs,
    });
    if (!r.recoverable) throw new ReplyError(Errors.unrecoverablePosition);
    return { publications: r.publications, position: r.position };
  }

  async stats(channel: string): Promise<{ numKeys: number }> {
    this.service.mapNamespace(channel, ['map', 'map_clients', 'map_users']);
    return this.service.store.stats(channel);
  }

  async clear(channel: string): Promise<void> {
    this.service.mapNamespace(channel, ['map', 'map_clients', 'map_users']);
    await this.service.store.clear(channel);
  }
}

function checkLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new ReplyError({ code: Errors.badRequest.code, message: `bad request: limit must be an integer ≥ 0, got ${limit}` });
  }
  return limit;
}
