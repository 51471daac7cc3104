/** JWTs as an app backend (or an attacker) mints them, with `jose`. */
import type { KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

/**
 * Mints a JWT with `claims`: HS256 with a string secret by default, or any
 * asymmetric `alg` (RS256, ES256, EdDSA, …) with a private KeyObject.
 * `exp` is an absolute unix time in seconds (omitted → no expiry).
 */
export async function mintToken(key: string | KeyObject, claims: JWTPayload & Record<string, unknown>, alg = 'HS256'): Promise<string> {
  const k = typeof key === 'string' ? new TextEncoder().encode(key) : key;
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(k);
}

/** A token with `alg: none` (no signature), as an attacker would craft it. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);
