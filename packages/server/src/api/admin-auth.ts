import { createHash, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';

/** How long an admin token is good for (the dashboard logs in again after it). */
export const ADMIN_TOKEN_TTL_SECONDS = 12 * 3600;

/**
 * Admin login as Centrifugo's: the password (`admin.password`) buys a token
 * signed with `admin.secret` (HS256 JWT here), which the dashboard sends as
 * `Authorization: token <token>`. Changing the secret logs everyone out.
 */
export class AdminAuth {
  private readonly password: Buffer;
  private readonly key: Uint8Array;

  constructor(password: string, secret: string) {
    this.password = sha(password);
    this.key = new TextEncoder().encode(secret);
  }

  /** Constant-time password check. */
  passwordMatches(presented: unknown): boolean {
    return typeof presented === 'string' && presented !== '' && timingSafeEqual(sha(presented), this.password);
  }

  issue(now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('admin')
      .setIssuedAt(iat)
      .setExpirationTime(iat + ADMIN_TOKEN_TTL_SECONDS)
      .sign(this.key);
  }

  async verify(token: string | undefined): Promise<boolean> {
    if (!token) return false;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], subject: 'admin' });
      return payload.exp !== undefined;
    } catch {
      return false;
    }
  }
}

/** The token of `Authorization: token <t>` (Centrifugo's admin header) or `Bearer <t>`. */
export function adminTokenOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:token|bearer)\s+(\S+)$/i.exec(header.trim());
  return m?.[1];
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Wrong passwords per client address: after `maxFailures` inside `windowMs`
 * every login from that address is refused (429) until the oldest failure
 * ages out, so a password cannot be guessed at speed. Bounded: at most
 * `maxAddresses` addresses are remembered (the oldest is forgotten first).
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly maxFailures = 5,
    readonly windowMs = 60_000,
    private readonly maxAddresses = 10_000,
  ) {}

  /** 0 when `ip` may try now, else the milliseconds until it may. */
  retryAfter(ip: string, now = Date.now()): number {
    const list = this.recent(ip, now);
    if (list.length < this.maxFailures) return 0;
    return Math.max(1, list[0]! + this.windowMs - now);
  }

  failed(ip: string, now = Date.now()): void {
    const list = this.recent(ip, now);
    list.push(now);
    this.failures.delete(ip);
    this.failures.set(ip, list);
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(ip: string): void {
    this.failures.delete(ip);
  }

  private recent(ip: string, now: number): number[] {
    const list = this.failures.get(ip);
    if (!list) return [];
    while (list.length > 0 && list[0]! + this.windowMs <= now) list.shift();
    if (list.length === 0) this.failures.delete(ip);
    return list;
  }
}
