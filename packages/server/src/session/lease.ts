import { Disconnects, DisconnectError, type Disconnect } from '../protocol/codes.js';
import type { ClientInfo } from '../protocol/types.js';
import type { SessionContext } from './context.js';
import { ExpiryTimer } from './expiry.js';
import { attempt } from './hook-call.js';
import type { ClientContext } from './hooks.js';

/** The connection a lease belongs to. */
export interface Leaseholder {
  readonly id: string;
  readonly live: boolean;
  info: ClientInfo;
  hookContext(): ClientContext;
  disconnect(d: Disconnect): void;
}

/** What a lease is granted from (ConnectCredentials, or a refresh). */
export interface Grant {
  /** Unix ms; 0 = never expires. */
  readonly expireAt: number;
  readonly jti?: string;
  readonly iat?: number;
}

/**
 * The credentials a connection stands on now and when they run out. At the
 * expiry a client that refreshes its own token gets `expired_close_delay`
 * more, then 3005; credentials from the backend are renewed through the
 * `onRefresh` hook, retried every second while it fails.
 */
export class CredentialLease {
  private expireAt = 0;
  private jti: string | undefined;
  private iat: number | undefined;
  /** Made on the first expiring grant: most connections never expire, and each timer costs memory. */
  private timer: ExpiryTimer | undefined;

  constructor(
    private readonly ctx: Pick<SessionContext, 'hooks' | 'options' | 'limits' | 'log'>,
    private readonly holder: Leaseholder,
    /** The backend refreshes these credentials (`onRefresh`), not the client. */
    private serverSide = false,
  ) {}

  /** Token-level facts for revocation checks. */
  get identity(): { jti?: string; iat?: number } {
    return { jti: this.jti, iat: this.iat };
  }

  /** Starts the lease on the connect credentials. */
  begin(g: Grant & { readonly serverSideRefresh: boolean }): void {
    this.serverSide = g.serverSideRefresh;
    this.renew(g);
  }

  /** A refresh: the connection now stands on the new token, so later revocations are checked against it. */
  renew(g: Grant): void {
    this.jti = g.jti;
    this.iat = g.iat;
    this.extend(g.expireAt);
  }

  /** A new expiry (unix ms, 0 = never), the same token. */
  extend(expireAt: number): void {
    this.expireAt = expireAt;
    // A client gets expired_close_delay to send its refresh; the backend is asked right away.
    if (expireAt <= 0) {
      this.timer?.clear();
      return;
    }
    this.timer ??= new ExpiryTimer(() => this.expired());
    this.timer.set(expireAt + (this.serverSide ? 0 : this.ctx.options.expired_close_delay));
  }

  end(): void {
    this.timer?.clear();
  }

  /** `expires` and `ttl` of connect and refresh replies (none when the backend refreshes). */
  fields(): { expires?: boolean; ttl?: number } {
    if (this.expireAt <= 0 || this.serverSide) return {};
    return { expires: true, ttl: Math.max(1, Math.floor((this.expireAt - Date.now()) / 1000)) };
  }

  private expired(): void {
    const { holder, ctx } = this;
    const hook = ctx.hooks.onRefresh;
    if (!holder.live) return;
    if (!this.serverSide || !hook) return holder.disconnect(Disconnects.expired);
    attempt(() => hook(holder.hookContext())).then(
      (r) => {
        if (!holder.live) return;
        if (!r || r.expired || !r.expireAt) return holder.disconnect(Disconnects.expired);
        if (r.info !== undefined) holder.info = { user: holder.info.user, client: holder.info.client, connInfo: JSON.stringify(r.info) };
        this.extend(r.expireAt * 1000);
      },
      (e: unknown) => {
        if (!holder.live) return;
        if (e instanceof DisconnectError) return holder.disconnect(e.disconnect);
        // A failing backend must not cut everyone off at once: retry shortly, and say so once per interval.
        if (ctx.limits.logOnce.shouldLog('refresh_hook'))
          ctx.log.warn({ client: holder.id, err: String(e) }, 'refresh hook failed; retrying');
        (this.timer ??= new ExpiryTimer(() => this.expired())).set(Date.now() + 1000);
      },
    );
  }
}
