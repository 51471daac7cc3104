import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/*
 * Track signatures of shared poll subscriptions, in the format of the
 * reference server (Centrifugo v6.8 "shared poll"), so that backends written
 * for it sign for Switchboard unchanged:
 *
 *   signature = "<iat>:<exp>:<hex HMAC-SHA256(secret, payload)>"
 *   payload   = "<iat>:<exp>:<user>:<channel>:<hex SHA-256(keys joined by NUL)>"
 *
 * iat and exp are Unix seconds (exp 0 = never expires); user is '' for
 * anonymous connections. The keys are hashed in the order the backend signed
 * them, which the SDK keeps when it sends them; a signature over the sorted
 * keys is accepted as well (older reference examples sort before signing).
 *
 * HMAC rather than a JWT: a JWT carrying 1000 keys is large and costs a JSON
 * parse per track, and the SDK treats the signature as an opaque string, so
 * the reference format is the one every existing backend already produces.
 */

export interface SignatureKeys {
  readonly secret: string;
  readonly previous?: string;
  /** Unix seconds: a signature issued after this must use `secret` (0 = no limit). */
  readonly previousValidUntil?: number;
}

export interface VerifiedSignature {
  readonly issuedAt: number;
  /** Unix seconds; 0 = never expires. */
  readonly expiresAt: number;
}

const NUM = /^\d{1,15}$/;
const HEX = /^[0-9a-f]{64}$/;

function keysHash(keys: readonly string[]): string {
  return createHash('sha256').update(keys.join('\x00')).digest('hex');
}

function mac(secret: string, iat: string, exp: string, user: string, channel: string, hash: string): Buffer {
  return createHmac('sha256', secret).update(`${iat}:${exp}:${user}:${channel}:${hash}`).digest();
}

/** Signs `keys` for `user` in `channel` (what a backend does; used by tests and docs). */
export function signTrack(
  secret: string,
  user: string,
  channel: string,
  keys: readonly string[],
  ttlSeconds: number,
  now = Date.now(),
): string {
  const iat = Math.floor(now / 1000);
  const exp = ttlSeconds > 0 ? iat + ttlSeconds : 0;
  return `${iat}:${exp}:${mac(secret, String(iat), String(exp), user, channel, keysHash(keys)).toString('hex')}`;
}

/** The signature's times when it is a valid signature of `keys` for `user` in `channel`; undefined when it is not (forged, malformed, other keys). */
export function verifyTrack(
  keys: SignatureKeys,
  signature: string,
  user: string,
  channel: string,
  tracked: readonly string[],
): VerifiedSignature | undefined {
  const parts = signature.split(':');
  if (parts.length !== 3) return undefined;
  const [iat, exp, hex] = parts as [string, string, string];
  if (!NUM.test(iat) || !NUM.test(exp) || !HEX.test(hex)) return undefined;
  const given = Buffer.from(hex, 'hex');
  const issuedAt = Number(iat);
  const secrets = [keys.secret];
  if (keys.previous && (!keys.previousValidUntil || issuedAt <= keys.previousValidUntil)) secrets.push(keys.previous);
  const hashes = [keysHash(tracked)];
  const sorted = [...tracked].sort();
  if (sorted.some((k, i) => k !== tracked[i])) hashes.push(keysHash(sorted));
  for (const secret of secrets) {
    if (!secret) continue;
    for (const h of hashes) {
      if (timingSafeEqual(mac(secret, iat, exp, user, channel, h), given)) return { issuedAt, expiresAt: Number(exp) };
    }
  }
  return undefined;
}
