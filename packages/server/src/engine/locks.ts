/**
 * Engine roles for collaborative field locks and user status (docs/LOCKS.md,
 * docs/USER-STATUS.md). A lock key is `<document>/<field>`; the store keeps
 * one lease per key and a fencing token per key that only ever increases
 * (across release, expiry and nodes: the counter is never dropped).
 * Time is the store's own clock (Redis's on Redis), so every node agrees on
 * when a lease ends.
 */

export interface LockHolder {
  readonly user: string;
  readonly client: string;
}

export interface LockLease {
  readonly key: string;
  /** Decimal integer text. */
  readonly token: string;
  readonly holder: LockHolder;
  /** Unix ms (store clock). */
  readonly expiresAt: number;
  /** Unix ms (store clock) when this token was issued. */
  readonly acquiredAt: number;
}

export type LockOutcome =
  | {
      readonly ok: true;
      readonly lease: LockLease;
      /** The same holder already had it: same token, later expiry. */
      readonly renewed: boolean;
      /** A lease whose time was up (not yet swept) that this one took the place of: it ended at its expiry. */
      readonly replaced?: LockLease;
    }
  | { readonly ok: false; readonly reason: 'held'; readonly lease: LockLease }
  | { readonly ok: false; readonly reason: 'not_held' };

export type ReleaseOutcome =
  { readonly ok: true; readonly lease: LockLease; /** Unix ms (store clock). */ readonly at: number } | { readonly ok: false };

/** A fence check of a publication: `ok` (token is the current one), `stale` (older), `forged` (never issued). */
export type FenceOutcome = 'ok' | 'stale' | 'forged';

export interface LockStore {
  /** Takes the lease unless a live lease of another client holds it (the same client: renew). */
  acquire(key: string, holder: LockHolder, ttlMs: number): Promise<LockOutcome>;
  /** Extends the live lease with this token (and this client, when given). */
  renew(key: string, token: string, client: string | undefined, ttlMs: number): Promise<LockOutcome>;
  /** Ends the live lease with this token (and this client, when given). */
  release(key: string, token: string, client: string | undefined): Promise<ReleaseOutcome>;
  /** Live leases of a document's fields. */
  list(document: string): Promise<LockLease[]>;
  /** Compares a token with the last one issued for the key. */
  fence(key: string, token: string): Promise<FenceOutcome>;
  /** Removes leases whose time is up; each removed lease is returned to exactly one caller, cluster-wide. */
  expire(): Promise<LockLease[]>;
}

export interface StoredUserStatus {
  readonly user: string;
  /** Unix seconds of the last activity. */
  readonly active?: number;
  /** Unix seconds when last seen connected. */
  readonly online?: number;
}

export interface UserStatusStore {
  /** Sets `active` and/or `online` to `nowSec` (never moves them back); the entry lives `expireS` from now. */
  touch(users: readonly string[], fields: { active?: boolean; online?: boolean }, nowSec: number, expireS: number): Promise<void>;
  get(users: readonly string[]): Promise<StoredUserStatus[]>;
  remove(users: readonly string[]): Promise<void>;
}

/** `quote:42/premium` → document `quote:42`, field `premium` (split at the last `/`). */
export function splitLockKey(key: string): { document: string; field: string } {
  const i = key.lastIndexOf('/');
  return { document: key.slice(0, i), field: key.slice(i + 1) };
}
