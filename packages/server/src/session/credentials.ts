import type { IncomingMessage } from 'node:http';
import type { JWTPayload } from 'jose';
import { KeySourceError, TokenError } from '../auth/jwt.js';
import { Disconnects, DisconnectError, Errors, ReplyError } from '../protocol/codes.js';
import type { ParamsOf } from '../protocol/params.js';
import type { RawJSON } from '../protocol/types.js';
import { connectClaims } from './claims.js';
import type { SessionContext, TokenCheck } from './context.js';
import type { Json } from './hooks.js';

/**
 * Who a connection is and for how long, however it was established: the
 * `onConnecting` hook (in-process or the connect proxy) or a connection token.
 */
export interface ConnectCredentials {
  readonly user: string;
  readonly info?: RawJSON;
  /** Server-side subscriptions the credentials name. */
  readonly channels: readonly string[];
  readonly subs: Readonly<Record<string, { readonly info?: RawJSON; readonly data?: RawJSON }>>;
  /** Unix ms when the connection expires; 0 = never. */
  readonly expireAt: number;
  readonly jti?: string;
  readonly iat?: number;
  /** Returned to the client in the connect reply. */
  readonly replyData?: RawJSON;
  /** The backend refreshes them (`onRefresh`), not the client. */
  readonly serverSideRefresh: boolean;
}

/** The connection asking, as credentials checks log and hand it to hooks. */
export interface Applicant {
  readonly id: string;
  /** The session id, made only when a hook is told it. */
  session(): string;
  readonly ip: string;
  readonly request: IncomingMessage;
}

type Ctx = Pick<SessionContext, 'hooks' | 'credentials' | 'options' | 'metrics' | 'log' | 'limits'>;

/** Credentials of a connect command; 101 when there are none and anonymous connections are not allowed (nor client.insecure). */
export async function connectCredentials(ctx: Ctx, who: Applicant, p: ParamsOf<'connect'>): Promise<ConnectCredentials> {
  const token = p.token ?? '';
  if (ctx.hooks.onConnecting) {
    const r = await ctx.hooks.onConnecting({
      client: who.id,
      session: who.session(),
      request: who.request,
      token: token || undefined,
      data: p.data as Json | undefined,
      name: p.name ?? undefined,
      version: p.version ?? undefined,
    });
    if (r) {
      return {
        user: r.user,
        info: r.info !== undefined ? JSON.stringify(r.info) : undefined,
        channels: [...(r.channels ?? [])],
        subs: {},
        expireAt: (r.expireAt ?? 0) * 1000,
        replyData: r.data !== undefined ? JSON.stringify(r.data) : undefined,
        serverSideRefresh: ctx.hooks.onRefresh !== undefined,
      };
    }
  }
  if (token) {
    const claims = connectClaims(await verifyToken(ctx, ctx.credentials.tokens, token, 'connect', who), ctx.options.token.clock_skew);
    await checkNotRevoked(ctx, claims);
    return { ...claims, serverSideRefresh: false };
  }
  // client.insecure: a connection without a token is anonymous (a token given is still checked, so demos can name users).
  if (!ctx.options.allow_anonymous_connect_without_token && !ctx.options.insecure) throw new ReplyError(Errors.unauthorized);
  return { user: '', channels: [], subs: {}, expireAt: 0, serverSideRefresh: false };
}

/** Credentials of a client's refresh command: a new token of the same user (3500 otherwise). */
export async function refreshCredentials(
  ctx: Ctx,
  who: { readonly id: string; readonly ip: string },
  user: string,
  token: string,
): Promise<ConnectCredentials> {
  const claims = connectClaims(await verifyToken(ctx, ctx.credentials.tokens, token, 'refresh', who), ctx.options.token.clock_skew);
  if (claims.user !== user) throw new DisconnectError(Disconnects.invalidToken);
  await checkNotRevoked(ctx, claims);
  return { ...claims, serverSideRefresh: false };
}

async function checkNotRevoked(ctx: Ctx, claims: { user: string; jti?: string; iat?: number }): Promise<void> {
  if (await ctx.credentials.isRevoked(claims)) {
    ctx.metrics.badInput.labels('revoked_token').inc();
    throw new DisconnectError(Disconnects.invalidToken);
  }
}

/**
 * Verifies a token and maps what went wrong to the protocol: expired → 109;
 * invalid → 3500 for connection tokens, 103 for subscription tokens; the
 * key source down → 100 (temporary, the client retries), logged once per interval.
 */
export async function verifyToken(
  ctx: Pick<SessionContext, 'metrics' | 'log' | 'limits'>,
  verifier: TokenCheck,
  token: string,
  what: 'connect' | 'refresh' | 'subscribe' | 'sub_refresh',
  who: { readonly id: string; readonly ip: string },
): Promise<JWTPayload> {
  try {
    return await verifier.verify(token);
  } catch (e) {
    if (e instanceof TokenError) {
      ctx.metrics.badInput.labels(`${what}_token_${e.kind}`).inc();
      if (e.kind === 'expired') throw new ReplyError(Errors.tokenExpired);
      ctx.log.info({ client: who.id, ip: who.ip, reason: e.message }, `invalid ${what} token`);
      if (what === 'subscribe' || what === 'sub_refresh') throw new ReplyError(Errors.permissionDenied);
      throw new DisconnectError(Disconnects.invalidToken);
    }
    if (e instanceof KeySourceError) {
      ctx.metrics.badInput.labels('token_key_source_unavailable').inc();
      if (ctx.limits.logOnce.shouldLog('jwks')) ctx.log.error({ err: e.message }, 'cannot verify tokens: key source unavailable');
      throw new ReplyError(Errors.internal);
    }
    throw e;
  }
}
