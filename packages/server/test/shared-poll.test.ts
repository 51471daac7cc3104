/**
 * Shared poll subscriptions with the real `centrifuge` SDK
 * (`newSharedPollSubscription`) against a real HTTP backend that signs
 * track signatures and answers the node's refresh polls: one backend poll
 * per key per interval whatever the number of trackers, updates and
 * removals to every tracker, versioned and versionless change detection,
 * reconnect replay, signature refresh, bad input and a failing backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Centrifuge, SharedPollSubscription } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { embedded, SECRET, type EmbeddedNode } from './helpers/embedded.js';
import { POLL_SECRET, recordUpdates, signer, startPollBackend, type PollBackend } from './helpers/poll-backend.js';
import { RawClient } from './helpers/raw.js';
import type { TestContextLike } from './helpers/scope.js';
import { BrowserLikeWebSocket, connectedClient } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

const CH = 'votes:feed';

async function pollNode(
  t: TestContextLike,
  pb: PollBackend,
  shared: Record<string, unknown> = {},
  path = '/refresh',
): Promise<EmbeddedNode> {
  return embedded(t, {
    shared_poll: { hmac_secret_key: POLL_SECRET },
    channel: {
      proxy: { shared_poll_refresh: { endpoint: pb.url + path, timeout: '500ms' } },
      namespaces: [
        {
          name: 'votes',
          subscription_type: 'shared_poll',
          allow_subscribe_for_client: true,
          shared_poll: { refresh_interval: '150ms', mode: 'versioned', ...shared },
        },
        { name: 'news', allow_subscribe_for_client: true },
      ],
    },
  });
}

interface Tracking {
  client: Centrifuge;
  sub: SharedPollSubscription;
  rec: ReturnType<typeof recordUpdates>;
}

async function tracking(t: TestContextLike, node: EmbeddedNode, pb: PollBackend, user: string, keys: string[]): Promise<Tracking> {
  const client = await connectedClient(t, { ws: node.ws, secret: SECRET }, user);
  const sub = client.newSharedPollSubscription(CH, { getSignature: signer(pb, user, CH) });
  const rec = recordUpdates(sub);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  sub.track(keys);
  return { client, sub, rec };
}

const counter = async (n: EmbeddedNode, name: string, labels: Record<string, string> = {}): Promise<number> => {
  const m = (await n.sb.metrics.registry.getSingleMetric(name)?.get()) as
    { values: Array<{ labels: Record<string, unknown>; value: number }> } | undefined;
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);
};

test('N clients tracking the same keys: one backend poll per key per interval, updates and removals reach every tracker', async (t) => {
  const pb = await startPollBackend(t);
  for (const k of ['p1', 'p2', 'p3']) pb.set(k, { votes: 0, k });
  const node = await pollNode(t, pb);
  const N = 8;
  const clients: Tracking[] = [];
  for (let i = 0; i < N; i++) clients.push(await tracking(t, node, pb, `u${i}`, ['p1', 'p2', 'p3']));
  await until('every client to have the three keys', 5000, () => clients.every((c) => c.rec.latest.size === 3));
  for (const c of clients) assert.deepEqual(c.rec.latest.get('p2'), { votes: 0, k: 'p2' });

  await until('five poll cycles', 10_000, async () => (await counter(node, 'switchboard_shared_poll_cycles_total')) >= 5);
  // Requests first, then the cycle count: a cycle is counted before its call goes out.
  const perKey = ['p1', 'p2', 'p3'].map((k) => pb.timesPolled(k));
  const cycles = await counter(node, 'switchboard_shared_poll_cycles_total');
  for (const n of perKey) assert.ok(n <= cycles + 1, `a key polled ${n} times in ${cycles} cycles (+1 first poll) with ${N} trackers`);
  for (const r of pb.polls()) {
    const keys = (r.body.items as Array<{ key: string }>).map((i) => i.key);
    assert.equal(new Set(keys).size, keys.length, 'a key asked twice in one poll');
  }
  assert.equal(pb.signCalls(), N, 'one getSignature per client');

  pb.set('p2', { votes: 1, k: 'p2' });
  await until('the update at every client', 5000, () => clients.every((c) => (c.rec.latest.get('p2') as { votes: number }).votes === 1));
  for (const c of clients) {
    const ups = c.rec.updates.filter((u) => u.key === 'p2');
    assert.deepEqual(
      ups.map((u) => u.version),
      [1, 2],
      'each version once',
    );
  }

  pb.items.delete('p3');
  await until('the removal at every client', 5000, () => clients.every((c) => !c.rec.latest.has('p3')));
  for (const c of clients) {
    assert.equal(c.rec.updates.find((u) => u.key === 'p3' && u.removed)?.removed, true);
    assert.equal(c.sub.trackedKeys().has('p3'), false);
  }
  const before = pb.timesPolled('p3');
  await until('two more cycles', 10_000, async () => (await counter(node, 'switchboard_shared_poll_cycles_total')) >= cycles + 2 + 3);
  assert.equal(pb.timesPolled('p3'), before, 'a removed key is no longer polled');
  for (const c of clients) assert.deepEqual(c.rec.errors, []);
});

test('versioned: a push only when the version grows; versionless: only when the data changes', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('a', { n: 1 });
  const node = await pollNode(t, pb);
  const c = await tracking(t, node, pb, 'v', ['a']);
  await until('first data', 5000, () => c.rec.latest.has('a'));
  // Same version, other data: not an update in versioned mode.
  pb.items.set('a', { data: { n: 99 }, version: 1 });
  const cycles = await counter(node, 'switchboard_shared_poll_cycles_total');
  await until('three cycles', 10_000, async () => (await counter(node, 'switchboard_shared_poll_cycles_total')) >= cycles + 3);
  assert.equal(c.rec.updates.length, 1);
  pb.items.set('a', { data: { n: 2 }, version: 5 });
  await until('the newer version', 5000, () => c.rec.updates.length === 2);
  assert.deepEqual(c.rec.updates[1], { key: 'a', data: { n: 2 }, version: 5, removed: undefined });

  const pb2 = await startPollBackend(t);
  pb2.versioned = false;
  pb2.set('b', { n: 1 });
  const node2 = await pollNode(t, pb2, { mode: 'versionless' });
  const d = await tracking(t, node2, pb2, 'w', ['b']);
  await until('first data', 5000, () => d.rec.latest.has('b'));
  const c2 = await counter(node2, 'switchboard_shared_poll_cycles_total');
  await until('three cycles', 10_000, async () => (await counter(node2, 'switchboard_shared_poll_cycles_total')) >= c2 + 3);
  assert.equal(d.rec.updates.length, 1, 'unchanged data is not pushed again');
  pb2.items.set('b', { data: { n: 2 }, version: 0 });
  await until('the changed data', 5000, () => d.rec.updates.length === 2);
  assert.deepEqual(d.rec.updates[1]!.data, { n: 2 });
  assert.ok(d.rec.updates[1]!.version! > d.rec.updates[0]!.version!, 'synthetic versions grow');
});

test('a reconnect replays the tracked keys with their versions and cached signatures', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('x', { v: 1 });
  pb.set('y', { v: 1 });
  const node = await pollNode(t, pb);
  const c = await tracking(t, node, pb, 'r', ['x', 'y']);
  await until('first data', 5000, () => c.rec.latest.size === 2);
  const signs = pb.signCalls();

  c.client.disconnect();
  await until('the server to drop the keys', 5000, async () => (await counter(node, 'switchboard_shared_poll_keys')) === 0);
  const resubscribed = waitFor(c.sub, 'subscribed');
  c.client.connect();
  await resubscribed;
  await until('the keys tracked again', 5000, async () => (await counter(node, 'switchboard_shared_poll_keys')) === 2);
  assert.equal(pb.signCalls(), signs, 'replayed with the cached signature');
  assert.equal(c.rec.updates.length, 2, 'nothing re-sent: the client had the current versions');

  pb.set('y', { v: 2 });
  await until('the update after reconnect', 5000, () => (c.rec.latest.get('y') as { v: number }).v === 2);
  assert.deepEqual(c.rec.errors, []);
});

test('signature expiry: the SDK refreshes in time (ttl), and an expired one (109) is replaced through getSignature', async (t) => {
  const pb = await startPollBackend(t, { ttl: 2 });
  pb.set('k', { v: 1 });
  const node = await pollNode(t, pb, { track_expired_extra_delay: '1s' });
  const c = await tracking(t, node, pb, 's', ['k']);
  await until('first data', 5000, () => c.rec.latest.has('k'));
  assert.equal(pb.signCalls(), 1);
  await until('the refresh before expiry', 8000, () => pb.signCalls() >= 2);
  // The key is still tracked after its first signature expired past the grace: the refresh re-signed it.
  await new Promise((r) => setTimeout(r, 3500));
  pb.set('k', { v: 2 });
  await until('updates still flow', 5000, () => (c.rec.latest.get('k') as { v: number }).v === 2);

  // A signature long expired: 109, then the SDK asks getSignature and tracks with the fresh one.
  const client = await connectedClient(t, { ws: node.ws, secret: SECRET }, 'e');
  const sub = client.newSharedPollSubscription(CH, { getSignature: signer(pb, 'e', CH) });
  const rec = recordUpdates(sub);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const signs = pb.signCalls();
  sub.track([{ key: 'k', version: 0 }], pb.sign('e', CH, ['k'], 1, Date.now() - 60_000));
  await until('data after the refresh', 5000, () => rec.latest.has('k'));
  assert.equal(rec.errors[0]?.error?.code, 109);
  assert.ok(pb.signCalls() > signs);
});

test('bad input: forged and expired signatures, too many keys, channels not configured for shared poll', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('a', 1);
  const node = await pollNode(t, pb, { max_keys_per_connection: 3 });
  const raw = await RawClient.open(t, node);
  await raw.connect(await mintToken(SECRET, { sub: 'bad' }));
  const sign = (keys: string[], ttl = 0, now?: number): string => pb.sign('bad', CH, keys, ttl, now);

  assert.equal((await raw.command('subscribe', { channel: 'news:x', type: 4 })).error.code, 107, 'not a shared poll namespace');
  assert.equal((await raw.command('subscribe', { channel: 'nope:x', type: 4 })).error.code, 102, 'unknown namespace');
  assert.equal((await raw.command('subscribe', { channel: CH })).error.code, 107, 'a stream subscribe to a shared poll channel');
  assert.equal((await raw.command('sub_refresh', { channel: CH, type: 1, track: [] })).error.code, 103, 'track before subscribe');
  assert.ok((await raw.command('subscribe', { channel: CH, type: 4 })).subscribe);

  const track = (batch: unknown, extra: Record<string, unknown> = {}) =>
    raw.command('sub_refresh', { channel: CH, type: 1, track: [batch], ...extra });
  const forged = await track({ signature: sign(['a']), items: [{ key: 'a' }, { key: 'b' }] });
  assert.deepEqual(forged.error, { code: 103, message: 'permission denied: bad track signature' });
  const otherUser = await track({ signature: pb.sign('someone', CH, ['a']), items: [{ key: 'a' }] });
  assert.equal(otherUser.error.code, 103);
  const otherSecret = await track({ signature: '1:0:' + 'ab'.repeat(32), items: [{ key: 'a' }] });
  assert.equal(otherSecret.error.code, 103);
  assert.equal((await track({ signature: 'garbage', items: [{ key: 'a' }] })).error.code, 103);
  const expired = await track({ signature: sign(['a'], 1, Date.now() - 3_600_000), items: [{ key: 'a' }] });
  assert.equal(expired.error.code, 109);
  const tooMany = await track({ signature: sign(['a', 'b', 'c', 'd']), items: ['a', 'b', 'c', 'd'].map((key) => ({ key })) });
  assert.equal(tooMany.error.code, 106);
  assert.equal((await raw.command('sub_refresh', { channel: CH, type: 1, track: 'x' })).error.code, 107);

  // Nothing of the refused tracks stuck; a good one works and gets the data.
  const good = await track({ signature: sign(['a']), items: [{ key: 'a' }] });
  assert.equal(good.error, undefined);
  assert.equal(good.sub_refresh.expires, undefined, 'a signature without expiry');
  await until('the first poll of a', 5000, () => raw.messages.some((m) => m.push?.pub?.key === 'a'));
  const push = raw.messages.find((m) => m.push?.pub?.key === 'a').push;
  assert.deepEqual(push, { channel: CH, pub: { data: 1, key: 'a', version: 1 } });
  assert.equal(raw.closeCode, undefined, 'bad input answered, connection kept');

  const bad = (kind: string) => counter(node, 'switchboard_bad_input_total', { kind });
  assert.equal(await bad('shared_poll_signature'), 4);
  assert.equal(await bad('shared_poll_signature_expired'), 1);
  assert.equal(await bad('shared_poll_channel'), 1);
  assert.equal(await counter(node, 'switchboard_limit_hits_total', { limit: 'shared_poll_max_keys_per_connection' }), 1);
});

test('a failing backend: errors are counted, nobody is disconnected, polls back off, then data flows again', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('z', { v: 1 });
  const node = await pollNode(t, pb, { refresh_interval: '100ms', max_backoff: '1s' });
  const c = await tracking(t, node, pb, 'f', ['z']);
  await until('first data', 5000, () => c.rec.latest.has('z'));

  for (const fail of ['error', 'http500', 'hang'] as const) {
    pb.fail = fail;
    const errors = await counter(node, 'switchboard_shared_poll_backend_calls_total', { result: 'error' });
    await until(
      `a counted ${fail}`,
      10_000,
      async () => (await counter(node, 'switchboard_shared_poll_backend_calls_total', { result: 'error' })) > errors,
    );
  }
  // Still failing: polls come at the backed-off pace, slower than refresh_interval (up to max_backoff).
  pb.fail = 'error';
  const from = pb.pollTimes.length;
  await until('four more failed polls', 20_000, () => pb.pollTimes.length >= from + 4);
  const gaps = pb.pollTimes
    .slice(from)
    .map((ts, i, a) => (i === 0 ? 0 : ts - a[i - 1]!))
    .slice(1);
  assert.ok(gaps.at(-1)! >= 600, `polls while failing come slower than the interval: gaps ${gaps.join(', ')} ms`);
  assert.equal(c.client.state, 'connected');

  pb.fail = 'none';
  pb.set('z', { v: 2 });
  await until('data after recovery', 10_000, () => (c.rec.latest.get('z') as { v: number }).v === 2);
  assert.ok((await counter(node, 'switchboard_bad_input_total', { kind: 'proxy_shared_poll_refresh_failure' })) >= 2);
});

test('Protobuf clients: track, data as bytes, versions, updates and removals over the binary protocol', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('q1', { n: 1 });
  pb.set('q2', { n: 1 });
  const node = await pollNode(t, pb);
  const c = new ProtobufCentrifuge(node.ws, {
    websocket: BrowserLikeWebSocket,
    token: await mintToken(SECRET, { sub: 'pbuf' }),
    timeout: 5000,
  });
  t.after(() => c.disconnect());
  const sub = c.newSharedPollSubscription(CH, { getSignature: signer(pb, 'pbuf', CH) });
  const got: Array<{ key: string; data: unknown; version: number; removed: boolean }> = [];
  sub.on('update', (ctx) => got.push({ key: ctx.key, data: ctx.data, version: Number(ctx.version ?? 0), removed: !!ctx.removed }));
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  c.connect();
  await ok;
  sub.track(['q1', 'q2']);
  await until('both keys', 5000, () => got.length === 2);
  const q1 = got.find((u) => u.key === 'q1')!;
  assert.deepEqual(JSON.parse(Buffer.from(q1.data as Uint8Array).toString('utf8')), { n: 1 });
  assert.equal(q1.version, 1);
  pb.set('q1', { n: 2 });
  pb.items.delete('q2');
  await until('the update and the removal', 5000, () => got.length === 4);
  const rest = got.slice(2).sort((a, b) => a.key.localeCompare(b.key));
  assert.deepEqual(JSON.parse(Buffer.from(rest[0]!.data as Uint8Array).toString('utf8')), { n: 2 });
  assert.equal(rest[0]!.version, 2);
  assert.deepEqual([rest[1]!.key, rest[1]!.removed], ['q2', true]);
});

test('untrack: a key nobody tracks any more is no longer polled; other trackers of other keys are untouched', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('m', 1);
  pb.set('n', 1);
  const node = await pollNode(t, pb);
  const a = await tracking(t, node, pb, 'ua', ['m', 'n']);
  const b = await tracking(t, node, pb, 'ub', ['n']);
  await until('data', 5000, () => a.rec.latest.size === 2 && b.rec.latest.size === 1);
  a.sub.untrack(['m', 'n']);
  await until('m dropped on the node', 5000, async () => (await counter(node, 'switchboard_shared_poll_keys')) === 1);
  const mPolls = pb.timesPolled('m');
  const cycles = await counter(node, 'switchboard_shared_poll_cycles_total');
  await until('three cycles', 10_000, async () => (await counter(node, 'switchboard_shared_poll_cycles_total')) >= cycles + 3);
  assert.equal(pb.timesPolled('m'), mPolls);
  pb.set('n', 2);
  await until('b still gets n', 5000, () => b.rec.latest.get('n') === 2);
  assert.equal(a.rec.latest.get('n'), 1, 'a untracked n');
});

test('a tracked key whose signature expired and was never refreshed is dropped after track_expired_extra_delay', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('old', 1);
  const node = await pollNode(t, pb, { track_expired_extra_delay: '200ms' });
  const raw = await RawClient.open(t, node);
  await raw.connect(await mintToken(SECRET, { sub: 'lazy' }));
  assert.ok((await raw.command('subscribe', { channel: CH, type: 4 })).subscribe);
  const r = await raw.command('sub_refresh', {
    channel: CH,
    type: 1,
    track: [{ signature: pb.sign('lazy', CH, ['old'], 1), items: [{ key: 'old' }] }],
  });
  assert.equal(r.sub_refresh.expires, true);
  assert.ok(r.sub_refresh.ttl >= 1);
  await until('the key tracked', 5000, async () => (await counter(node, 'switchboard_shared_poll_keys')) === 1);
  await until('the key dropped after expiry', 10_000, async () => (await counter(node, 'switchboard_shared_poll_keys')) === 0);
  assert.equal(raw.closeCode, undefined);
});

test("the server API's unsubscribe ends a shared poll subscription: the client is told (2000) and its keys are no longer polled", async (t) => {
  const pb = await startPollBackend(t);
  pb.set('u', 1);
  const node = await pollNode(t, pb);
  const c = await tracking(t, node, pb, 'kicked', ['u']);
  await until('data', 5000, () => c.rec.latest.has('u'));
  const gone = waitFor(c.sub, 'unsubscribed');
  await node.sb.unsubscribe({ user: 'kicked' }, CH);
  assert.equal((await gone).code, 2000);
  await until('the key dropped on the node', 5000, async () => (await counter(node, 'switchboard_shared_poll_keys')) === 0);
});
