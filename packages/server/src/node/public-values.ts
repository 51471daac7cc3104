import { Errors, ReplyError } from '../protocol/codes.js';
import type { ClientInfo, Publication } from '../protocol/types.js';

/**
 * The in-process API's values. The engine keeps JSON payloads as JSON text
 * (spliced into frames verbatim); an app calling `sb.history()` wants the
 * values, as the HTTP API's callers get them. Parsed here, at the boundary,
 * never on the hot path.
 */
export interface PublicClientInfo {
  readonly user: string;
  readonly client: string;
  readonly connInfo?: unknown;
  readonly chanInfo?: unknown;
}

export interface PublicPublication {
  readonly offset: number;
  readonly data: unknown;
  readonly info?: PublicClientInfo;
  readonly tags?: Readonly<Record<string, string>>;
  /** Milliseconds since epoch when the publication was accepted. */
  readonly time?: number;
}

export function publicClientInfo(info: ClientInfo): PublicClientInfo {
  return {
    user: info.user,
    client: info.client,
    ...(info.connInfo !== undefined ? { connInfo: JSON.parse(info.connInfo) as unknown } : {}),
    ...(info.chanInfo !== undefined ? { chanInfo: JSON.parse(info.chanInfo) as unknown } : {}),
  };
}

export function publicPublication(p: Publication): PublicPublication {
  return {
    offset: p.offset,
    data: JSON.parse(p.data) as unknown,
    ...(p.info !== undefined ? { info: publicClientInfo(p.info) } : {}),
    ...(p.tags !== undefined ? { tags: p.tags } : {}),
    ...(p.time !== undefined ? { time: p.time } : {}),
  };
}

/**
 * A history limit as the HTTP API takes it: a count, 0 for the stream
 * position only, -1 (or none) for everything kept. Anything else is 107,
 * not a RangeError from deep inside the engine.
 */
export function historyLimit(limit: number | undefined): number | undefined {
  if (limit === undefined || limit === -1) return undefined;
  if (!Number.isSafeInteger(limit) || limit < -1)
    throw new ReplyError({
      code: Errors.badRequest.code,
      message: `bad request: limit must be an integer ≥ -1 (-1 = everything kept), got ${limit}`,
    });
  return limit;
}
