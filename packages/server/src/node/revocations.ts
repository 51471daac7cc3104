import type { ControlMessage } from '../engine/types.js';

/** The token facts a revocation is checked against. */
export interface TokenClaims {
  readonly user: string;
  readonly jti?: string;
  /** Issued-at, unix seconds. */
  readonly iat?: number;
}

type Revoke = Extract<ControlMessage, { type: 'revoke' }>;

/**
 * Token revocations this node has heard of (API `revoke_token` and
 * `invalidate_user_tokens`, through control messages). Held in this node's
 * memory for now; the engine's store replaces the maps behind the same
 * `isRevoked`.
 */
export class RevocationStore {
  private readonly jtis = new Map<string, number>();
  private readonly usersBefore = new Map<string, number>();

  record(msg: Revoke): void {
    if (msg.jti) this.jtis.set(msg.jti, Date.now());
    if (msg.user && msg.issuedBefore) this.usersBefore.set(msg.user, msg.issuedBefore);
  }

  /**
   * Revoked by jti, or issued before the user's invalidation time. A token
   * without `iat` cannot show it was issued after that time, so it counts
   * as older.
   */
  isRevoked = async (claims: TokenClaims): Promise<boolean> => this.revokedNow(claims);

  /** The same check, synchronous, while the maps are local. */
  revokedNow(claims: TokenClaims): boolean {
    if (claims.jti && this.jtis.has(claims.jti)) return true;
    return (claims.iat ?? 0) * 1000 < this.revokedBefore(claims.user);
  }

  /** Unix ms before which the user's tokens are revoked (0 = none). */
  revokedBefore(user: string): number {
    return this.usersBefore.get(user) ?? 0;
  }

  jtiRevoked(jti: string): boolean {
    return this.jtis.has(jti);
  }

  /** Whether a revocation message hits a live connection standing on these claims. */
  static hits(msg: Revoke, claims: TokenClaims): boolean {
    if (msg.jti && claims.jti === msg.jti) return true;
    return !!(msg.user && claims.user === msg.user && msg.issuedBefore && (claims.iat ?? 0) * 1000 < msg.issuedBefore);
  }
}
