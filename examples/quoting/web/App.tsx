/**
 * The quoting app's front end: sign-in by cookie session, then one
 * `centrifuge` client (its token from /api/token) for the whole page, used
 * through @switchboard/react's hooks.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { Centrifuge, UnauthorizedError } from 'centrifuge';
import { SwitchboardProvider, useSubscription, useSwitchboard } from '@switchboard/react';
import { api, isApiError } from './api';
import type { User } from '../shared/model';
import type { PublicationOf } from '../shared/realtime-types';
import { AgentDesk } from './AgentDesk';
import { ClientDesk } from './ClientDesk';

type Me = { user: User; expiresAt: number };

export function Root() {
  const [me, setMe] = useState<Me | null>(null);
  const [signedOut, setSignedOut] = useState<string | null>(null);
  useEffect(() => {
    api<Me>('/api/me').then(setMe, (e) => setSignedOut(isApiError(e) ? e.message : String(e)));
  }, []);
  if (signedOut !== null) return <Login reason={signedOut} onSignedIn={(m) => (setMe(m), setSignedOut(null))} />;
  if (!me) return <p className="muted">Loading…</p>;
  return <Connected me={me.user} onSignOut={(why) => (setMe(null), setSignedOut(why))} />;
}

function Login({ reason, onSignedIn }: { reason: string; onSignedIn: (m: Me) => void }) {
  const users = [
    ['alice', 'Alice (agent)'],
    ['bob', 'Bob (agent)'],
    ['carol', 'Carol (client)'],
    ['dave', 'Dave (admin)'],
  ];
  const signIn = async (user: string) => {
    await api('/api/login', { user });
    onSignedIn(await api<Me>('/api/me'));
  };
  return (
    <section className="login" data-testid="login">
      <h2>Sign in</h2>
      <p className="muted" data-testid="login-reason">
        {reason}
      </p>
      {users.map(([id, label]) => (
        <button key={id} data-testid={`login-${id}`} onClick={() => void signIn(id!)}>
          {label}
        </button>
      ))}
    </section>
  );
}

function Connected({ me, onSignOut }: { me: User; onSignOut: (why: string) => void }) {
  const client = useMemo(() => {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/connection/websocket`;
    return new Centrifuge(url, {
      // The SDK asks for a token on connect and before it expires; a session that is gone ends it cleanly.
      getToken: async () => {
        try {
          return (await api<{ token: string }>('/api/token')).token;
        } catch (e) {
          if (isApiError(e) && e.status === 401) throw new UnauthorizedError(e.message);
          throw e;
        }
      },
      minReconnectDelay: 200,
      maxReconnectDelay: 3000,
    });
  }, []);
  return (
    <SwitchboardProvider client={client}>
      <Shell me={me} onSignOut={onSignOut} />
    </SwitchboardProvider>
  );
}

function Shell({ me, onSignOut }: { me: User; onSignOut: (why: string) => void }) {
  const { state, problem, client } = useSwitchboard();
  const wasConnected = useRef(false);
  if (state === 'connected') wasConnected.current = true;
  const signOut = async () => {
    await api('/api/logout', {}).catch(() => {});
    client.disconnect();
    onSignOut('Signed out.');
  };
  // 1: the SDK's getToken got a 401 (UnauthorizedError); 109: the server refused a refresh with an expired token.
  // Both are terminal: the SDK does not reconnect, and the page says why.
  const unauthorized = state === 'disconnected' && (problem?.code === 1 || problem?.code === 109);
  return (
    <>
      <header>
        <h1>Quoting</h1>
        <span className={`badge ${state}`} data-testid="connection-state">
          {state}
        </span>
        <span className="who" data-testid="me">
          {me.name} · {me.role}
        </span>
        <button onClick={() => void signOut()}>Sign out</button>
      </header>
      {unauthorized && (
        <div className="banner error" data-testid="session-problem">
          Your session has expired or is missing ({problem!.message}). Real-time updates stopped.{' '}
          <button onClick={() => onSignOut('Your session expired: sign in again.')}>Sign in again</button>
        </div>
      )}
      {!unauthorized && state === 'disconnected' && problem && (
        <div className="banner error" data-testid="connection-problem">
          Disconnected: {problem.message} (code {problem.code}).
        </div>
      )}
      {state === 'connecting' && wasConnected.current && (
        <div className="banner info" data-testid="offline">
          Connection lost: reconnecting… (what you miss meanwhile is recovered when it is back)
        </div>
      )}
      {me.role === 'client' ? <ClientDesk me={me} /> : <AgentDesk me={me} />}
    </>
  );
}

/** A room the user may try to enter: shows that it is in, or why not (e.g. 103 permission denied). */
export function RoomProbe({ channel }: { channel: string }) {
  const [on, setOn] = useState(false);
  const sub = useSubscription(channel, { enabled: on, keep: 5 });
  return (
    <li data-testid={`room-${channel}`}>
      <code>{channel}</code>{' '}
      {!on ? (
        <button onClick={() => setOn(true)}>Enter</button>
      ) : sub.problem ? (
        <span className="room-problem" data-testid="room-problem">
          Forbidden: {sub.problem.message} ({sub.problem.code})
        </span>
      ) : (
        <span className="muted">{sub.state}</span>
      )}
    </li>
  );
}

export function RoomsPanel({ rooms }: { rooms: string[] }) {
  return (
    <section>
      <h2>Rooms</h2>
      <ul>
        {rooms.map((r) => (
          <RoomProbe key={r} channel={r} />
        ))}
      </ul>
    </section>
  );
}

type Notification = Extract<PublicationOf<'notifications:x'>, { type: 'notification.created' }>;

/** The user's notifications; an urgent one records how much of the bulk stream had arrived before it. */
export function Notifications({ me, bulkSeen }: { me: User; bulkSeen: () => number }) {
  const [items, setItems] = useState<(Notification & { seenBulk: number })[]>([]);
  const sub = useSubscription<Notification>(`notifications:#${me.id}`, {
    keep: 0,
    onPublication: (n) => setItems((l) => [{ ...n, seenBulk: bulkSeen() }, ...l].slice(0, 20)),
  });
  return (
    <section>
      <h2>Notifications</h2>
      <ul data-testid="notifications" data-state={sub.state}>
        {items.length === 0 && <li className="muted">none yet</li>}
        {items.map((n) => (
          <li key={n.id} className={`notif ${n.priority}`} data-testid={`notification-${n.priority}`} data-bulk-seen={n.seenBulk}>
            {n.priority === 'urgent' ? '⚠ ' : ''}
            {n.title}
            {n.priority === 'urgent' && <div className="muted">arrived after {n.seenBulk} bulk analytics ticks</div>}
          </li>
        ))}
      </ul>
    </section>
  );
}
