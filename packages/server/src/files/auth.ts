import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import type { ChannelRules } from '../auth/channels.js';
import type { TokenVerifier } from '../auth/jwt.js';
import { ReplyError } from '../protocol/codes.js';

/** Who is asking: the user of a connection JWT, or of an upload token (which names its one channel). */
export interface FilePrincipal {
  readonly user: string;
  /** Upload token: the only channel it may attach to. */
  readonly channel?: string;
  /** Upload token: a size limit below files.max_size. */
  readonly maxSize?: number;
  /** Connection JWT: its `channels` claim (server-side subscriptions), which also grant downloads. */
  readonly channels?: readonly string[];
}

/** A refusal: HTTP status and the reason shown in the JSON body (and counted). */
export class FileRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'FileRefusal';
  }
}

const UPLOAD_AUDIENCE = 'switchboard:file-upload';

export interface FileAuthDeps {
  readonly tokens: TokenVerifier;
  readonly channels: ChannelRules;
  readonly isRevoked: (t: { user: string; jti?: string; iat?: number }) => Promise<boolean>;
}

/**
 * Credentials of file requests: connection JWTs (as the client connects with),
 * upload tokens the backend issues (HS256 with files.secret, audience
 * `switchboard:file-upload`, one channel), and signed download URLs
 * (HMAC-SHA256 of id and expiry with files.secret).
 */
export class FileAuth {
  private readonly secret: Buffer;

  constructor(
    secret: string,
    private readonly deps: FileAuthDeps,
  ) {
    this.secret = secret ? Buffer.from(secret) : randomBytes(32);
  }

  /** The principal of an `Authorization: Bearer` header; 401 when absent or invalid. */
  async principal(header: string | undefined): Promise<FilePrincipal> {
    const m = header ? /^bearer\s+(\S+)$/i.exec(header.trim()) : null;
    if (!m) throw new FileRefusal(401, 'unauthorized: Authorization: Bearer <token> required');
    const token = m[1]!;
    let aud: unknown;
    try {
      aud = decodeJwt(token).aud;
    } catch {
      throw new FileRefusal(401, 'unauthorized: malformed token');
    }
    if (aud === UPLOAD_AUDIENCE) {
      try {
        const { payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'], audience: UPLOAD_AUDIENCE });
        if (typeof payload.sub !== 'string' || typeof payload.channel !== 'string') throw new Error('claims');
        const maxSize = typeof payload.max_size === 'number' && payload.max_size > 0 ? payload.max_size : undefined;
        return { user: payload.sub, channel: payload.channel, maxSize };
      } catch {
        throw new FileRefusal(401, 'unauthorized: invalid upload token');
      }
    }
    let p;
    try {
      p = await this.deps.tokens.verify(token);
    } catch {
      throw new FileRefusal(401, 'unauthorized: invalid token');
    }
    const user = typeof p.sub === 'string' ? p.sub : '';
    const jti = typeof p.jti === 'string' ? p.jti : undefined;
    if (await this.deps.isRevoked({ user, jti, iat: p.iat })) throw new FileRefusal(401, 'unauthorized: token revoked');
    const channels = Array.isArray(p.channels) ? p.channels.filter((c): c is string => typeof c === 'string') : [];
    return { user, channels };
  }

  /** May this principal attach a file to the channel? Throws 403 (or 400 for a bad channel name). */
  checkAttach(who: FilePrincipal, channel: string): void {
    const r = this.resolve(channel);
    if (who.channel !== undefined) {
      if (who.channel !== channel) throw new FileRefusal(403, 'permission denied: the upload token is for another channel');
      return;
    }
    if (who.user === '') throw new FileRefusal(403, 'permission denied: anonymous uploads are not allowed');
    if (!r.options.allow_file_upload || r.private) throw new FileRefusal(403, 'permission denied: no file uploads in this channel');
    if (r.allowedUsers && !r.allowedUsers.includes(who.user)) throw new FileRefusal(403, 'permission denied');
  }

  /** The channel's subscribe permission for a connection JWT (no subscription token, no onSubscribe hook). */
  checkDownload(who: FilePrincipal, channel: string): void {
    const r = this.resolve(channel);
    if (who.channel !== undefined) throw new FileRefusal(403, 'permission denied: an upload token does not download');
    if (who.channels?.includes(channel)) return;
    const ns = r.options;
    const ok = r.private
      ? false
      : r.allowedUsers
        ? ns.allow_user_limited_channels && who.user !== '' && r.allowedUsers.includes(who.user)
        : who.user === ''
          ? ns.allow_subscribe_for_anonymous
          : ns.allow_subscribe_for_client;
    if (!ok) throw new FileRefusal(403, 'permission denied: no subscribe permission for the channel');
  }

  private resolve(channel: string) {
    try {
      return this.deps.channels.resolve(channel);
    } catch (e) {
      if (e instanceof ReplyError) throw new FileRefusal(e.error.code === 102 ? 404 : 400, `bad channel: ${e.error.message}`);
      throw e;
    }
  }

  /** An upload token for one user and channel (what the backend hands its client). */
  async uploadToken(opts: {
    user: string;
    channel: string;
    ttlMs: number;
    maxSize?: number;
  }): Promise<{ token: string; expireAt: number }> {
    this.resolve(opts.channel);
    const expireAt = Math.floor((Date.now() + opts.ttlMs) / 1000);
    const claims: Record<string, unknown> = { channel: opts.channel };
    if (opts.maxSize) claims.max_size = opts.maxSize;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(opts.user)
      .setAudience(UPLOAD_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(expireAt)
      .sign(this.secret);
    return { token, expireAt };
  }

  private mac(id: string, expires: number): Buffer {
    return createHmac('sha256', this.secret).update(`${id}:${expires}`).digest();
  }

  /** The query string of a download URL valid until `expires` (unix seconds). */
  signedQuery(id: string, expires: number): string {
    return `expires=${expires}&sig=${this.mac(id, expires).toString('base64url')}`;
  }

  /** True when `sig` signs `id` until `expires` and that time has not passed. */
  signatureValid(id: string, expires: string | null, sig: string | null): boolean {
    if (!expires || !sig || !/^\d{1,12}$/.test(expires)) return false;
    const exp = Number(expires);
    if (exp * 1000 <= Date.now()) return false;
    const given = Buffer.from(sig, 'base64url');
    const want = this.mac(id, exp);
    return given.length === want.length && timingSafeEqual(given, want);
  }
}
