/**
 * The hooks against a real Switchboard node in this process and the real
 * `centrifuge` SDK, rendered by React into happy-dom.
 */
import './dom.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement, type ReactNode } from 'react';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { Centrifuge } from 'centrifuge';
import { SwitchboardProvider, usePresence, useSubscription, useSwitchboard } from '../src/index.js';
import WebSocket from 'ws';
import { startNode } from './server.js';

const config = {
  channel: {
    namespaces: [
      { name: 'quote', allow_subscribe_for_client: true, history_size: 100, history_ttl: '5m', force_recovery: true },
      { name: 'agents', allow_subscribe_for_client: true, presence: true, join_leave: true, allow_presence_for_subscriber: true },
      { name: 'admin' }, // no client may subscribe
    ],
  },
};

const wrap =
  (client: Centrifuge) =>
  ({ children }: { children: ReactNode }): ReactNode =>
    createElement(SwitchboardProvider, { client }, children);
const until = (f: () => void): Promise<void> => waitFor(f, { timeout: 5000, interval: 20 });

test.afterEach(() => cleanup());

test('useSwitchboard: connects, reports the client id, and a refused token as a problem, not a loop', async (t) => {
  const n = await startNode(t, config);
  const ann = await n.client('ann');
  const { result } = renderHook(() => useSwitchboard(), { wrapper: wrap(ann) });
  await until(() => assert.equal(result.current.state, 'connected'));
  assert.ok(result.current.clientId);
  assert.equal(result.current.problem, null);

  const forged = await n.client('eve', { token: 'not.a.jwt' });
  let connects = 0;
  forged.on('connecting', () => connects++);
  const bad = renderHook(() => useSwitchboard(), { wrapper: wrap(forged) });
  await until(() => assert.equal(bad.result.current.state, 'disconnected'));
  assert.equal(bad.result.current.problem?.code, 3500, JSON.stringify(bad.result.current.problem));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(forged.state, 'disconnected', 'the SDK stays down on an invalid token');
  assert.equal(connects, 1);
});

test('SwitchboardProvider with a url makes its own client, connects it, and disconnects it on unmount', async (t) => {
  const n = await startNode(t, config);
  const token = await n.token('ann');
  const wrapper = ({ children }: { children: ReactNode }): ReactNode =>
    createElement(SwitchboardProvider, { url: n.url, options: { websocket: WebSocket, token } }, children);
  const { result, unmount } = renderHook(() => useSwitchboard(), { wrapper });
  await until(() => assert.equal(result.current.state, 'connected'));
  const client = result.current.client;
  unmount();
  assert.equal(client.state, 'disconnected');
});

test('useSubscription: live publications, then a reconnect that recovers the missed ones', async (t) => {
  const n = await startNode(t, config);
  const ann = await n.client('ann');
  const { result } = renderHook(() => useSubscription<{ n: number }>('quote:7'), { wrapper: wrap(ann) });
  await until(() => assert.equal(result.current.state, 'subscribed'));
  assert.equal(result.current.wasRecovering, false);
  await n.sb.publish('quote:7', { n: 1 });
  await until(() =>
    assert.deepEqual(
      result.current.publications.map((p) => p.data.n),
      [1],
    ),
  );

  // Offline: the SDK keeps the subscription's position; what is published meanwhile comes back on reconnect.
  await act(async () => ann.disconnect());
  await until(() => assert.equal(result.current.state, 'subscribing'));
  await n.sb.publish('quote:7', { n: 2 });
  await n.sb.publish('quote:7', { n: 3 });
  await act(async () => ann.connect());
  await until(() =>
    assert.deepEqual(
      result.current.publications.map((p) => p.data.n),
      [1, 2, 3],
    ),
  );
  assert.equal(result.current.state, 'subscribed');
  assert.equal(result.current.wasRecovering, true);
  assert.equal(result.current.recovered, true);
  assert.equal(result.current.recoveries, 1);
  assert.equal(result.current.missed, 2);
  assert.equal(result.current.position?.offset, 3);
});

test('useSubscription: a forbidden channel is a problem with its code, and two hooks share one subscription', async (t) => {
  const n = await startNode(t, config);
  const ann = await n.client('ann');
  const { result } = renderHook(
    () => ({ admin: useSubscription('admin:ops'), a: useSubscription<number>('quote:1'), b: useSubscription<number>('quote:1') }),
    { wrapper: wrap(ann) },
  );
  await until(() => assert.equal(result.current.admin.problem?.code, 103));
  assert.equal(result.current.admin.state, 'unsubscribed');
  await until(() => assert.equal(result.current.b.state, 'subscribed'));
  await n.sb.publish('quote:1', 5);
  await until(() =>
    assert.deepEqual(
      [result.current.a.publications, result.current.b.publications].map((l) => l.map((p) => p.data)),
      [[5], [5]],
    ),
  );
  assert.deepEqual(Object.keys(ann.subscriptions()).sort(), ['admin:ops', 'quote:1'], 'one SDK subscription per channel');
});

test('usePresence: the snapshot on subscribe, then joins and leaves', async (t) => {
  const n = await startNode(t, config);
  const ann = await n.client('ann');
  const { result } = renderHook(() => usePresence('agents:online'), { wrapper: wrap(ann) });
  await until(() => assert.deepEqual(result.current.users, ['ann']));

  const bob = await n.client('bob');
  const sub = bob.newSubscription('agents:online', { joinLeave: true });
  sub.subscribe();
  bob.connect();
  await until(() => assert.deepEqual(result.current.users, ['ann', 'bob']));
  sub.unsubscribe();
  await until(() => assert.deepEqual(result.current.users, ['ann']));
  assert.equal(Object.keys(result.current.clients).length, 1);
});
