import type { JWTPayload } from 'jose';
import { Disconnects, DisconnectError, Errors, ReplyError } from '../protocol/codes.js';
import type { RawJSON } from '../protocol/types.js';

export interface ConnectClaims {
  readonly user: string;
  readonly info?: RawJSON;
  readonly channels: readonly string[];
  readonly subs: Readonly<Record<string, { info?: RawJSON; data?: RawJSON }>>;
  /** Unix ms when the connection expires; 0 = never. */
  readonly expireAt: number;
  readonly jti?: string;
  readonly iat?: number;
  readonly meta?: RawJSON;
}

export interface SubClaims {
  readonly info?: RawJSON;
  readonly expireAt: number;
  readonly override: Readonly<Record<string, boolean>>;
}

const invalid = (): never => {
  throw new DisconnectError(Disconnects.invalidToken);
};

/** `info` (JSON) or `b64info` (base64 of JSON) → raw JSON text. */
function infoOf(p: JWTPayload, onBad: () => never): RawJSON | undefined {
  if (p.info !== undefined) return JSON.stringify(p.info);
  if (typeof p.b64info === 'string') {
    try {
      return JSON.stringify(JSON.parse(Buffer.from(p.b64info, 'base64').toString('utf8')));
    } catch {
      return onBad();
    }
  }
  return undefined;
}

function expireAtOf(p: JWTPayload, onBad: () => never): number {
  if (p.expire_at !== undefined && p.expire_at !== null) {
    if (typeof p.expire_at !== 'number' || p.expire_at < 0) return onBad();
    return p.expire_at * 1000;
  }
  return typeof p.exp === 'number' ? p.exp * 1000 : 0;
}

/**
 * Claims of a verified connection token; a claim of the wrong shape makes the token invalid (3500).
 * `skewMs` is the tolerated clock difference (client.token.clock_skew), so a token the verifier
 * accepted within the skew is not refused here as expired.
 */
export function connectClaims(p: JWTPayload, skewMs = 0): ConnectClaims {
  if (p.sub !== undefined && typeof p.sub !== 'string') invalid();
  const channels = p.channels ?? [];
  if (!Array.isArray(channels) || !channels.every((c) => typeof c === 'string')) invalid();
  const subs: Record<string, { info?: RawJSON; data?: RawJSON }> = {};
  if (p.subs !== undefined) {
    if (p.subs === null || typeof p.subs !== 'object' || Array.isArray(p.subs)) invalid();
    for (const [ch, opts] of Object.entries(p.subs as Record<string, unknown>)) {
      const o = (opts && typeof opts === 'object' ? opts : {}) as Record<string, unknown>;
      subs[ch] = {
        info: o.info !== undefined ? JSON.stringify(o.info) : undefined,
        data: o.data !== undefined ? JSON.stringify(o.data) : undefined,
      };
    }
  }
  const expireAt = expireAtOf(p, invalid);
  if (expireAt > 0 && expireAt + skewMs <= Date.now()) throw new ReplyError(Errors.tokenExpired);
  return {
    user: (p.sub as string | undefined) ?? '',
    info: infoOf(p, invalid),
    channels: channels as string[],
    subs,
    expireAt,
    jti: typeof p.jti === 'string' ? p.jti : undefined,
    iat: typeof p.iat === 'number' ? p.iat : undefined,
    meta: p.meta !== undefined ? JSON.stringify(p.meta) : undefined,
  };
}

const denied = (): never => {
  throw new ReplyError(Errors.permissionDenied);
};

/** Claims of a verified subscription token, checked against the subscriber and channel (103 on mismatch). */
export function subClaims(p: JWTPayload, user: string, channel: string, skewMs = 0): SubClaims {
  if ((p.sub ?? '') !== user) denied();
  if (p.channel !== channel) denied();
  const expireAt = expireAtOf(p, denied);
  if (expireAt > 0 && expireAt + skewMs <= Date.now()) throw new ReplyError(Errors.tokenExpired);
  const override: Record<string, boolean> = {};
  if (p.override && typeof p.override === 'object') {
    for (const [k, v] of Object.entries(p.override as Record<string, unknown>)) {
      if (v && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'boolean')
        override[k] = (v as { value: boolean }).value;
    }
  }
  return { info: infoOf(p, denied), expireAt, override };
}
