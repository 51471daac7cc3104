/**
 * A map subscription of the real SDK (`newMapSubscription` and the presence
 * variants) mirrored into a JS Map the way an app keeps it: `sync` replaces
 * everything, `update` sets or deletes one key. Records syncs, subscribes and
 * errors so tests can tell a recovery from a full resync.
 */
import type { Centrifuge } from 'centrifuge';

export interface MapMirror {
  readonly sub: any;
  /** key → data, as the app sees it now. */
  readonly state: Map<string, unknown>;
  /** key → info of the entry (presence maps carry ClientInfo). */
  readonly infos: Map<string, any>;
  /** How many `sync` events (full states) arrived. */
  syncs: number;
  /** Every `update` in arrival order. */
  readonly updates: Array<{ key: string; data: unknown; removed: boolean }>;
  /** Subscribed contexts (recovered / wasRecovering flags). */
  readonly subscribed: any[];
  readonly errors: any[];
  /** Unsubscribed contexts: a refused subscribe (code ≥ 100, not temporary) ends here with its code. */
  readonly unsubscribed: Array<{ code: number; reason: string }>;
  /** Resolves when `cond` holds after some event (rejects after `ms`). */
  until(cond: () => boolean, what: string, ms?: number): Promise<void>;
}

export type MapKind = 'map' | 'clients' | 'users';

/** Subscribes a map mirror on `client` (already created; connect it yourself or before). */
export function mirrorMap(client: Centrifuge, channel: string, opts: Record<string, unknown> = {}, kind: MapKind = 'map'): MapMirror {
  const c = client as any;
  const o = { minResubscribeDelay: 50, maxResubscribeDelay: 300, ...opts };
  const sub =
    kind === 'map'
      ? c.newMapSubscription(channel, o)
      : kind === 'clients'
        ? c.newMapClientsSubscription(channel, o)
        : c.newMapUsersSubscription(channel, o);
  const m: MapMirror = {
    sub,
    state: new Map(),
    infos: new Map(),
    syncs: 0,
    updates: [],
    subscribed: [],
    errors: [],
    unsubscribed: [],
    async until(cond, what, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!cond()) {
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `timed out waiting for ${what}: ${JSON.stringify([...m.state.entries()].slice(0, 5))} (${m.state.size} keys, ${m.syncs} syncs)`,
          );
        await new Promise<void>((resolve) => {
          const events = ['update', 'sync', 'subscribed', 'error', 'unsubscribed'];
          const done = (): void => {
            clearTimeout(timer);
            for (const e of events) sub.removeListener(e, done);
            resolve();
          };
          const timer = setTimeout(done, Math.min(left, 200));
          for (const e of events) sub.on(e, done);
        });
      }
    },
  };
  sub.on('sync', (ctx: any) => {
    m.syncs++;
    m.state.clear();
    m.infos.clear();
    for (const e of ctx.entries) {
      m.state.set(e.key, e.data);
      if (e.info) m.infos.set(e.key, e.info);
    }
  });
  sub.on('update', (ctx: any) => {
    m.updates.push({ key: ctx.key, data: ctx.data, removed: !!ctx.removed });
    if (ctx.removed) {
      m.state.delete(ctx.key);
      m.infos.delete(ctx.key);
    } else {
      m.state.set(ctx.key, ctx.data);
      if (ctx.info) m.infos.set(ctx.key, ctx.info);
    }
  });
  sub.on('subscribed', (ctx: any) => m.subscribed.push(ctx));
  sub.on('error', (ctx: any) => m.errors.push(ctx));
  sub.on('unsubscribed', (ctx: any) => m.unsubscribed.push({ code: ctx.code, reason: ctx.reason }));
  sub.subscribe();
  return m;
}
