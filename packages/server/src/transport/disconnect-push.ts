import type { Codec } from '../protocol/codec.js';
import { disconnectPush as jsonDisconnectPush } from '../protocol/json.js';
import { ReplyType } from '../protocol/protobuf-schema.js';

/**
 * The disconnect push a stream ends with: HTTP transports have no close
 * code, so the code and reason travel as a `disconnect` push (as centrifuge
 * sends them to emulation and unidirectional clients) before the response ends.
 * `reconnect` follows the protocol's ranges (3500–3999 and 4500–4999 are terminal).
 */
export function disconnectPush(codec: Codec, code: number, reason: string): Buffer {
  const reconnect = !((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000));
  if (codec.encoding === 'protobuf') {
    const u8 = ReplyType.encodeDelimited({ push: { disconnect: { code, reason, reconnect } } }).finish();
    return Buffer.from(u8.buffer, u8.byteOffset, u8.length);
  }
  return Buffer.from(jsonDisconnectPush(code, reason, reconnect));
}
