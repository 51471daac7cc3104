import type { NamespaceConfig } from '../config/load.js';
import type { MapChannelOptions } from '../engine/map.js';
import { Errors, ReplyError } from '../protocol/codes.js';

/** A namespace's subscription type (config `subscription_type`). */
export type SubscriptionType = NamespaceConfig['subscription_type'];

/** The subscribe request's `type` for each subscription type (the SDK: 1 map, 2 map_clients, 3 map_users). */
export const WIRE_TYPE: Record<SubscriptionType, number> = { stream: 0, map: 1, map_clients: 2, map_users: 3 };

/** Stream defaults of durable and persistent maps when stream_size / stream_ttl are 0 (as Centrifugo). */
export const DEFAULT_STREAM_SIZE = 100;
export const DEFAULT_STREAM_TTL_MS = 60_000;

export function isMapNamespace(ns: NamespaceConfig): boolean {
  return ns.subscription_type !== 'stream';
}

/** Ephemeral maps keep no stream: a resubscribe resyncs in full. */
export function isStreamless(ns: NamespaceConfig): boolean {
  return ns.map.mode === 'ephemeral';
}

/** The engine's view of the namespace's map channel (stream and meta). */
export function channelOptions(ns: NamespaceConfig): MapChannelOptions {
  if (isStreamless(ns)) return { streamSize: 0, streamTtlMs: 0, metaTtlMs: ns.map.meta_ttl };
  return {
    streamSize: ns.map.stream_size > 0 ? ns.map.stream_size : DEFAULT_STREAM_SIZE,
    streamTtlMs: ns.map.stream_ttl > 0 ? ns.map.stream_ttl : DEFAULT_STREAM_TTL_MS,
    metaTtlMs: ns.map.meta_ttl,
  };
}

/** A page size the client asked for (0 = the namespace default), kept within min and max. */
export function pageSize(ns: NamespaceConfig, asked: number | null | undefined): number {
  const m = ns.map;
  const max = Math.max(1, m.max_page_size);
  const min = Math.min(max, Math.max(1, m.min_page_size));
  const want = asked && asked > 0 ? asked : m.default_page_size > 0 ? m.default_page_size : min;
  return Math.min(max, Math.max(min, want));
}

/** Most stream publications a subscribe catches up in the step that goes live. */
export function liveLimit(ns: NamespaceConfig): number {
  return ns.map.live_transition_max_publication_limit > 0
    ? ns.map.live_transition_max_publication_limit
    : Math.max(1, ns.map.max_page_size);
}

/** 107 for a map operation on a channel that is not a map (or the other way round). */
export function notAMap(): ReplyError {
  return new ReplyError({ code: Errors.badRequest.code, message: 'bad request: not a map channel' });
}

/** 107 for a stream operation on a map channel. */
export function isAMap(): ReplyError {
  return new ReplyError({ code: Errors.badRequest.code, message: 'bad request: map channel (use map subscribe / map publish)' });
}

/** Namespace config problems that make the config invalid (checked at load by the node). */
export function mapConfigProblems(ns: NamespaceConfig, where: string): string[] {
  const out: string[] = [];
  if (!isMapNamespace(ns)) return out;
  const m = ns.map;
  if (m.mode === 'ephemeral' && m.key_ttl <= 0 && ns.subscription_type === 'map') {
    out.push(`${where}.map.key_ttl: an ephemeral map needs a key_ttl`);
  }
  if (ns.subscription_type !== 'map' && m.key_ttl <= 0) out.push(`${where}.map.key_ttl: map presence needs a key_ttl`);
  if (m.min_page_size > m.max_page_size) out.push(`${where}.map.min_page_size: larger than max_page_size`);
  return out;
}
