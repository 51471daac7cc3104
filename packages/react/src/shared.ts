/**
 * Several components may use one channel: the SDK allows one subscription per
 * channel and client, so hooks share it and the last one to let go removes it.
 */
import type { Centrifuge, MapSubscription, MapSubscriptionOptions, Subscription, SubscriptionOptions } from 'centrifuge';

type Any = Subscription | MapSubscription;
const users = new WeakMap<Centrifuge, Map<string, number>>();

function count(client: Centrifuge, channel: string, delta: number): number {
  let m = users.get(client);
  if (!m) users.set(client, (m = new Map()));
  const n = (m.get(channel) ?? 0) + delta;
  if (n <= 0) m.delete(channel);
  else m.set(channel, n);
  return n;
}

/** The channel's stream subscription (made and subscribed on first use). */
export function acquireSubscription(client: Centrifuge, channel: string, options?: Partial<SubscriptionOptions>): Subscription {
  const sub = client.getSubscription(channel) ?? client.newSubscription(channel, options);
  count(client, channel, 1);
  sub.subscribe();
  return sub;
}

/** The channel's map subscription (made and subscribed on first use). */
export function acquireMapSubscription(client: Centrifuge, channel: string, options?: MapSubscriptionOptions): MapSubscription {
  const sub = client.getMapSubscription(channel) ?? client.newMapSubscription(channel, options);
  count(client, channel, 1);
  sub.subscribe();
  return sub;
}

/** Lets go of a subscription taken with acquire*: the last user unsubscribes and removes it. */
export function releaseSubscription(client: Centrifuge, sub: Any, kind: 'stream' | 'map'): void {
  if (count(client, sub.channel, -1) > 0) return;
  sub.unsubscribe();
  if (kind === 'map') client.removeMapSubscription(sub as MapSubscription);
  else client.removeSubscription(sub as Subscription);
}
