import { isUtf8 } from 'node:buffer';
import { createDelta } from 'fossil-delta';

/**
 * Fossil deltas of publication payloads (the SDK's `delta: 'fossil'`). The
 * SDK applies a delta to the bytes of the previous payload it received on
 * the subscription: JSON clients get the delta as a JSON string (the SDK
 * UTF-8-encodes it back to bytes), Protobuf clients as raw bytes.
 */

/** The only delta type the protocol defines. */
export const FOSSIL = 'fossil';

/**
 * A delta from `prev` to `next`, or undefined when a delta would not pay
 * (not smaller than the payload) or, for the JSON encoding, is not valid
 * UTF-8 (a copy boundary inside a multi-byte character would not survive
 * the trip through a JSON string): the subscriber then gets the full payload.
 */
export function fossilDelta(prev: Uint8Array, next: Uint8Array, mustBeUtf8: boolean): Buffer | undefined {
  const d = createDelta(prev, next);
  if (d.length >= next.length) return undefined;
  const buf = Buffer.from(d.buffer, d.byteOffset, d.length);
  if (mustBeUtf8 && !isUtf8(buf)) return undefined;
  return buf;
}
