import type { NamespaceConfig } from '../config/load.js';
import type { MapKeyMode, MapStore, MapUpdateResult } from '../engine/map.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Errors, ReplyError } from '../protocol/codes.js';
import type { ClientInfo, RawJSON } from '../protocol/types.js';
import { channelOptions, notAMap } from './options.js';

/** What a map publish may set beyond key and data (API and in-process). */
export interface MapPublishParams {
  /** Overrides the namespace's key_ttl (ms; 0 = never lapses). */
  readonly keyTtlMs?: number;
  readonly tags?: Readonly<Record<string, string>>;
  readonly keyMode?: MapKeyMode;
  readonly idempotencyKey?: string;
  /** Overrides the namespace's delta_publish. */
  readonly delta?: boolean;
  readonly info?: ClientInfo;
  /** With `if_new` on a present key: extend its TTL (presence keep-alive). */
  readonly refreshTtlOnSuppress?: boolean;
}

export interface MapRemoveParams {
  readonly idempotencyKey?: string;
  readonly info?: ClientInfo;
}

export interface MapServiceDeps {
  readonly store: MapStore | undefined;
  resolve(channel: string): NamespaceConfig;
  readonly metrics: Metrics;
  readonly log: Logger;
}

const KEY_MODES = new Set(['if_new', 'if_exists']);

/**
 * Map mutations with the namespace's rules applied (the channel is a map,
 * key and value sizes, max keys, TTL, stream options) — one path for the
 * HTTP API, the in-process API and client publishes, so every one of them
 * refuses the same bad input with the same code and counts it.
 */
export class MapService {
  constructor(private readonly deps: MapServiceDeps) {}

  /** The engine's map role; 108 when the engine has none. */
  get store(): MapStore {
    if (!this.deps.store) throw new ReplyError(Errors.notAvailable);
    return this.deps.store;
  }

  /** The namespace of a map channel; 107 (counted) when the channel is not one of `types`. */
  mapNamespace(channel: string, types: ReadonlyArray<NamespaceConfig['subscription_type']> = ['map']): NamespaceConfig {
    const ns = this.deps.resolve(channel);
    if (!types.includes(ns.subscription_type)) throw this.bad('map_channel_type', notAMap());
    return ns;
  }

  async publish(
    channel: string,
    key: string,
    data: RawJSON,
    p: MapPublishParams = {},
    ns = this.mapNamespace(channel),
  ): Promise<MapUpdateResult> {
    this.checkKey(ns, key);
    if (p.keyMode !== undefined && !KEY_MODES.has(p.keyMode)) {
      throw this.bad(
        'map_key_mode',
        new ReplyError({ code: Errors.badRequest.code, message: 'bad request: key_mode must be if_new or if_exists' }),
      );
    }
    const max = ns.map.max_value_size;
    if (max > 0 && Buffer.byteLength(data, 'utf8') > max) {
      throw this.bad(
        'map_value_size',
        new ReplyError({ code: Errors.badRequest.code, message: `bad request: value larger than ${max} bytes` }),
      );
    }
    const r = await this.store.publish(channel, key, data, {
      ...channelOptions(ns),
      keyTtlMs: p.keyTtlMs ?? ns.map.key_ttl,
      maxKeys: ns.map.max_keys,
      info: p.info,
      tags: p.tags,
      delta: (p.delta ?? ns.delta_publish) || undefined,
      keyMode: p.keyMode,
      refreshTtlOnSuppress: p.refreshTtlOnSuppress,
      idempotencyKey: p.idempotencyKey,
    });
    if (r.suppressReason === 'too_many_keys') {
      this.deps.metrics.limits.labels('map_max_keys').inc();
      throw new ReplyError({ code: Errors.limitExceeded.code, message: `limit exceeded: map holds ${ns.map.max_keys} keys` });
    }
    return r;
  }

  async remove(channel: string, key: string, p: MapRemoveParams = {}, ns = this.mapNamespace(channel)): Promise<MapUpdateResult> {
    this.checkKey(ns, key);
    return this.store.remove(channel, key, { ...channelOptions(ns), info: p.info, idempotencyKey: p.idempotencyKey });
  }

  private checkKey(ns: NamespaceConfig, key: string): void {
    if (key === '') throw this.bad('map_key', new ReplyError({ code: Errors.badRequest.code, message: 'bad request: empty key' }));
    const max = ns.map.max_key_length;
    if (max > 0 && key.length > max) {
      throw this.bad(
        'map_key',
        new ReplyError({ code: Errors.badRequest.code, message: `bad request: key longer than ${max} characters` }),
      );
    }
  }

  /** Counts the bad input and returns the error to throw. */
  bad(label: string, e: ReplyError): ReplyError {
    this.deps.metrics.badInput.labels(label).inc();
    return e;
  }
}
