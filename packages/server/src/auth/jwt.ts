import { createHmac, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';

export class TokenError extends Error {
  constructor(
    readonly kind: 'expired' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface TokenKeys {
  readonly hmac_secret_key: string;
  readonly rsa_public_key: string;
  readonly ecdsa_public_key: string;
  readonly ed25519_public_key: string;
  readonly jwks_public_endpoint?: string;
  readonly audience: string;
  readonly issuer: string;
  /** Tolerated clock difference in ms. */
  readonly clock_skew?: number;
  readonly algorithms?: readonly string[];
  /** Least time (ms) between two JWKS fetches triggered by an unknown `kid` (default 30 s). */
  readonly jwks_refresh_cooldown?: number;
}

/**
 * The key source could not be reached (JWKS endpoint down, slow or serving
 * garbage): not the client's fault, so it is answered as a temporary
 * internal error and the client retries, instead of a terminal 3500.
 */
export class KeySourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeySourceError';
  }
}

type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;

/** Hash of each HMAC algorithm, for the synchronous path (node:crypto names). */
const HMAC_HASH: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/** A compact JWS segment: base64url without padding. */
const SEGMENT = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const FAMILY: Record<string, 'hmac' | 'rsa' | 'ec' | 'ed'> = {
  HS256: 'hmac',
  HS384: 'hmac',
  HS512: 'hmac',
  RS256: 'rsa',
  RS384: 'rsa',
  RS512: 'rsa',
  PS256: 'rsa',
  PS384: 'rsa',
  PS512: 'rsa',
  ES256: 'ec',
  ES384: 'ec',
  ES512: 'ec',
  EdDSA: 'ed',
};

/**
 * Verifies connection and subscription JWTs. The algorithm in the token's
 * header must be on the allow-list and match the kind of key configured for
 * it, so `none` and HS/RS key confusion are refused before any signature
 * check.
 */
export class TokenVerifier {
  private readonly keys: Partial<Record<'hmac' | 'rsa' | 'ec' | 'ed', Uint8Array | KeyObject>> = {};
  private readonly allowed: ReadonlySet<string>;
  /** The HMAC secret for the synchronous HS* path (the same bytes jose gets). */
  private readonly hmacKey: Uint8Array | undefined;
  /** Keys fetched from a JWKS URL (cached, refetched on an unknown `kid`): rotation without restart. */
  private readonly jwks: RemoteKeys | undefined;

  constructor(private readonly cfg: TokenKeys) {
    if (cfg.hmac_secret_key) {
      this.keys.hmac = new TextEncoder().encode(cfg.hmac_secret_key);
      this.hmacKey = this.keys.hmac;
    }
    if (cfg.rsa_public_key) this.keys.rsa = publicKey(cfg.rsa_public_key, 'rsa', 'rsa_public_key');
    if (cfg.ecdsa_public_key) this.keys.ec = publicKey(cfg.ecdsa_public_key, 'ec', 'ecdsa_public_key');
    if (cfg.ed25519_public_key) this.keys.ed = publicKey(cfg.ed25519_public_key, 'ed25519', 'ed25519_public_key');
    this.allowed = new Set((cfg.algorithms ?? Object.keys(FAMILY)).filter((a) => a in FAMILY));
    if (cfg.jwks_public_endpoint) {
      this.jwks = createRemoteJWKSet(new URL(cfg.jwks_public_endpoint), {
        cacheMaxAge: 10 * 60_000,
        cooldownDuration: cfg.jwks_refresh_cooldown ?? 30_000,
        timeoutDuration: 5000,
      });
    }
  }

  get configured(): boolean {
    return Object.keys(this.keys).length > 0 || this.jwks !== undefined;
  }

  /**
   * Decoded protected headers by their base64url segment. An issuer signs
   * every token with the same header (`{"alg":"HS256","typ":"JWT"}`), so a
   * handful of segments cover all tokens: decoding one (base64url, JSON, jose's
   * checks) was ~7 µs of a connect in the connect storm's profile. Bounded:
   * cleared when full, so a flood of odd headers costs what it did before.
   */
  private readonly headers = new Map<string, ProtectedHeaderParameters>();

  private header(token: string): ProtectedHeaderParameters {
    const dot = token.indexOf('.');
    const seg = dot > 0 ? token.slice(0, dot) : undefined;
    let header = seg !== undefined ? this.headers.get(seg) : undefined;
    if (header) return header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new TokenError('invalid', 'malformed token');
    }
    if (seg !== undefined) {
      if (this.headers.size >= 64) this.headers.clear();
      this.headers.set(seg, header);
    }
    return header;
  }

  async verify(token: string): Promise<JWTPayload> {
    const header = this.header(token);
    const alg = header.alg;
    if (!alg || !this.allowed.has(alg)) throw new TokenError('invalid', `algorithm ${String(alg)} not allowed`);
    const family = FAMILY[alg]!;
    // Extensions (crit, b64) are left to jose; plain HS* tokens, the usual kind, are checked here.
    if (family === 'hmac' && this.hmacKey && header.crit === undefined && header.b64 === undefined)
      return this.verifyHmac(token, alg, this.hmacKey);
    const key = this.keys[family];
    const opts = {
      algorithms: [alg],
      audience: this.cfg.audience || undefined,
      issuer: this.cfg.issuer || undefined,
      clockTolerance: Math.floor((this.cfg.clock_skew ?? 0) / 1000),
    };
    try {
      if (key) return (await jwtVerify(token, key, opts)).payload;
      // HMAC secrets never come from a JWKS: an HS token is only checked against the configured secret.
      if (this.jwks && family !== 'hmac') return (await jwtVerify(token, this.jwks, opts)).payload;
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw new TokenError('expired', 'token expired');
      if (!key && keySourceFailed(e)) throw new KeySourceError(`JWKS unavailable: ${e instanceof Error ? e.message : String(e)}`);
      throw new TokenError('invalid', e instanceof Error ? e.message : 'invalid token');
    }
    throw new TokenError('invalid', `no key configured for ${alg}`);
  }

  /**
   * HS256/384/512 verified synchronously with node:crypto: jose goes through
   * WebCrypto, which imports the key and runs an async job per token
   * (~110 µs of CPU per token against ~7 µs here; the connect storm's largest
   * cost). The same checks as jose's jwtVerify: a compact JWS of three base64url
   * segments, the signature (constant-time compare), a JSON object payload,
   * iss and aud when configured, exp, nbf and iat numbers, exp and nbf checked
   * against the clock within the tolerance.
   */
  private verifyHmac(token: string, alg: string, key: Uint8Array): JWTPayload {
    const a = token.indexOf('.');
    const b = token.indexOf('.', a + 1);
    if (a < 0 || b < 0 || token.includes('.', b + 1)) throw new TokenError('invalid', 'Invalid Compact JWS');
    const payloadSeg = token.slice(a + 1, b);
    const sigSeg = token.slice(b + 1);
    if (!SEGMENT.test(payloadSeg) || !SEGMENT.test(sigSeg)) throw new TokenError('invalid', 'malformed token');
    // the base64url of a MAC is canonical: compare the encodings (of known length) in constant time
    const expected = Buffer.from(createHmac(HMAC_HASH[alg]!, key).update(token.slice(0, b)).digest('base64url'));
    const given = Buffer.from(sigSeg);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new TokenError('invalid', 'signature verification failed');
    let claims: unknown;
    try {
      claims = JSON.parse(utf8.decode(Buffer.from(payloadSeg, 'base64url')));
    } catch {
      claims = undefined;
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims))
      throw new TokenError('invalid', 'JWT Claims Set must be a top-level JSON object');
    const p = claims as JWTPayload;
    const { issuer, audience } = this.cfg;
    if (issuer && p.iss !== issuer) throw new TokenError('invalid', 'unexpected "iss" claim value');
    if (audience && !(typeof p.aud === 'string' ? p.aud === audience : Array.isArray(p.aud) && p.aud.includes(audience)))
      throw new TokenError('invalid', 'unexpected "aud" claim value');
    for (const c of ['iat', 'nbf', 'exp'] as const)
      if (p[c] !== undefined && typeof p[c] !== 'number') throw new TokenError('invalid', `"${c}" claim must be a number`);
    const tolerance = Math.floor((this.cfg.clock_skew ?? 0) / 1000);
    const now = Math.floor(Date.now() / 1000);
    if (p.nbf !== undefined && p.nbf > now + tolerance) throw new TokenError('invalid', '"nbf" claim timestamp check failed');
    if (p.exp !== undefined && p.exp <= now - tolerance) throw new TokenError('expired', 'token expired');
    return p;
  }
}

/** Errors of fetching the JWKS (network, timeout, non-200, not a JWKS), as opposed to a token that does not verify. */
function keySourceFailed(e: unknown): boolean {
  if (!(e instanceof errors.JOSEError)) return true; // fetch itself failed (TypeError: fetch failed, …)
  return e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid || e.code === 'ERR_JOSE_GENERIC';
}

function publicKey(pem: string, type: string, name: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== type) throw new Error(`${name}: expected a ${type} public key, got ${String(key.asymmetricKeyType)}`);
  return key;
}
