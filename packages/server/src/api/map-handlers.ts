import { ConfigError, parseDuration } from '../config/load.js';
import type { MapUpdateResult } from '../engine/map.js';
import { Errors, ReplyError } from '../protocol/codes.js';
import type { PublicMapEntry, Switchboard } from '../node.js';
import type { StreamPosition } from '../protocol/types.js';
import type { MapApiMethod, MapParamsOf } from './map-schemas.js';

/** What the map handlers borrow from the executor (payloads and positions as every method reads them). */
export interface PayloadReaders {
  dataOf(p: { data?: unknown; b64data?: string }): unknown;
  position(p: { offset?: number; epoch?: string } | undefined): StreamPosition | undefined;
}

const updateResult = (r: MapUpdateResult) => ({
  offset: r.offset,
  epoch: r.epoch,
  ...(r.suppressed ? { suppressed: true, suppress_reason: r.suppressReason } : {}),
});

/** The HTTP API's map methods over the in-process ones. */
export function mapHandlers(h: PayloadReaders): { [M in MapApiMethod]: (sb: Switchboard, p: MapParamsOf<M>) => Promise<unknown> } {
  return {
    async map_publish(sb, p) {
      const r = await sb.mapPublish(p.channel, p.key, h.dataOf(p), {
        keyTtl: p.key_ttl === undefined ? undefined : duration(p.key_ttl),
        keyMode: p.key_mode,
        tags: p.tags,
        idempotencyKey: p.idempotency_key || undefined,
        delta: p.delta,
      });
      return updateResult(r);
    },
    async map_remove(sb, p) {
      return updateResult(await sb.mapRemove(p.channel, p.key, { idempotencyKey: p.idempotency_key || undefined }));
    },
    async map_read_state(sb, p) {
      const r = await sb.mapReadState(p.channel, { cursor: p.cursor, limit: p.limit, key: p.key });
      return {
        publications: r.entries.map(wire),
        cursor: r.cursor,
        offset: r.position.offset,
        epoch: r.position.epoch,
      };
    },
    async map_read_stream(sb, p) {
      const r = await sb.mapReadStream(p.channel, { since: h.position(p.since), limit: p.limit });
      return { publications: r.publications.map(wire), offset: r.position.offset, epoch: r.position.epoch };
    },
    async map_stats(sb, p) {
      return { num_keys: (await sb.mapStats(p.channel)).numKeys };
    },
    async map_clear(sb, p) {
      await sb.mapClear(p.channel);
      return {};
    },
  };
}

/** A duration param: "30s" or seconds; 107 when it is neither. */
function duration(v: string | number): number {
  try {
    return parseDuration(v, 'key_ttl');
  } catch (e) {
    if (e instanceof ConfigError) throw new ReplyError({ code: Errors.badRequest.code, message: `bad request: ${e.message}` });
    throw e;
  }
}

/** The in-process entry in the API's field names. */
function wire(e: PublicMapEntry): Record<string, unknown> {
  const { info, ...rest } = e;
  return info ? { ...rest, info: { user: info.user, client: info.client, conn_info: info.connInfo, chan_info: info.chanInfo } } : rest;
}
