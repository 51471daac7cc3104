/**
 * A map channel (the SDK's `newMapSubscription`) as React state: the server's
 * key → value map, replaced on every full sync and patched by each update.
 */
import { useEffect, useState } from 'react';
import type { MapSubscription, MapSubscriptionOptions, MapSyncContext, MapUpdateContext, SubscribedContext } from 'centrifuge';
import { useSwitchboard } from './context.js';
import { acquireMapSubscription, releaseSubscription } from './shared.js';
import type { SubscriptionProblem, SubscriptionStateName } from './subscription.js';

export interface MapView<V> {
  subscription: MapSubscription | null;
  state: SubscriptionStateName;
  /** Key → value, as the server holds it. */
  entries: Record<string, V>;
  /** True once the first snapshot arrived. */
  synced: boolean;
  /** From the last `subscribed` event (positioned maps): recovery attempted / succeeded. */
  wasRecovering: boolean;
  recovered: boolean;
  problem: SubscriptionProblem | null;
}

export interface UseMapOptions {
  options?: MapSubscriptionOptions;
  enabled?: boolean;
}

export function useMap<V = unknown>(channel: string | null, opts: UseMapOptions = {}): MapView<V> {
  const { client } = useSwitchboard();
  const enabled = opts.enabled ?? true;
  const [view, setView] = useState<MapView<V>>({
    subscription: null,
    state: 'unsubscribed',
    entries: {},
    synced: false,
    wasRecovering: false,
    recovered: false,
    problem: null,
  });

  useEffect(() => {
    if (!channel || !enabled) return;
    const sub = acquireMapSubscription(client, channel, opts.options);
    const fromEntries = (list: { key: string; data: unknown }[]): Record<string, V> =>
      Object.fromEntries(list.map((e) => [e.key, e.data as V]));
    const onState = (): void => setView((v) => ({ ...v, subscription: sub, state: sub.state as SubscriptionStateName }));
    const onSubscribed = (ctx: SubscribedContext): void =>
      setView((v) => ({
        ...v,
        subscription: sub,
        state: 'subscribed',
        wasRecovering: ctx.wasRecovering,
        recovered: ctx.recovered,
        problem: null,
        ...(ctx.state ? { entries: fromEntries(ctx.state), synced: true } : {}),
      }));
    const onSync = (ctx: MapSyncContext): void => setView((v) => ({ ...v, entries: fromEntries(ctx.entries), synced: true }));
    const onUpdate = (ctx: MapUpdateContext): void =>
      setView((v) => {
        const entries = { ...v.entries };
        if (ctx.removed) delete entries[ctx.key];
        else entries[ctx.key] = ctx.data as V;
        return { ...v, entries };
      });
    const onUnsubscribed = (ctx: { code: number; reason: string }): void =>
      setView((v) => ({ ...v, state: 'unsubscribed', problem: ctx.code === 0 ? v.problem : { code: ctx.code, message: ctx.reason } }));
    const onError = (ctx: { error: { code: number; message: string } }): void =>
      setView((v) => ({ ...v, problem: { code: ctx.error.code, message: ctx.error.message } }));
    sub.on('state', onState);
    sub.on('subscribed', onSubscribed);
    sub.on('sync', onSync);
    sub.on('update', onUpdate);
    sub.on('unsubscribed', onUnsubscribed);
    sub.on('error', onError);
    onState();
    return () => {
      sub.removeListener('state', onState);
      sub.removeListener('subscribed', onSubscribed);
      sub.removeListener('sync', onSync);
      sub.removeListener('update', onUpdate);
      sub.removeListener('unsubscribed', onUnsubscribed);
      sub.removeListener('error', onError);
      releaseSubscription(client, sub, 'map');
      setView((v) => ({ ...v, subscription: null, state: 'unsubscribed', entries: {}, synced: false }));
    };
  }, [client, channel, enabled]); // opts.options: read when the subscription is made
  return view;
}
