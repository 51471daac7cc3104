/**
 * Origin check against cross-site WebSocket hijacking. With no allow-list
 * only same-host origins pass; patterns may use `*` (e.g. `https://*.example.com`,
 * or `http://localhost:*` for any port).
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
    // A `*` in the port position (`http://localhost:*`) matches a port number or none, nothing else.
    const port = p.endsWith(':*');
    const body = port ? p.slice(0, -2) : p;
    const re = new RegExp('^' + body.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + (port ? '(:[0-9]{1,5})?' : '') + '$');
    return re.test(o);
  });
}
