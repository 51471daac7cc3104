/**
 * Origin check against cross-site WebSocket hijacking. With no allow-list
 * only same-host origins pass; patterns may use `*` (e.g. `https://*.example.com`).
 */
export function originAllowed(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes('*')) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  if (allowed.length === 0) return host !== undefined && parsed.host.toLowerCase() === host.toLowerCase();
  const o = origin.toLowerCase();
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    if (!p.includes('*')) return p === o;
    const re = new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '$');
    return re.test(o);
  });
}
