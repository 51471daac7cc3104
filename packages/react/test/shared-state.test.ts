/**
 * useMap, useLock / useLockHolders and useUserStatus against a real node
 * with map channels, field locks and user status on (the real SDK's
 * newMapSubscription and RPC).
 */
import './dom.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement, type ReactNode } from 'react';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { Centrifuge } from 'centrifuge';
import { SwitchboardProvider, useLock, useLockHolders, useMap, useSubscription, useUserStatus } from '../src/index.js';
import { startNode } from './server.js';

const config = {
  channel: {
    namespaces: [
      {
        name: 'doc',
        subscription_type: 'map',
        allow_subscribe_for_client: true,
        map: { mode: 'persistent', allow_publish_for_subscriber: true, allow_remove_for_subscriber: true },
      },
      { name: 'quote', allow_subscribe_for_client: true, history_size: 10, history_ttl: '1m' },
      { name: 'locks', subscription_type: 'map', allow_subscribe_for_client: true, map: { mode: 'ephemeral', key_ttl: '90s' } },
    ],
  },
  locks: { enabled: true },
  user_status: { enabled: true },
};

const wrap =
  (client: Centrifuge) =>
  ({ children }: { children: ReactNode }): ReactNode =>
    createElement(SwitchboardProvider, { client }, children);
const until = (f: () => void): Promise<void> => waitFor(f, { timeout: 5000, interval: 20 });

test.afterEach(() => cleanup());

test('useMap: the snapshot, then live sets and removals, from the server and from the hook', async (t) => {
  const n = await startNode(t, config);
  await n.sb.mapPublish('doc:1', 'premium', { v: 100 });
  await n.sb.mapPublish('doc:1', 'notes', { v: 'x' });
  const ann = await n.client('ann');
  const { result } = renderHook(() => useMap<{ v: unknown }>('doc:1'), { wrapper: wrap(ann) });
  await until(() => assert.equal(result.current.synced, true));
  assert.deepEqual(result.current.entries, { premium: { v: 100 }, notes: { v: 'x' } });

  await n.sb.mapPublish('doc:1', 'premium', { v: 120 });
  await n.sb.mapRemove('doc:1', 'notes');
  await until(() => assert.deepEqual(result.current.entries, { premium: { v: 120 } }));
  await act(async () => void (await result.current.subscription!.publish('coverage', { v: 'fleet' })));
  await until(() => assert.deepEqual(result.current.entries, { premium: { v: 120 }, coverage: { v: 'fleet' } }));
});

test('useLock + useLockHolders: one holder per field, seen live by the other; release frees it; a stale fence is refused', async (t) => {
  const n = await startNode(t, config);
  const [ann, bob] = [await n.client('ann'), await n.client('bob')];
  const hook = () => ({
    doc: useSubscription('quote:7'),
    lock: useLock('quote:7/premium', { ttlMs: 5000 }),
    holders: useLockHolders('quote:7'),
  });
  const a = renderHook(hook, { wrapper: wrap(ann) });
  const b = renderHook(hook, { wrapper: wrap(bob) });
  await until(() => assert.equal(a.result.current.doc.state, 'subscribed'));
  await until(() => assert.equal(b.result.current.doc.state, 'subscribed'));

  await act(async () => void (await a.result.current.lock.acquire()));
  assert.equal(a.result.current.lock.state, 'held');
  const first = a.result.current.lock.fence!;
  await until(() => assert.equal(b.result.current.holders.entries.premium?.user, 'ann'));
  assert.equal(b.result.current.holders.entries.premium?.token, first.token);

  await act(async () => void (await b.result.current.lock.acquire()));
  assert.equal(b.result.current.lock.state, 'refused');
  assert.equal(b.result.current.lock.problem?.code, 150);

  await act(async () => a.result.current.lock.release());
  await until(() => assert.equal(b.result.current.holders.entries.premium, undefined));
  await act(async () => void (await b.result.current.lock.acquire()));
  assert.equal(b.result.current.lock.state, 'held');
  assert.ok(BigInt(b.result.current.lock.fence!.token) > BigInt(first.token), 'fencing tokens only increase');
  await until(() => assert.equal(a.result.current.holders.entries.premium?.user, 'bob'));

  // Ann's old token is stale now: a fenced publish with it is refused (151), Bob's goes through.
  await assert.rejects(
    n.sb.publish('quote:7', { premium: 1 }, { fence: first } as object),
    (e: { error?: { code: number } }) => e.error?.code === 151,
  );
  await n.sb.publish('quote:7', { premium: 2 }, { fence: b.result.current.lock.fence! } as object);
});

test('useLock: the lease is renewed while held, and lost with the connection', async (t) => {
  const n = await startNode(t, config);
  const ann = await n.client('ann');
  const { result } = renderHook(() => ({ doc: useSubscription('quote:9'), lock: useLock('quote:9/notes', { ttlMs: 1000 }) }), {
    wrapper: wrap(ann),
  });
  await until(() => assert.equal(result.current.doc.state, 'subscribed'));
  await act(async () => void (await result.current.lock.acquire()));
  const firstExpiry = result.current.lock.lease!.expires_at;
  await until(() => assert.ok(result.current.lock.lease!.expires_at > firstExpiry, 'renewed'));
  assert.equal(result.current.lock.state, 'held');
  const holders = await n.sb.lockGet('quote:9');
  assert.equal(holders[0]?.token, result.current.lock.fence!.token, 'the same lease: a renew keeps the token');

  await act(async () => ann.disconnect());
  await until(() => assert.equal(result.current.lock.state, 'lost'));
  assert.ok(result.current.lock.fence, 'the last fence stays for the server to judge');
  await until(async () => assert.deepEqual(await n.sb.lockGet('quote:9'), []));
});

test('useUserStatus: connected users and their last activity, through the RPC', async (t) => {
  const n = await startNode(t, config);
  const ann = await n.client('ann');
  const bob = await n.client('bob');
  bob.connect();
  await bob.ready(5000);
  const { result } = renderHook(() => useUserStatus(['bob', 'nobody'], { refreshMs: 200 }), { wrapper: wrap(ann) });
  await until(() => assert.equal(result.current.statuses.bob?.connected, true));
  assert.ok((result.current.statuses.bob?.active ?? 0) > 0);
  assert.equal(result.current.statuses.nobody?.connected, false);
  bob.disconnect();
  await until(() => assert.equal(result.current.statuses.bob?.connected, false));
});
