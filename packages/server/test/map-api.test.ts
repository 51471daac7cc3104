/**
 * Map channels through the HTTP server API of a `switchboard serve` process
 * (map_publish, map_remove, map_read_state, map_read_stream, map_stats,
 * map_clear) with a real SDK subscriber watching, and server-managed map
 * presence (map_clients, map_users) on an embedded node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { embedded, SECRET } from './helpers/embedded.js';
import { mirrorMap } from './helpers/map-sdk.js';
import { connectedClient } from './helpers/sdk.js';
import { scope } from './helpers/scope.js';
import { startServer, type RunningServer } from './helpers/server.js';

const NAMESPACES = [
  {
    name: 'board',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: { mode: 'persistent', min_page_size: 2, max_keys: 50 },
  },
  { name: 'news', allow_subscribe_for_client: true },
];

describe('map HTTP API', () => {
  let s: RunningServer;
  const S = scope();
  after(() => S.close());

  before(async () => {
    s = await startServer(S, { channel: { namespaces: NAMESPACES }, log: { level: 'error' } });
  });

  test('publish, read pages, stream since, key modes, remove, stats, clear; a subscriber follows', async (t) => {
    const c = await connectedClient(t, s, 'watcher');
    const m = mirrorMap(c, 'board:1');
    await m.until(() => m.syncs === 1, 'sync');
    const r1 = await s.call('map_publish', { channel: 'board:1', key: 'a', data: { v: 1 }, tags: { lane: 'x' } });
    assert.equal(r1.result.offset, 1);
    assert.ok(r1.result.epoch);
    await s.call('map_publish', { channel: 'board:1', key: 'b', b64data: Buffer.from('{"v":2}').toString('base64') });
    await s.call('map_publish', { channel: 'board:1', key: 'c', data: { v: 3 } });
    const exists = await s.call('map_publish', { channel: 'board:1', key: 'a', data: { v: 9 }, key_mode: 'if_new' });
    assert.deepEqual(exists.result, { offset: 3, epoch: r1.result.epoch, suppressed: true, suppress_reason: 'key_exists' });
    const missing = await s.call('map_publish', { channel: 'board:1', key: 'zz', data: 1, key_mode: 'if_exists' });
    assert.equal(missing.result.suppress_reason, 'key_not_found');
    await m.until(() => m.state.size === 3, 'three keys live');
    assert.deepEqual(m.state.get('b'), { v: 2 });

    const p1 = await s.call('map_read_state', { channel: 'board:1', limit: 2 });
    assert.equal(p1.result.publications.length, 2);
    assert.notEqual(p1.result.cursor, '');
    const p2 = await s.call('map_read_state', { channel: 'board:1', limit: 2, cursor: p1.result.cursor });
    assert.equal(p2.result.cursor, '');
    const keys = [...p1.result.publications, ...p2.result.publications].map((e: any) => e.key).sort();
    assert.deepEqual(keys, ['a', 'b', 'c']);
    const a = p1.result.publications.find((e: any) => e.key === 'a');
    assert.deepEqual([a.data, a.tags, a.offset], [{ v: 1 }, { lane: 'x' }, 1]);
    const one = await s.call('map_read_state', { channel: 'board:1', key: 'c' });
    assert.deepEqual(
      one.result.publications.map((e: any) => e.data),
      [{ v: 3 }],
    );

    const rm = await s.call('map_remove', { channel: 'board:1', key: 'a' });
    assert.equal(rm.result.offset, 4);
    const rmAgain = await s.call('map_remove', { channel: 'board:1', key: 'a' });
    assert.equal(rmAgain.result.suppress_reason, 'key_not_found');
    await m.until(() => !m.state.has('a'), 'removal live');

    const st = await s.call('map_read_stream', { channel: 'board:1', since: { offset: 2, epoch: r1.result.epoch } });
    assert.deepEqual(
      st.result.publications.map((e: any) => [e.offset, e.key, e.removed === true]),
      [
        [3, 'c', false],
        [4, 'a', true],
      ],
    );
    const gone = await s.call('map_read_stream', { channel: 'board:1', since: { offset: 2, epoch: 'other' } });
    assert.equal(gone.error.code, 112);
    assert.deepEqual((await s.call('map_stats', { channel: 'board:1' })).result, { num_keys: 2 });
    assert.deepEqual((await s.call('map_clear', { channel: 'board:1' })).result, {});
    assert.deepEqual((await s.call('map_stats', { channel: 'board:1' })).result, { num_keys: 0 });
  });

  test('idempotency key and key_ttl as a duration', async () => {
    const first = await s.call('map_publish', { channel: 'board:idem', key: 'k', data: 1, idempotency_key: 'x1' });
    const again = await s.call('map_publish', { channel: 'board:idem', key: 'k', data: 2, idempotency_key: 'x1' });
    assert.deepEqual(again.result, { ...first.result, suppressed: true, suppress_reason: 'idempotency' });
    await s.call('map_publish', { channel: 'board:idem', key: 'brief', data: 1, key_ttl: '300ms' });
    assert.equal((await s.call('map_stats', { channel: 'board:idem' })).result.num_keys, 2);
    // the memory engine removes lapsed keys within about a second
    const deadline = Date.now() + 5000;
    while ((await s.call('map_stats', { channel: 'board:idem' })).result.num_keys !== 1) {
      assert.ok(Date.now() < deadline, 'the lapsed key goes');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  test('bad input: clear codes in the error body, nothing changed', async () => {
    const notMap = await s.call('map_publish', { channel: 'news:1', key: 'k', data: 1 });
    assert.deepEqual(notMap.error, { code: 107, message: 'bad request: not a map channel' });
    const noData = await s.call('map_publish', { channel: 'board:bad', key: 'k' });
    assert.equal(noData.error.code, 107);
    const noKey = await s.call('map_publish', { channel: 'board:bad', data: 1 });
    assert.equal(noKey.error.code, 107);
    const badMode = await s.call('map_publish', { channel: 'board:bad', key: 'k', data: 1, key_mode: 'sometimes' });
    assert.equal(badMode.error.code, 107);
    const badTtl = await s.call('map_publish', { channel: 'board:bad', key: 'k', data: 1, key_ttl: 'soon' });
    assert.equal(badTtl.error.code, 107);
    for (let i = 0; i < 50; i++) await s.call('map_publish', { channel: 'board:full', key: `k${i}`, data: i });
    const full = await s.call('map_publish', { channel: 'board:full', key: 'one-more', data: 1 });
    assert.equal(full.error.code, 106);
    assert.equal((await s.call('map_stats', { channel: 'board:bad' })).result.num_keys, 0);
    assert.equal((await s.call('map_stats', { channel: 'board:full' })).result.num_keys, 50);
    assert.ok((await s.metric('switchboard_bad_input_total', { kind: 'map_channel_type' })) >= 1, 'wrong channel type counted');
  });
});

test('map presence: one entry per connection in map_clients, one per user in map_users', async (t) => {
  const n = await embedded(t, {
    channel: {
      namespaces: [
        {
          name: 'game',
          allow_subscribe_for_client: true,
          map_clients_presence_channel_prefix: 'clients:',
          map_users_presence_channel_prefix: 'users:',
        },
        { name: 'clients', subscription_type: 'map_clients', allow_subscribe_for_client: true, map: { mode: 'durable', key_ttl: '1s' } },
        { name: 'users', subscription_type: 'map_users', allow_subscribe_for_client: true, map: { mode: 'durable', key_ttl: '1s' } },
      ],
    },
  });
  const server = { ...n, secret: SECRET };
  const watcher = await connectedClient(t, server, 'watcher');
  const clients = mirrorMap(watcher, 'clients:game:abc', {}, 'clients');
  const users = mirrorMap(watcher, 'users:game:abc', {}, 'users');
  await clients.until(() => clients.syncs === 1, 'clients sync');
  await users.until(() => users.syncs === 1, 'users sync');

  const alice1 = await connectedClient(t, server, 'alice');
  const alice2 = await connectedClient(t, server, 'alice');
  const bob = await connectedClient(t, server, 'bob');
  const subs = [alice1, alice2, bob].map((c) => c.newSubscription('game:abc'));
  subs.forEach((s) => s.subscribe());
  await clients.until(() => clients.state.size === 3, 'three connections');
  await users.until(() => users.state.size === 2, 'two users');
  const ids = [alice1, alice2, bob].map((c) => (c as any)._client as string);
  assert.deepEqual([...clients.state.keys()].sort(), [...ids].sort());
  assert.equal(clients.infos.get(ids[2]!)?.user, 'bob');
  assert.deepEqual([...users.state.keys()].sort(), ['alice', 'bob']);

  // entries stay while subscribed, well past key_ttl (kept alive by the node)
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(clients.state.size, 3);
  assert.equal(users.state.size, 2);

  // a connection leaves: its entry goes at once; bob's user entry lapses after key_ttl
  subs[2]!.unsubscribe();
  await clients.until(() => !clients.state.has(ids[2]!), 'bob connection removed');
  await users.until(() => !users.state.has('bob'), 'bob user entry lapsed');
  assert.ok(users.state.has('alice'));
  // one of alice's two connections leaves: alice stays
  alice1.disconnect();
  await clients.until(() => clients.state.size === 1, 'alice1 removed');
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(users.state.has('alice'), 'alice still has a connection');

  // presence channels are server-managed: clients cannot write them
  await assert.rejects((watcher as any).mapPublish('clients:game:abc', 'x', 1), (e: any) => e.code === 103);
});
