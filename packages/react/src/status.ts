/**
 * Users' status (Switchboard's `user_status.get` RPC, the shape of Centrifugo
 * PRO's user status API): last activity, last seen online, connected now.
 * Read on connect and every `refreshMs`; `markActive` reports the user active.
 */
import { useCallback, useEffect, useState } from 'react';
import { useSwitchboard } from './context.js';

export interface UserStatus {
  user: string;
  /** Last activity, unix seconds (absent when unknown or expired). */
  active?: number;
  /** Last seen connected, unix seconds. */
  online?: number;
  /** Has a connection on some node now. */
  connected: boolean;
}

export interface UserStatusView {
  statuses: Record<string, UserStatus>;
  problem: { code: number; message: string } | null;
  refresh(): Promise<void>;
  markActive(): Promise<void>;
}

export function useUserStatus(users: string[], opts: { refreshMs?: number } = {}): UserStatusView {
  const { client, state } = useSwitchboard();
  const [statuses, setStatuses] = useState<Record<string, UserStatus>>({});
  const [problem, setProblem] = useState<UserStatusView['problem']>(null);
  const list = [...new Set(users)].sort().join('\n');
  const every = opts.refreshMs ?? 5000;

  const refresh = useCallback(async (): Promise<void> => {
    const wanted = list ? list.split('\n') : [];
    if (wanted.length === 0 || client.state !== 'connected') return;
    try {
      const r = await client.rpc('user_status.get', { users: wanted });
      const got = (r.data as { statuses: UserStatus[] }).statuses;
      setStatuses(Object.fromEntries(got.map((s) => [s.user, s])));
      setProblem(null);
    } catch (e) {
      const r = e as { code?: number; message?: string };
      setProblem({ code: r.code ?? 0, message: String(r.message ?? e) });
    }
  }, [client, list]);

  const markActive = useCallback(async (): Promise<void> => {
    await client.rpc('update_user_status', {});
  }, [client]);

  useEffect(() => {
    if (state !== 'connected') return;
    void refresh();
    const timer = setInterval(() => void refresh(), every);
    return () => clearInterval(timer);
  }, [state, refresh, every]);

  return { statuses, problem, refresh, markActive };
}
