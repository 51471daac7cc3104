import type { Codec } from './codec.js';
import { Disconnects, DisconnectError } from './codes.js';
import type { Command } from './commands.js';
import { encodeClientInfo, encodePublication, encodePublicationAs, publicationsRaw, Raw, stringify } from './json.js';

/*
 * The unidirectional JSON encoding, as Centrifugo's uni_websocket, uni_sse and
 * uni_http_stream speak it: the client sends one connect request (a bare
 * ConnectRequest object, no command envelope) and then only listens; the
 * server sends bare Push objects (`{"channel":"news","pub":{...}}`, not
 * wrapped in `{"push":...}`), the connect result as `{"connect":{...}}` and
 * `{}` as its ping. A codec of its own (its own slot), so a publication is
 * encoded once per node for all unidirectional subscribers.
 */

/** The server's ping on a unidirectional connection (the client does not answer). */
export const UNI_PING = Buffer.from('{}');

/** The push a unidirectional connection gets before the server closes it. */
export function uniDisconnectPush(code: number, reason: string): Buffer {
  return Buffer.from(stringify({ disconnect: { code, reason } }));
}

/**
 * A connect request as the client sent it (a JSON object), as the one
 * command a unidirectional session processes. An empty frame is nothing (the
 * transport's own pong, see uni-websocket.ts).
 */
function decodeConnectRequest(frame: Buffer): Command[] {
  if (frame.length === 0) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame.toString('utf8'));
  } catch {
    throw new DisconnectError(Disconnects.badRequest);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new DisconnectError(Disconnects.badRequest);
  return [{ id: 1, method: 'connect', params: parsed as Record<string, unknown> }];
}

export const uniJsonCodec: Codec = {
  encoding: 'json',
  slot: 2,
  decode(frame: Buffer, isBinary: boolean): Command[] {
    if (isBinary) throw new DisconnectError(Disconnects.badRequest, 'binary_frame');
    return decodeConnectRequest(frame);
  },
  // The only reply a unidirectional session sends is its connect result, as a connect push.
  reply: (_id, method, result) => Buffer.from('{' + JSON.stringify(method) + ':' + stringify(result ?? {}) + '}'),
  error: (_id, err) => Buffer.from(stringify({ error: { code: err.code, message: err.message } })),
  ping: () => UNI_PING,
  publicationPush: (channel, pub) => Buffer.from('{"channel":' + JSON.stringify(channel) + ',"pub":' + encodePublication(pub) + '}'),
  // Unidirectional clients negotiate neither delta nor compaction: the channel is always named.
  publicationPushAs: (channel, _id, pub, form) =>
    Buffer.from('{"channel":' + JSON.stringify(channel) + ',"pub":' + encodePublicationAs(pub, form) + '}'),
  publicationAs: (pub, form) => new Raw(encodePublicationAs(pub, form)),
  joinPush: (channel, info) => Buffer.from('{"channel":' + JSON.stringify(channel) + ',"join":{"info":' + encodeClientInfo(info) + '}}'),
  leavePush: (channel, info) => Buffer.from('{"channel":' + JSON.stringify(channel) + ',"leave":{"info":' + encodeClientInfo(info) + '}}'),
  subscribePush: (channel, result) => Buffer.from(stringify({ channel, subscribe: result })),
  unsubscribePush: (channel, code, reason) => Buffer.from(stringify({ channel, unsubscribe: { code, reason } })),
  refreshPush: (expires, ttl) => Buffer.from(stringify({ refresh: { expires, ttl } })),
  messagePush: (data) => Buffer.from('{"message":{"data":' + data + '}}'),
  data: (raw) => new Raw(raw),
  publications: (pubs) => publicationsRaw(pubs),
  clientInfo: (info) => new Raw(encodeClientInfo(info)),
};
