import type { RevocationStore, TokenIdentity } from '../types.js';
import type { RedisBackend } from './backend.js';

/**
 * Revocations as Redis keys with a TTL (the revocation's expiry): a node
 * started later sees every revocation still in force, and nothing outlives
 * its expiry. All keys share one hash tag, so a check is one MGET.
 */
export class RedisRevocations implements RevocationStore {
  constructor(private readonly b: RedisBackend) {}

  private tokenKey(jti: string): string {
    return `${this.b.prefix}.{revoked}.t.${jti}`;
  }

  private userKey(user: string): string {
    return `${this.b.prefix}.{revoked}.u.${user}`;
  }

  async revokeToken(jti: string, expireAt: number): Promise<void> {
    await this.put(this.tokenKey(jti), 1, expireAt);
  }

  async invalidateUser(user: string, issuedBefore: number, expireAt: number): Promise<void> {
    await this.put(this.userKey(user), issuedBefore, expireAt);
  }

  /** Keeps the larger value and the later expiry of what is there and what comes. */
  private async put(key: string, value: number, expireAt: number): Promise<void> {
    const ttl = expireAt - Date.now();
    if (ttl <= 0) return;
    await this.b.run(this.b.first, (s) => s.sbRevoke(key, String(Math.floor(value)), String(Math.ceil(ttl))));
  }

  async isRevoked(token: TokenIdentity): Promise<boolean> {
    const user = this.userKey(token.user);
    const shard = this.b.first;
    const [t, u] =
      token.jti !== undefined
        ? await this.b.run(shard, () => shard.cmd.mget(this.tokenKey(token.jti!), user))
        : [null, await this.b.run(shard, () => shard.cmd.get(user))];
    if (t !== null && t !== undefined) return true;
    return u !== null && u !== undefined && (token.issuedAt ?? 0) < Number(u);
  }
}
