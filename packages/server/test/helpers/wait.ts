/**
 * The two ways a test waits, each with a deadline and a message that says
 * what did not happen:
 *
 * - `waitFor` — the next event an emitter fires (optionally one that passes
 *   a filter). For everything that announces itself: SDK events, raw
 *   frames, a socket closing. `collect` records every event and waits for
 *   the n-th through `waitFor`.
 * - `until` — a condition polled until it holds. Only for state with no
 *   event to await: another process's /metrics, /ready or API answers.
 *
 * They are different jobs (push vs pull), so they stay two functions.
 */

/** What both node's EventEmitter and centrifuge's emitter offer. */
export interface Emitterish {
  on(event: string, fn: (...a: any[]) => void): unknown;
  removeListener(event: string, fn: (...a: any[]) => void): unknown;
}

export interface WaitOptions<T> {
  /** Deadline in ms (default 5000). */
  ms?: number;
  /** Only an event for which this holds resolves the wait. */
  filter?: (v: T) => boolean;
  /** An event that fails the wait when it fires first (e.g. a socket's 'closed'). */
  failOn?: string;
}

/** Resolves with the first argument of the next `event` that passes `filter`; rejects after `ms` or on `failOn`. */
export function waitFor<T = any>(em: Emitterish, event: string, opts: WaitOptions<T> = {}): Promise<T> {
  const ms = opts.ms ?? 5000;
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      em.removeListener(event, on);
      if (opts.failOn) em.removeListener(opts.failOn, fail);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    const on = (v: T): void => {
      if (opts.filter && !opts.filter(v)) return;
      done();
      resolve(v);
    };
    const fail = (v: unknown): void => {
      done();
      reject(new Error(`"${opts.failOn}" (${JSON.stringify(v)}) before "${event}"`));
    };
    em.on(event, on);
    if (opts.failOn) em.on(opts.failOn, fail);
  });
}

/** Records every `event` payload; `until(n)` resolves with the items once n have arrived. */
export function collect<T = any>(em: Emitterish, event: string): { items: T[]; until(n: number, ms?: number): Promise<T[]> } {
  const items: T[] = [];
  // Registered before any waitFor below, so the item is recorded when its filter runs.
  em.on(event, (v: T) => items.push(v));
  return {
    items,
    async until(n, ms = 10_000) {
      if (items.length < n) {
        await waitFor(em, event, { ms, filter: () => items.length >= n }).catch(() => {
          throw new Error(`timed out after ${ms} ms: ${items.length}/${n} "${event}" events`);
        });
      }
      return items;
    },
  };
}

/** Thrown from an `until` condition to stop polling at once (e.g. the process it polls has exited). */
export class GiveUp extends Error {}

/**
 * Resolves when `cond()` holds, checking every `every` ms; rejects after `ms`.
 * A condition that throws counts as not yet (the last error is reported),
 * except `GiveUp`, which fails the wait at once.
 */
export async function until(what: string, ms: number, cond: () => boolean | Promise<boolean>, every = 25): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await cond()) return;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? ` (last error: ${last.message})` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Rejects with a clear message when `p` does not settle within `ms` (for promises that are not events). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
