/**
 * Map subscriptions with the real SDK (`newMapSubscription`) on the memory
 * engine: paginated state then live updates with no gap, recovery of a
 * positioned map, streamless resync, key TTL, client publish/remove rules,
 * client_key, tags filter, per-key fossil deltas, bad input answered with
 * clear codes, and the same flow over Protobuf. Two nodes need Redis (the
 * Redis engine's tests).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import type { Centrifuge } from 'centrifuge';
import { embedded, SECRET } from './helpers/embedded.js';
import { mirrorMap, type MapMirror } from './helpers/map-sdk.js';
import { BrowserLikeWebSocket, connectedClient } from './helpers/sdk.js';
import type { TestContextLike } from './helpers/scope.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';

const NAMESPACES = [
  {
    name: 'doc',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    allow_tags_filter: true,
    map: {
      mode: 'persistent',
      allow_publish_for_subscriber: true,
      allow_remove_for_subscriber: true,
      min_page_size: 10,
      stream_size: 1000,
    },
  },
  {
    name: 'small',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: { mode: 'durable', key_ttl: '1m', stream_size: 3, min_page_size: 1, max_keys: 3, max_value_size: 64, max_key_length: 8 },
  },
  {
    name: 'cursors',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: { mode: 'ephemeral', key_ttl: '1s', allow_publish_for_client: true, allow_remove_for_client: true, client_key: 'client_id' },
  },
  {
    name: 'delta',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    allowed_delta_types: ['fossil'],
    delta_publish: true,
    map: { mode: 'persistent' },
  },
  { name: 'readonly', subscription_type: 'map', allow_subscribe_for_client: true, map: { mode: 'persistent' } },
  { name: 'feed', allow_subscribe_for_client: true, allow_publish_for_client: true },
];

async function node(t: TestContextLike) {
  const n = await embedded(t, { channel: { namespaces: NAMESPACES } });
  return { ...n, secret: SECRET };
}

type Node = Awaited<ReturnType<typeof node>>;

/** Every entry of a map channel as the server holds it (all state pages). */
async function serverState(n: Node, channel: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let cursor = '';
  do {
    const page = await n.sb.mapReadState(channel, { cursor, limit: 1000 });
    for (const e of page.entries) out.set(e.key, e.data);
    cursor = page.cursor;
  } while (cursor !== '');
  return out;
}

async function synced(m: MapMirror, n = 1): Promise<void> {
  await m.until(() => m.syncs >= n, `sync #${n}`);
}

async function disconnectAndBack(c: Centrifuge | ProtobufCentrifuge, meanwhile: () => Promise<void>): Promise<void> {
  const gone = waitFor(c, 'disconnected');
  c.disconnect();
  await gone;
  await meanwhile();
  const back = waitFor(c, 'connected');
  c.connect();
  await back;
}

test('a large map arrives in pages: every key once, with its latest value, in one sync', async (t) => {
  const n = await node(t);
  const N = 1234;
  for (let i = 0; i < N; i++) await n.sb.mapPublish('doc:pages', `k${String(i).padStart(4, '0')}`, { i });
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'doc:pages', { pageSize: 100 });
  await synced(m);
  assert.equal(m.syncs, 1);
  assert.equal(m.state.size, N);
  for (let i = 0; i < N; i += 97) assert.deepEqual(m.state.get(`k${String(i).padStart(4, '0')}`), { i });
  assert.deepEqual(m.updates, [], 'the state came whole, not as updates');
});

test('mutations while the state is paged are neither lost nor applied out of order', async (t) => {
  const n = await node(t);
  const N = 600;
  for (let i = 0; i < N; i++) await n.sb.mapPublish('doc:race', `k${i}`, { v: 0 });
  const c = await connectedClient(t, n, 'u1');
  let writing = true;
  let writes = 0;
  // a writer that updates, adds and removes keys all through the pagination
  const writer = (async () => {
    while (writing) {
      const i = writes++;
      if (i % 7 === 3) await n.sb.mapRemove('doc:race', `k${(i * 13) % N}`);
      else await n.sb.mapPublish('doc:race', `k${(i * 31) % (N + 50)}`, { v: i + 1 });
      if (i % 5 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  const m = mirrorMap(c, 'doc:race', { pageSize: 10 });
  await synced(m);
  // keep writing a little after it went live, then stop and let the last ones arrive
  await new Promise((r) => setTimeout(r, 100));
  writing = false;
  await writer;
  assert.ok(writes > 50, `the writer ran during the subscribe (${writes} writes)`);
  const expected = await serverState(n, 'doc:race');
  await m.until(() => sameMap(m.state, expected), 'the mirror to equal the server state');
  assert.equal(m.syncs, 1);
});

function sameMap(a: Map<string, unknown>, b: Map<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of b) if (JSON.stringify(a.get(k)) !== JSON.stringify(v)) return false;
  return true;
}

test('a positioned map recovers what it missed while disconnected, without a new sync', async (t) => {
  const n = await node(t);
  for (let i = 0; i < 30; i++) await n.sb.mapPublish('doc:rec', `k${i}`, { i });
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'doc:rec', { pageSize: 10 });
  await synced(m);
  await disconnectAndBack(c, async () => {
    await n.sb.mapPublish('doc:rec', 'k1', { i: 'one' });
    await n.sb.mapRemove('doc:rec', 'k2');
    await n.sb.mapPublish('doc:rec', 'new', { i: 'new' });
  });
  await m.until(() => m.subscribed.length === 2, 'resubscribed');
  assert.equal(m.subscribed[1].recovered, true);
  assert.equal(m.subscribed[1].wasRecovering, true);
  await m.until(() => m.state.has('new'), 'the missed publish');
  assert.equal(m.syncs, 1, 'recovered: no second sync');
  assert.deepEqual(m.state.get('k1'), { i: 'one' });
  assert.ok(!m.state.has('k2'));
  assert.deepEqual(
    m.updates.map((u) => u.key),
    ['k1', 'k2', 'new'],
  );
  // and it is live again
  await n.sb.mapPublish('doc:rec', 'after', 1);
  await m.until(() => m.state.has('after'), 'a live update after recovery');
});

test('a positioned map that missed more than its stream keeps resyncs from the state', async (t) => {
  const n = await node(t);
  await n.sb.mapPublish('small:trim', 'a', 1);
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'small:trim');
  await synced(m);
  await disconnectAndBack(c, async () => {
    // stream_size 3: five mutations push the client's position out of the stream
    for (let i = 0; i < 5; i++) await n.sb.mapPublish('small:trim', 'a', i + 10);
  });
  await m.until(() => m.syncs === 2, 'a second sync');
  assert.deepEqual(m.state.get('a'), 14);
});

test('a streamless (ephemeral) map resyncs in full after a disconnect', async (t) => {
  const n = await node(t);
  await n.sb.mapPublish('cursors:room', 'x', { at: 1 }, { keyTtl: 60_000 });
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'cursors:room');
  await synced(m);
  assert.deepEqual(m.state.get('x'), { at: 1 });
  await disconnectAndBack(c, async () => {
    await n.sb.mapPublish('cursors:room', 'y', { at: 2 }, { keyTtl: 60_000 });
  });
  await m.until(() => m.syncs === 2, 'a second full sync');
  assert.notEqual(m.subscribed[1]?.recovered, true);
  assert.deepEqual(m.state.get('y'), { at: 2 });
  assert.equal(m.state.size, 2);
});

test('a key lapses after its TTL: subscribers see it removed', async (t) => {
  const n = await node(t);
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'cursors:ttl');
  await synced(m);
  await n.sb.mapPublish('cursors:ttl', 'short', 1, { keyTtl: 300 });
  await n.sb.mapPublish('cursors:ttl', 'long', 2, { keyTtl: 60_000 });
  await m.until(() => m.state.has('short'), 'the entry');
  await m.until(() => !m.state.has('short'), 'the lapsed entry removed');
  assert.ok(m.updates.some((u) => u.key === 'short' && u.removed));
  assert.ok(m.state.has('long'));
  assert.equal((await n.sb.mapStats('cursors:ttl')).numKeys, 1);
});

test('client publish and remove where the namespace allows it; 103 where it does not', async (t) => {
  const n = await node(t);
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'doc:client');
  await synced(m);
  await m.sub.publish('title', { text: 'hello' });
  await m.until(() => (m.state.get('title') as any)?.text === 'hello', 'own publish');
  await m.sub.remove('title');
  await m.until(() => !m.state.has('title'), 'own remove');

  // not subscribed: allow_publish_for_subscriber does not cover it
  await assert.rejects((c as any).mapPublish('doc:other', 'k', 1), (e: any) => e.code === 103);
  const ro = mirrorMap(c, 'readonly:1');
  await synced(ro);
  await assert.rejects(ro.sub.publish('k', 1), (e: any) => e.code === 103);
  await assert.rejects(ro.sub.remove('k'), (e: any) => e.code === 103);
  assert.equal((await n.sb.mapStats('readonly:1')).numKeys, 0);
});

test('client_key client_id: the key is the connection id, whatever the client sends', async (t) => {
  const n = await node(t);
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'cursors:keys');
  await synced(m);
  await m.sub.publish('anything', { x: 1 });
  const id = (c as any)._client as string;
  await m.until(() => m.state.has(id), 'entry keyed by the client id');
  assert.ok(!m.state.has('anything'));
  await m.sub.remove('whatever');
  await m.until(() => !m.state.has(id), 'own entry removed');
});

test('bad input: wrong channel type, oversize value, long key, too many keys — clear codes, nothing changed', async (t) => {
  const n = await node(t);
  const c = await connectedClient(t, n, 'u1');
  // a stream subscription to a map channel, a map subscription to a stream channel
  // (a refused subscribe ends as 'unsubscribed' with the error's code in the SDK)
  const s1 = c.newSubscription('doc:typed');
  const e1 = waitFor(s1, 'unsubscribed');
  s1.subscribe();
  const u1 = await e1;
  assert.equal(u1.code, 107);
  assert.match(u1.reason, /map channel/);
  const m2 = mirrorMap(c, 'feed:1');
  await m2.until(() => m2.unsubscribed.length > 0, 'refused');
  assert.deepEqual(m2.unsubscribed[0], { code: 107, reason: 'bad request: not a map channel' });
  await assert.rejects((c as any).mapPublish('feed:1', 'k', 1), (e: any) => e.code === 107);
  await assert.rejects(c.publish('doc:typed', { a: 1 }), (e: any) => e.code === 107);
  // API side
  await assert.rejects(n.sb.mapPublish('feed:1', 'k', 1), (e: any) => e.error.code === 107);
  await assert.rejects(n.sb.mapPublish('small:1', 'k', 'x'.repeat(100)), (e: any) => e.error.code === 107 && /64 bytes/.test(e.message));
  await assert.rejects(n.sb.mapPublish('small:1', 'k'.repeat(9), 1), (e: any) => e.error.code === 107 && /longer than 8/.test(e.message));
  await assert.rejects(n.sb.mapPublish('small:1', '', 1), (e: any) => e.error.code === 107);
  for (const k of ['a', 'b', 'c']) await n.sb.mapPublish('small:1', k, 1);
  await assert.rejects(n.sb.mapPublish('small:1', 'd', 1), (e: any) => e.error.code === 106);
  await n.sb.mapPublish('small:1', 'a', 2); // an existing key at the limit is fine
  assert.equal((await n.sb.mapStats('small:1')).numKeys, 3);
  n.sb.collectMetrics();
  const bad = await n.sb.metrics.badInput.get();
  const count = (label: string) => bad.values.filter((v) => Object.values(v.labels).includes(label)).reduce((a, v) => a + v.value, 0);
  assert.ok(count('map_channel_type') >= 4, 'wrong channel types counted');
  assert.ok(count('map_value_size') >= 1 && count('map_key') >= 2, 'oversize value and bad keys counted');
  // the client is still fine
  const m = mirrorMap(c, 'small:1');
  await synced(m);
  assert.equal(m.state.size, 3);
});

test('tags filter: a filtered map subscription sees only matching entries and their changes', async (t) => {
  const n = await node(t);
  await n.sb.mapPublish('doc:tags', 'r1', 1, { tags: { color: 'red' } });
  await n.sb.mapPublish('doc:tags', 'b1', 2, { tags: { color: 'blue' } });
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'doc:tags', { tagsFilter: { key: 'color', cmp: 'eq', val: 'red' } });
  await synced(m);
  assert.deepEqual([...m.state.keys()], ['r1']);
  await n.sb.mapPublish('doc:tags', 'b2', 3, { tags: { color: 'blue' } });
  await n.sb.mapPublish('doc:tags', 'r2', 4, { tags: { color: 'red' } });
  await n.sb.mapRemove('doc:tags', 'r1');
  await m.until(() => m.state.has('r2') && !m.state.has('r1'), 'red changes');
  assert.deepEqual([...m.state.keys()], ['r2']);
  assert.ok(!m.updates.some((u) => u.key.startsWith('b')));
});

test('fossil delta per key: changes of a key go out as deltas against that key, and decode right', async (t) => {
  const n = await node(t);
  const big = (v: number) => ({ text: 'lorem ipsum dolor sit amet '.repeat(20), v });
  await n.sb.mapPublish('delta:1', 'a', big(0));
  await n.sb.mapPublish('delta:1', 'b', { other: true });
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'delta:1', { delta: 'fossil' });
  await synced(m);
  for (let v = 1; v <= 5; v++) {
    await n.sb.mapPublish('delta:1', 'a', big(v));
    await n.sb.mapPublish('delta:1', 'b', { other: v });
  }
  await m.until(() => (m.state.get('a') as any)?.v === 5 && (m.state.get('b') as any)?.other === 5, 'the last values');
  assert.deepEqual(m.state.get('a'), big(5));
  const sub = m.sub as any;
  assert.ok(sub._deltaNumDelta >= 5, `deltas received (${sub._deltaNumDelta})`);
  assert.ok(sub._deltaBytesReceived < sub._deltaBytesDecoded / 2, 'deltas are much smaller than the values');
});

async function protobufClient(t: TestContextLike, n: Node, user: string): Promise<ProtobufCentrifuge> {
  const c = new ProtobufCentrifuge(n.ws, {
    websocket: BrowserLikeWebSocket,
    token: await mintToken(n.secret, { sub: user }),
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
  });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  return c;
}

const decode = (v: unknown) => JSON.parse(Buffer.from(v as Uint8Array).toString('utf8'));

test('Protobuf: pages, live updates, client publish, recovery and removal', async (t) => {
  const n = await node(t);
  for (let i = 0; i < 45; i++) await n.sb.mapPublish('doc:pb', `k${i}`, { i });
  const c = await protobufClient(t, n, 'pb1');
  const m = mirrorMap(c as unknown as Centrifuge, 'doc:pb', { pageSize: 10 });
  await synced(m);
  assert.equal(m.state.size, 45);
  assert.deepEqual(decode(m.state.get('k44')), { i: 44 });
  await m.sub.publish('mine', new TextEncoder().encode(JSON.stringify({ from: 'pb' })));
  await m.until(() => m.state.has('mine'), 'own publish');
  assert.deepEqual(decode(m.state.get('mine')), { from: 'pb' });
  await disconnectAndBack(c, async () => {
    await n.sb.mapRemove('doc:pb', 'k0');
    await n.sb.mapPublish('doc:pb', 'k1', { i: 'one' });
  });
  await m.until(() => !m.state.has('k0') && decode(m.state.get('k1')).i === 'one', 'recovered changes');
  assert.equal(m.syncs, 1);
  assert.equal(m.subscribed[1]?.recovered, true);
});

test('Protobuf: a wrong channel type is 107 there too', async (t) => {
  const n = await node(t);
  const c = await protobufClient(t, n, 'pb2');
  const m = mirrorMap(c as unknown as Centrifuge, 'feed:pb');
  await m.until(() => m.unsubscribed.length > 0, 'refused');
  assert.equal(m.unsubscribed[0]!.code, 107);
});
