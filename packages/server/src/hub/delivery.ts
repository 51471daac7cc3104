import type { RawJSON } from '../protocol/types.js';

/**
 * Priority classes and conflation keys: how a channel's messages sit in a
 * connection's queue (`transport/writer.ts` lanes). Lane 0 also carries the
 * replies to commands, so a class above `normal` shares it with them.
 */
export const PRIORITY_CLASSES = ['high', 'normal', 'low'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** The writer lane of a namespace's `priority` (unknown names are `normal`). */
export function laneOf(priority: string | undefined): number {
  const i = PRIORITY_CLASSES.indexOf(priority as PriorityClass);
  return i < 0 ? 1 : i;
}

/**
 * The writer lane of a reply or push about a channel of this lane
 * (subscribe, unsubscribe): with the other replies, unless the channel's
 * lane still holds messages, then behind them (OutboundQueue.enqueue).
 */
export function replyLane(lane: number): number {
  return PRIORITY_CLASSES.length + lane;
}

/** The writer's conflation id of a publication: channel and key (made once per publication, not per subscriber). */
export function conflationId(channel: string, key: string): string {
  return channel + '\u0000' + key;
}

/**
 * A publication's conflation key: the one given with it, else the
 * namespace's `conflation_key`: a JSON Pointer into the data (`/symbol`,
 * `/quote/id`) takes the value there (strings as they are, other values as
 * JSON text; no value = no key), any other text is a fixed key (the
 * channel's latest publication replaces the queued one). '' = none.
 */
export function conflationKeyOf(given: string | undefined, nsDefault: string, data: RawJSON): string | undefined {
  if (given !== undefined && given !== '') return given;
  if (nsDefault === '') return undefined;
  if (nsDefault[0] !== '/') return nsDefault;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  for (const raw of nsDefault.slice(1).split('/')) {
    if (v === null || typeof v !== 'object') return undefined;
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!Object.prototype.hasOwnProperty.call(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}
