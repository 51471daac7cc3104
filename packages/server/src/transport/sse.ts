import type { IncomingMessage } from 'node:http';
import { AffixFraming, type StreamFraming } from './stream-framing.js';

/**
 * Server-Sent Events (`/connection/sse`) framing: one `data:` event per
 * JSON reply. JSON only (EventSource carries text; centrifuge's SSE
 * transport is JSON too). The JSON encoder never emits a raw newline, so a
 * reply is always a single `data:` line.
 */
export const sseFraming: StreamFraming = new AffixFraming('text/event-stream; charset=utf-8', 'data: ', '\n\n');

/** The URL parameter browsers send the connect command in (EventSource can only GET). */
export const CONNECT_PARAM = 'cf_connect';

/** The connect command(s) of a GET, from `cf_connect`; undefined when absent or empty. */
export function sseConnectData(req: IncomingMessage): Buffer | undefined {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  const v = new URLSearchParams(url.slice(q + 1)).get(CONNECT_PARAM);
  return v ? Buffer.from(v) : undefined;
}
