import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';

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
  /** Keys fetched from a JWKS URL (cached, refetched on an unknown `kid`): rotation without restart. */
  private readonly jwks: RemoteKeys | undefined;

  constructor(private readonly cfg: TokenKeys) {
    if (cfg.hmac_secret_key) this.keys.hmac = new TextEncoder().encode(cfg.hmac_secret_key);
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

  async verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new TokenError('invalid', 'malformed token');
    }
    if (!alg || !this.allowed.has(alg)) throw new TokenError('invalid', `algorithm ${String(alg)} not allowed`);
    const family = FAMILY[alg]!;
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
