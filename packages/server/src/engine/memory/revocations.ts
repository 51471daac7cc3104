import type { RevocationStore, TokenIdentity } from '../types.js';

/**
 * Revocations in this process, each dropped when it expires (checked on
 * read and swept), so the store holds only what can still matter.
 */
export class MemoryRevocations implements RevocationStore {
  /** jti → expires at (ms). */
  private readonly tokens = new Map<string, number>();
  /** user → tokens issued before this (ms) are invalid, until expiresAt (ms). */
  private readonly users = new Map<string, { issuedBefore: number; expiresAt: number }>();

  async revokeToken(jti: string, expireAt: number): Promise<void> {
    if (expireAt <= Date.now()) return;
    this.tokens.set(jti, Math.max(expireAt, this.tokens.get(jti) ?? 0));
  }

  async invalidateUser(user: string, issuedBefore: number, expireAt: number): Promise<void> {
    if (expireAt <= Date.now()) return;
    const prev = this.users.get(user);
    this.users.set(user, {
      issuedBefore: Math.max(issuedBefore, prev?.issuedBefore ?? 0),
      expiresAt: Math.max(expireAt, prev?.expiresAt ?? 0),
    });
  }

  async isRevoked(token: TokenIdentity): Promise<boolean> {
    const now = Date.now();
    if (token.jti !== undefined) {
      const t = this.tokens.get(token.jti);
      if (t !== undefined && t > now) return true;
    }
    const u = this.users.get(token.user);
    return u !== undefined && u.expiresAt > now && (token.issuedAt ?? 0) < u.issuedBefore;
  }

  /** Revocations kept now (both kinds). */
  get size(): number {
    return this.tokens.size + this.users.size;
  }

  sweep(now = Date.now()): void {
    for (const [k, t] of this.tokens) if (t <= now) this.tokens.delete(k);
    for (const [k, u] of this.users) if (u.expiresAt <= now) this.users.delete(k);
  }
}
