import type { Codec, PayloadForm } from './codec.js';
import { Disconnects, DisconnectError, Errors, ReplyError } from './codes.js';
import { decodeFrame, type Command } from './commands.js';
import type { ClientInfo, Publication, RawJSON } from './types.js';

/** Marks a string that is already JSON text and is copied into the output verbatim. */
export class Raw {
  constructor(readonly json: RawJSON) {}
}

/** JSON.stringify that splices `Raw` values in verbatim and drops undefined fields. */
export function stringify(value: unknown): string {
  if (value instanceof Raw) return value.json;
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map(stringify).join(',') + ']';
      let out = '';
      for (const key of Object.keys(value)) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined) continue;
        out += (out === '' ? '' : ',') + JSON.stringify(key) + ':' + stringify(v);
      }
      return '{' + out + '}';
    }
    default:
      return 'null';
  }
}

/**
 * A payload value as raw JSON text. JSON.parse accepts nesting that
 * JSON.stringify cannot walk back (it overflows the stack): such a payload
 * is the sender's bad input (107), not a temporary server error.
 */
export function toRawJson(value: unknown): RawJSON {
  try {
    return JSON.stringify(value);
  } catch (e) {
    if (e instanceof RangeError) throw new ReplyError({ code: Errors.badRequest.code, message: 'bad request: data nested too deeply' });
    throw e;
  }
}

export function encodeClientInfo(info: ClientInfo): string {
  let out = '{"user":' + JSON.stringify(info.user) + ',"client":' + JSON.stringify(info.client);
  if (info.connInfo !== undefined) out += ',"conn_info":' + info.connInfo;
  if (info.chanInfo !== undefined) out += ',"chan_info":' + info.chanInfo;
  return out + '}';
}

// A publication's JSON is computed once and reused: by every recovery and
// history reply that includes it (memory engine history holds the same
// objects), not once per reply. Entries die with the publication.
const encoded = new WeakMap<Publication, string>();

export function encodePublication(pub: Publication): string {
  let out = encoded.get(pub);
  if (out === undefined) {
    out = encodePublicationNow(pub);
    encoded.set(pub, out);
  }
  return out;
}

function encodePublicationNow(pub: Publication): string {
  return encodePublicationData(pub, pub.removed ? 'null' : pub.data);
}

/**
 * A publication whose payload goes to a delta subscription: the SDK reads
 * `data` as a JSON string there (the whole JSON text, or the fossil delta's
 * bytes as UTF-8) and `delta: true` marks a delta.
 */
export function encodePublicationAs(pub: Publication, form: PayloadForm): string {
  // a map key's removal has no payload to compare or escape
  if (form === 'plain' || pub.removed) return encodePublication(pub);
  if (form === 'full') return encodePublicationData(pub, JSON.stringify(pub.data));
  return encodePublicationData(pub, JSON.stringify(form.toString('utf8')), true);
}

function encodePublicationData(pub: Publication, data: string, delta = false): string {
  let out = '{"data":' + data;
  if (delta) out += ',"delta":true';
  if (pub.info !== undefined) out += ',"info":' + encodeClientInfo(pub.info);
  if (pub.offset > 0) out += ',"offset":' + pub.offset;
  if (pub.tags !== undefined) out += ',"tags":' + JSON.stringify(pub.tags);
  if (pub.time !== undefined) out += ',"time":' + pub.time;
  if (pub.key !== undefined) out += ',"key":' + JSON.stringify(pub.key);
  if (pub.removed) out += ',"removed":true';
  return out + '}';
}

export function publicationPush(channel: string, pub: Publication): string {
  return '{"push":{"channel":' + JSON.stringify(channel) + ',"pub":' + encodePublication(pub) + '}}';
}

/** The start of a push routed by channel name, or by subscription id with channel compaction. */
function pushHead(channel: string, id: number): string {
  return id > 0 ? '{"push":{"id":' + id : '{"push":{"channel":' + JSON.stringify(channel);
}

export function publicationPushAs(channel: string, id: number, pub: Publication, form: PayloadForm): string {
  return pushHead(channel, id) + ',"pub":' + encodePublicationAs(pub, form) + '}}';
}

export function joinPush(channel: string, info: ClientInfo, id = 0): string {
  return pushHead(channel, id) + ',"join":{"info":' + encodeClientInfo(info) + '}}}';
}

export function leavePush(channel: string, info: ClientInfo, id = 0): string {
  return pushHead(channel, id) + ',"leave":{"info":' + encodeClientInfo(info) + '}}}';
}

export function unsubscribePush(channel: string, code: number, reason: string): string {
  return stringify({ push: { channel, unsubscribe: { code, reason } } });
}

export function messagePush(data: RawJSON): string {
  return '{"push":{"message":{"data":' + data + '}}}';
}

export function subscribePush(channel: string, result: Record<string, unknown>): string {
  return stringify({ push: { channel, subscribe: result } });
}

export function disconnectPush(code: number, reason: string, reconnect: boolean): string {
  return stringify({ push: { disconnect: { code, reason, reconnect } } });
}

export function refreshPush(expires: boolean, ttl: number): string {
  return stringify({ push: { refresh: { expires, ttl } } });
}

export function replyOk(id: number, method: string, result: unknown): string {
  return '{"id":' + id + ',' + JSON.stringify(method) + ':' + stringify(result ?? {}) + '}';
}

export function replyError(id: number, error: { code: number; message: string; temporary?: boolean }): string {
  return stringify({ id, error: { code: error.code, message: error.message, temporary: error.temporary || undefined } });
}

/** The server's ping: an empty reply. The client answers with an empty command (pong). */
export const PING = '{}';

/** Publications as they appear in history / recovery results. */
export function publicationsRaw(pubs: readonly Publication[]): Raw[] {
  return pubs.map((p) => new Raw(encodePublication(p)));
}

/** The JSON encoding: newline-delimited JSON commands and replies in text frames. */
export const jsonCodec: Codec = {
  encoding: 'json',
  slot: 0,
  decode(frame: Buffer, isBinary: boolean): Command[] {
    // JSON clients send text frames only.
    if (isBinary) throw new DisconnectError(Disconnects.badRequest, 'binary_frame');
    return decodeFrame(frame.toString('utf8'));
  },
  reply: (id, method, result) => Buffer.from(replyOk(id, method, result)),
  error: (id, err) => Buffer.from(replyError(id, err)),
  ping: () => PING_BYTES,
  publicationPush: (channel, pub) => Buffer.from(publicationPush(channel, pub)),
  publicationPushAs: (channel, id, pub, form) => Buffer.from(publicationPushAs(channel, id, pub, form)),
  joinPush: (channel, info, id) => Buffer.from(joinPush(channel, info, id)),
  leavePush: (channel, info, id) => Buffer.from(leavePush(channel, info, id)),
  subscribePush: (channel, result) => Buffer.from(subscribePush(channel, result)),
  unsubscribePush: (channel, code, reason) => Buffer.from(unsubscribePush(channel, code, reason)),
  refreshPush: (expires, ttl) => Buffer.from(refreshPush(expires, ttl)),
  messagePush: (data) => Buffer.from(messagePush(data)),
  data: (raw) => new Raw(raw),
  publications: (pubs) => publicationsRaw(pubs),
  publicationAs: (pub, form) => new Raw(encodePublicationAs(pub, form)),
  clientInfo: (info) => new Raw(encodeClientInfo(info)),
};
const PING_BYTES = Buffer.from(PING);
