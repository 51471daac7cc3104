import type { IncomingMessage } from 'node:http';
import type { Codec } from './codec.js';
import { jsonCodec } from './json.js';
import { protobufCodec } from './protobuf.js';

/** The WebSocket subprotocol the `centrifuge` SDK's Protobuf build asks for. */
export const PROTOBUF_SUBPROTOCOL = 'centrifuge-protobuf';

/**
 * The encoding a connection asks for, as Centrifugo reads it: the
 * `centrifuge-protobuf` subprotocol (what the SDK's WebSocket transport
 * sends) or `cf_protocol=protobuf` in the URL (emulation transports, and
 * clients without subprotocol support); JSON otherwise.
 */
export function codecForRequest(req: IncomingMessage): Codec {
  const url = req.url;
  const subprotocols = req.headers['sec-websocket-protocol'];
  if (subprotocols !== undefined && subprotocols.split(',').some((p) => p.trim() === PROTOBUF_SUBPROTOCOL)) return protobufCodec;
  if (url !== undefined) {
    const q = url.indexOf('?');
    if (q !== -1 && new URLSearchParams(url.slice(q + 1)).get('cf_protocol') === 'protobuf') return protobufCodec;
  }
  return jsonCodec;
}
