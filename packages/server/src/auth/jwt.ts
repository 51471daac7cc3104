import { createPublicKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';

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
  readonly audience: string;
  readonly issuer: string;
  readonly algorithms?: readonly string[];
}

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

  constructor(private readonly cfg: TokenKeys) {
    if (cfg.hmac_secret_key) this.keys.hmac = new TextEncoder().encode(cfg.hmac_secret_key);
    if (cfg.rsa_public_key) this.keys.rsa = publicKey(cfg.rsa_public_key, 'rsa', 'rsa_public_key');
    if (cfg.ecdsa_public_key) this.keys.ec = publicKey(cfg.ecdsa_public_key, 'ec', 'ecdsa_public_key');
    if (cfg.ed25519_public_key) this.keys.ed = publicKey(cfg.ed25519_public_key, 'ed25519', 'ed25519_public_key');
    this.allowed = new Set((cfg.algorithms ?? Object.keys(FAMILY)).filter((a) => a in FAMILY));
  }

  get configured(): boolean {
    return Object.keys(this.keys).length > 0;
  }

  async verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new TokenError('invalid', 'malformed token');
    }
    if (!alg || !this.allowed.has(alg)) throw new TokenError('invalid', `algorithm ${String(alg)} not allowed`);
    const key = this.keys[FAMILY[alg]!];
    if (!key) throw new TokenError('invalid', `no key configured for ${alg}`);
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [alg],
        audience: this.cfg.audience || undefined,
        issuer: this.cfg.issuer || undefined,
      });
      return payload;
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw new TokenError('expired', 'token expired');
      throw new TokenError('invalid', e instanceof Error ? e.message : 'invalid token');
    }
  }
}

function publicKey(pem: string, type: string, name: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== type) throw new Error(`${name}: expected a ${type} public key, got ${String(key.asymmetricKeyType)}`);
  return key;
}
