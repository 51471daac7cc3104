/**
 * Who is in a channel: the presence snapshot taken on every subscribe
 * (so a reconnect refreshes it), kept current by join and leave events.
 * Needs presence (and join_leave for live changes) in the channel's namespace.
 */
import { useEffect, useState } from 'react';
import type { ClientInfo, JoinContext, LeaveContext } from 'centrifuge';
import { useSwitchboard } from './context.js';
import { acquireSubscription, releaseSubscription } from './shared.js';
import type { SubscriptionProblem } from './subscription.js';

export interface PresenceView {
  /** Client id → who. */
  clients: Record<string, ClientInfo>;
  /** Distinct users present, sorted. */
  users: string[];
  problem: SubscriptionProblem | null;
}

const usersOf = (clients: Record<string, ClientInfo>): string[] => [...new Set(Object.values(clients).map((c) => c.user))].sort();

export function usePresence(channel: string | null): PresenceView {
  const { client } = useSwitchboard();
  const [view, setView] = useState<PresenceView>({ clients: {}, users: [], problem: null });

  useEffect(() => {
    if (!channel) return;
    let live = true;
    // joinLeave: ask for join/leave pushes (when this hook is the one that makes the subscription).
    const sub = acquireSubscription(client, channel, { joinLeave: true });
    const set = (f: (c: Record<string, ClientInfo>) => Record<string, ClientInfo>): void =>
      setView((v) => {
        const clients = f(v.clients);
        return { clients, users: usersOf(clients), problem: null };
      });
    const refresh = (): void => {
      sub.presence().then(
        (r) => live && set(() => ({ ...r.clients })),
        (e: { code: number; message: string }) => live && setView((v) => ({ ...v, problem: { code: e.code, message: e.message } })),
      );
    };
    const onJoin = (ctx: JoinContext): void => set((c) => ({ ...c, [ctx.info.client]: ctx.info }));
    const onLeave = (ctx: LeaveContext): void =>
      set((c) => {
        const next = { ...c };
        delete next[ctx.info.client];
        return next;
      });
    sub.on('subscribed', refresh);
    sub.on('join', onJoin);
    sub.on('leave', onLeave);
    if (sub.state === 'subscribed') refresh();
    return () => {
      live = false;
      sub.removeListener('subscribed', refresh);
      sub.removeListener('join', onJoin);
      sub.removeListener('leave', onLeave);
      releaseSubscription(client, sub, 'stream');
    };
  }, [client, channel]);
  return view;
}
