/** Stream meta (offset, epoch) lifetime when a channel's history_meta_ttl is 0: Centrifugo's default, 30 days. */
export const DEFAULT_HISTORY_META_TTL_MS = 30 * 24 * 3600_000;

/** History meta TTL to apply: the channel's, or the default. Never 0: meta must expire. */
export function metaTtl(ms: number): number {
  return ms > 0 ? ms : DEFAULT_HISTORY_META_TTL_MS;
}

/**
 * How long a revocation is kept when the API call gives no `expire_at`.
 * A revocation only matters while the token it revokes is still valid; we
 * cannot see that token's `exp`, so keep it for a week: longer than the
 * connection tokens apps issue in practice (minutes to days), bounded so the
 * store cannot grow for ever. Pass `expire_at` (the token's `exp`) to keep less.
 */
export const DEFAULT_REVOCATION_TTL_MS = 7 * 24 * 3600_000;
