/**
 * Calls an embedder's hook so that a synchronous throw becomes a rejection:
 * hooks run from timers, where a throw would take the process down.
 */
export function attempt<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}
