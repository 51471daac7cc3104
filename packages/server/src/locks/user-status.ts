import type { Config } from '../config/load.js';
import type { UserStatusStore } from '../engine/locks.js';
import type { PresenceManager } from '../engine/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Errors, ReplyError } from '../protocol/codes.js';

export type UserStatusConfig = Config['user_status'];

/** Centrifugo PRO's UserStatus, plus `connected` (a connection on any node now). */
export interface UserStatus {
  readonly user: string;
  /** Unix seconds of the last activity. */
  readonly active?: number;
  /** Unix seconds when last seen connected (now while connected). */
  readonly online?: number;
  readonly connected: boolean;
}

/** Users per get / update / delete call. */
export const MAX_STATUS_USERS = 1000;

/** The presence key of a user's connections (not a channel clients can name: it has a NUL). */
export function userStatusPresenceKey(user: string): string {
  return '\u0000user_status:' + user;
}

const nowSec = (): number => Math.floor(Date.now() / 1000);

/**
 * User status: `active` set on connect, on client commands (at most once
 * per user per node per update_throttle_ms) and by update_user_status;
 * `online` recorded on connect, disconnect and every online_refresh_ms while
 * connected; `connected` from presence across nodes (the engine's presence
 * under a per-user key, which lapses with a dead node).
 */
export class UserStatusService {
  private readonly lastWrite = new Map<string, number>();
  /** Local connections per user. */
  private readonly local = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly cfg: UserStatusConfig,
    private readonly store: UserStatusStore,
    private readonly presence: PresenceManager,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.cfg.enabled;
  }

  start(): void {
    if (!this.cfg.enabled || this.timer) return;
    this.timer = setInterval(() => this.refreshOnline(), this.cfg.online_refresh_ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private write(users: string[], fields: { active?: boolean; online?: boolean }): void {
    this.store.touch(users, fields, nowSec(), this.cfg.expire_s).catch((e: unknown) => {
      this.log.warn({ err: String(e) }, 'user status update failed');
    });
  }

  connected(user: string, client: string): void {
    if (!this.cfg.enabled || user === '') return;
    this.local.set(user, (this.local.get(user) ?? 0) + 1);
    this.lastWrite.set(user, Date.now());
    this.presence.add(userStatusPresenceKey(user), { user, client }).catch((e: unknown) => {
      this.log.warn({ err: String(e) }, 'user status presence add failed');
    });
    this.write([user], { active: true, online: true });
  }

  disconnected(user: string, client: string): void {
    if (!this.cfg.enabled || user === '') return;
    const n = (this.local.get(user) ?? 1) - 1;
    if (n > 0) this.local.set(user, n);
    else {
      this.local.delete(user);
      this.lastWrite.delete(user);
    }
    this.presence.remove(userStatusPresenceKey(user), client, user).catch((e: unknown) => {
      this.log.warn({ err: String(e) }, 'user status presence remove failed');
    });
    this.write([user], { online: true });
  }

  /** A client command of a connected user: activity, throttled per user on this node. */
  activity(user: string): void {
    if (!this.cfg.enabled || user === '') return;
    const now = Date.now();
    const last = this.lastWrite.get(user) ?? 0;
    if (now - last < this.cfg.update_throttle_ms) return;
    this.lastWrite.set(user, now);
    this.write([user], { active: true, online: true });
  }

  private refreshOnline(): void {
    const users = [...this.local.keys()];
    for (let i = 0; i < users.length; i += 500) this.write(users.slice(i, i + 500), { online: true });
  }

  private checkUsers(users: unknown): string[] {
    if (!Array.isArray(users) || users.length === 0 || users.length > MAX_STATUS_USERS || users.some((u) => typeof u !== 'string')) {
      this.metrics.badInput.labels('user_status_bad_users').inc();
      throw new ReplyError({ code: Errors.badRequest.code, message: `bad request: users must be 1 to ${MAX_STATUS_USERS} strings` });
    }
    return users as string[];
  }

  private ensureEnabled(): void {
    if (!this.cfg.enabled) throw new ReplyError(Errors.notAvailable);
  }

  /** Marks users active now (the API's update_user_status, or a client's own RPC). */
  async update(usersIn: unknown): Promise<void> {
    this.ensureEnabled();
    await this.store.touch(this.checkUsers(usersIn), { active: true }, nowSec(), this.cfg.expire_s);
  }

  async get(usersIn: unknown): Promise<UserStatus[]> {
    this.ensureEnabled();
    const users = this.checkUsers(usersIn);
    const [stored, live] = await Promise.all([
      this.store.get(users),
      Promise.all(users.map(async (u) => (await this.presence.stats(userStatusPresenceKey(u))).numClients > 0)),
    ]);
    const now = nowSec();
    return stored.map((s, i) => {
      const connected = live[i]!;
      const out: { user: string; active?: number; online?: number; connected: boolean } = { user: s.user, connected };
      if (s.active !== undefined) out.active = s.active;
      if (connected) out.online = now;
      else if (s.online !== undefined) out.online = s.online;
      return out;
    });
  }

  async remove(usersIn: unknown): Promise<void> {
    this.ensureEnabled();
    await this.store.remove(this.checkUsers(usersIn));
  }
}
