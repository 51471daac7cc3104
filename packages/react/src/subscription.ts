/**
 * A channel's stream as React state: the subscription's state, the last
 * publications, and what the last subscribe said about recovery (was the
 * client recovering a position, and did it get every missed publication).
 */
import { useEffect, useRef, useState } from 'react';
import type { PublicationContext, SubscribedContext, Subscription, SubscriptionOptions } from 'centrifuge';
import { useSwitchboard } from './context.js';
import { acquireSubscription, releaseSubscription } from './shared.js';

export type SubscriptionStateName = 'unsubscribed' | 'subscribing' | 'subscribed';

/** A refusal or failure of the subscription (e.g. 103 permission denied, 102 unknown channel). */
export interface SubscriptionProblem {
  code: number;
  message: string;
}

export interface UseSubscriptionOptions<T> {
  /** Called for every publication, in order (recovered ones included). */
  onPublication?: (data: T, ctx: PublicationContext) => void;
  /** How many of the latest publications to keep in `publications` (default 50; 0 keeps none). */
  keep?: number;
  /** Options for the SDK subscription when this hook makes it. */
  options?: Partial<SubscriptionOptions>;
  /** false: do not subscribe (yet). */
  enabled?: boolean;
}

export interface SubscriptionView<T> {
  subscription: Subscription | null;
  state: SubscriptionStateName;
  /** The newest `keep` publications, oldest first. */
  publications: { data: T; offset?: number }[];
  /** From the last `subscribed` event: recovery was attempted (a resubscribe after a disconnect). */
  wasRecovering: boolean;
  /** From the last `subscribed` event: every missed publication was recovered. */
  recovered: boolean;
  /** How many subscribes with recovery succeeded since mount. */
  recoveries: number;
  /** Publications the last successful recovery brought back (stream offsets between the last one seen and the server's top). */
  missed: number;
  /** The stream position after the last subscribe / publication (recoverable channels). */
  position: { offset: number; epoch: string } | null;
  /** Why the subscription ended or failed (cleared on the next subscribe). */
  problem: SubscriptionProblem | null;
}

const initial = <T>(): SubscriptionView<T> => ({
  subscription: null,
  state: 'unsubscribed',
  publications: [],
  wasRecovering: false,
  recovered: false,
  recoveries: 0,
  missed: 0,
  position: null,
  problem: null,
});

/** Subscribes to `channel` while mounted (shared with other hooks on the same channel). */
export function useSubscription<T = unknown>(channel: string | null, opts: UseSubscriptionOptions<T> = {}): SubscriptionView<T> {
  const { client } = useSwitchboard();
  const [view, setView] = useState<SubscriptionView<T>>(initial);
  const onPub = useRef(opts.onPublication);
  onPub.current = opts.onPublication;
  const keep = opts.keep ?? 50;
  const enabled = opts.enabled ?? true;

  useEffect(() => {
    if (!channel || !enabled) return;
    setView(initial());
    const sub = acquireSubscription(client, channel, opts.options);
    const onState = (): void => setView((v) => ({ ...v, subscription: sub, state: sub.state as SubscriptionStateName }));
    const onSubscribed = (ctx: SubscribedContext): void =>
      setView((v) => ({
        ...v,
        subscription: sub,
        state: 'subscribed',
        wasRecovering: ctx.wasRecovering,
        recovered: ctx.recovered,
        recoveries: v.recoveries + (ctx.wasRecovering && ctx.recovered ? 1 : 0),
        missed:
          ctx.wasRecovering && ctx.recovered && ctx.streamPosition && v.position && ctx.streamPosition.epoch === v.position.epoch
            ? ctx.streamPosition.offset - v.position.offset
            : v.missed,
        position: ctx.streamPosition ?? v.position,
        problem: null,
      }));
    const onPublication = (ctx: PublicationContext): void => {
      onPub.current?.(ctx.data as T, ctx);
      setView((v) => ({
        ...v,
        publications: keep > 0 ? [...v.publications, { data: ctx.data as T, offset: ctx.offset }].slice(-keep) : v.publications,
        position: ctx.offset !== undefined && v.position ? { ...v.position, offset: ctx.offset } : v.position,
      }));
    };
    const onUnsubscribed = (ctx: { code: number; reason: string }): void =>
      setView((v) => ({ ...v, state: 'unsubscribed', problem: ctx.code === 0 ? v.problem : { code: ctx.code, message: ctx.reason } }));
    const onError = (ctx: { error: { code: number; message: string } }): void =>
      setView((v) => ({ ...v, problem: { code: ctx.error.code, message: ctx.error.message } }));
    sub.on('state', onState);
    sub.on('subscribed', onSubscribed);
    sub.on('publication', onPublication);
    sub.on('unsubscribed', onUnsubscribed);
    sub.on('error', onError);
    onState();
    return () => {
      sub.removeListener('state', onState);
      sub.removeListener('subscribed', onSubscribed);
      sub.removeListener('publication', onPublication);
      sub.removeListener('unsubscribed', onUnsubscribed);
      sub.removeListener('error', onError);
      releaseSubscription(client, sub, 'stream');
    };
    // opts.options is read when the subscription is made; changing it later has no effect by design.
  }, [client, channel, enabled, keep]);
  return view;
}
