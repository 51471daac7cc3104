import type { RawJSON } from './types.js';

/**
 * Binary payloads in an engine that carries JSON text.
 *
 * The engine, history and the Redis wire keep every payload as RawJSON (a
 * string), which the JSON codec splices into frames verbatim: the JSON hot
 * path never looks at bytes. A payload that arrives as bytes (a Protobuf
 * client's `data`, the HTTP API's `b64data`) becomes:
 * - its JSON value, when the bytes are UTF-8 JSON text (what most apps send);
 * - otherwise the JSON string `"\u0000b64:<base64 of the bytes>"`, which a
 *   JSON client receives as that string and a Protobuf client receives as
 *   the original bytes (see `rawToBytes`).
 * The NUL prefix cannot come from the JSON text of an ordinary string
 * without the sender writing it on purpose, so the marker is unambiguous in practice.
 */
export const BINARY_PREFIX = '\u0000b64:';
/** How the marker looks inside RawJSON text (JSON.stringify escapes NUL as \u0000). */
const RAW_PREFIX = '"\\u0000b64:';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes from a client or the API → the value the engine stores (undefined for no bytes). */
export function bytesToValue(bytes: Uint8Array | undefined): unknown {
  if (bytes === undefined || bytes.length === 0) return undefined;
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    return BINARY_PREFIX + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
  }
}

/** A stored payload as the bytes a Protobuf client receives: the original bytes, or the JSON text as UTF-8. */
export function rawToBytes(raw: RawJSON): Buffer {
  if (raw.startsWith(RAW_PREFIX)) return Buffer.from(raw.slice(RAW_PREFIX.length, -1), 'base64');
  return Buffer.from(raw, 'utf8');
}
