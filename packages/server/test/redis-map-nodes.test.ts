/**
 * Map subscriptions across two Switchboard nodes on one real Redis, with
 * the real SDK's `newMapSubscription`: the state written through node A is
 * what a client on node B gets, in pages, then live with no gap while A
 * keeps writing; a client away while A writes recovers on reconnect; a key
 * that lapses is removed once (both nodes sweep); Redis away answers 100
 * (the SDK retries) and a map works again when it is back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { execute } from '../src/api/executor.js';
import { loadConfig } from '../src/config/load.js';
import { EngineUnavailableError } from '../src/engine/errors.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { embedded, type EmbeddedNode } from './helpers/embedded.js';
import { nodeConfig, OwnRedis, SECRET, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import type { TestContextLike } from './helpers/scope.js';
import { mirrorMap, type MapMirror } from './helpers/map-sdk.js';
import { makeClient } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { until } from './helpers/wait.js';

const NAMESPACES = [
  {
    name: 'doc',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map_clients_presence_channel_prefix: 'clients:',
    map_users_presence_channel_prefix: 'users:',
    map: { mode: 'persistent', stream_size: 10_000, allow_publish_for_subscriber: true, allow_remove_for_subscriber: true },
  },
  { name: 'cursors', subscription_type: 'map', allow_subscribe_for_client: true, map: { mode: 'ephemeral', key_ttl: '1s' } },
  { name: 'clients', subscription_type: 'map_clients', allow_subscribe_for_client: true, map: { mode: 'ephemeral', key_ttl: '3s' } },
  { name: 'users', subscription_type: 'map_users', allow_subscribe_for_client: true, map: { mode: 'ephemeral', key_ttl: '1s' } },
];

/** An embedded node on the Redis engine (`redisUrl`, key prefix `prefix`: nodes with one prefix are one cluster). */
async function mapNode(t: TestContextLike, redisUrl: string, prefix: string): Promise<EmbeddedNode> {
  const config = nodeConfig(redisUrl, prefix, { log: { level: 'error' }, channel: { namespaces: NAMESPACES } });
  return embedded(t, config, { engine: new RedisEngine(loadConfig({ object: config }).config) });
}

/** A connected client of `user` on `node`, mirroring the map `channel` (subscribed). */
async function mapClient(
  t: TestContextLike,
  node: EmbeddedNode,
  user: string,
  channel: string,
  pageSize = 50,
): Promise<{ client: Centrifuge; m: MapMirror }> {
  const client = makeClient(t, node, { token: await mintToken(SECRET, { sub: user }) });
  const m = mirrorMap(client, channel, { pageSize });
  client.connect();
  await m.until(() => m.subscribed.length > 0 && m.syncs > 0, `${user} subscribed to ${channel} and synced`);
  return { client, m };
}

/** The map as node `node` holds it (every page of map_read_state). */
async function serverMap(node: EmbeddedNode, channel: string): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let cursor = '';
  do {
    const page = await node.sb.mapReadState(channel, { cursor, limit: 100 });
    for (const e of page.entries) out.set(e.key, e.data);
    cursor = page.cursor;
  } while (cursor !== '');
  return out;
}

const sorted = (m: Map<string, unknown>): Array<[string, unknown]> => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

test('two nodes: a client on B gets the map written through A in pages, then live with no gap while A writes on', async (t) => {
  const prefix = uniquePrefix('mapnodes');
  const a = await mapNode(t, SHARED_REDIS, prefix);
  const b = await mapNode(t, SHARED_REDIS, prefix);
  for (let i = 0; i < 230; i++) await a.sb.mapPublish('doc:42', `field${i}`, { v: i });
  let stop = false;
  let n = 0;
  // A writer on node A all along (a few hundred mutations a second), until the client on B is live and a little after.
  const writer = (async () => {
    while (!stop) {
      const k = `field${n % 260}`;
      if (n % 7 === 0) await a.sb.mapRemove('doc:42', k);
      else await a.sb.mapPublish('doc:42', k, { v: `w${n}` });
      n++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  let c: MapMirror;
  try {
    c = (await mapClient(t, b, 'ann', 'doc:42', 40)).m;
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    stop = true;
    await writer;
  }
  assert.ok(n > 0);
  const truth = await serverMap(a, 'doc:42');
  await until('the client on B holds the map A wrote', 10_000, () => JSON.stringify(sorted(c.state)) === JSON.stringify(sorted(truth)));
  assert.equal(c.syncs, 1);
});

test('two nodes: a client on B away while A writes recovers the changes on reconnect (no resync)', async (t) => {
  const prefix = uniquePrefix('maprecover');
  const a = await mapNode(t, SHARED_REDIS, prefix);
  const b = await mapNode(t, SHARED_REDIS, prefix);
  await a.sb.mapPublish('doc:7', 'premium', { v: 1 });
  await a.sb.mapPublish('doc:7', 'term', { v: 12 });
  const { client, m: c } = await mapClient(t, b, 'bob', 'doc:7');
  assert.deepEqual(sorted(c.state), [
    ['premium', { v: 1 }],
    ['term', { v: 12 }],
  ]);
  client.disconnect();
  await a.sb.mapPublish('doc:7', 'premium', { v: 2 });
  await a.sb.mapRemove('doc:7', 'term');
  await a.sb.mapPublish('doc:7', 'deductible', { v: 500 });
  client.connect();
  await until('recovered', 10_000, () => c.updates.length === 3);
  assert.deepEqual(
    c.updates.map((u) => [u.key, u.removed]),
    [
      ['premium', false],
      ['term', true],
      ['deductible', false],
    ],
  );
  assert.equal(c.syncs, 1, 'recovered from the stream, not resynced');
  assert.deepEqual(sorted(c.state), [
    ['deductible', { v: 500 }],
    ['premium', { v: 2 }],
  ]);
});

test('two nodes: a key that lapses is removed once for subscribers on both nodes', async (t) => {
  const prefix = uniquePrefix('mapttlnodes');
  const a = await mapNode(t, SHARED_REDIS, prefix);
  const b = await mapNode(t, SHARED_REDIS, prefix);
  const { m: ca } = await mapClient(t, a, 'ann', 'cursors:doc1');
  const { m: cb } = await mapClient(t, b, 'bob', 'cursors:doc1');
  await a.sb.mapPublish('cursors:doc1', 'ann', { x: 1, y: 2 });
  await b.sb.mapPublish('cursors:doc1', 'bob', { x: 3, y: 4 });
  for (const c of [ca, cb]) await until('two cursors, then both lapse', 10_000, () => c.updates.filter((u) => u.removed).length === 2);
  await new Promise((r) => setTimeout(r, 1500)); // a second removal would arrive by now
  for (const c of [ca, cb]) {
    assert.deepEqual(c.updates.map((u) => [u.key, u.removed]).sort(), [
      ['ann', false],
      ['ann', true],
      ['bob', false],
      ['bob', true],
    ]);
    assert.equal(c.state.size, 0);
  }
});

test('two nodes: map presence (map_clients, map_users) shows who is on the document on either node', async (t) => {
  const prefix = uniquePrefix('mappresence');
  const a = await mapNode(t, SHARED_REDIS, prefix);
  const b = await mapNode(t, SHARED_REDIS, prefix);
  const ann = await mapClient(t, a, 'ann', 'doc:9');
  await mapClient(t, b, 'bob', 'doc:9');
  const watcher = makeClient(t, b, { token: await mintToken(SECRET, { sub: 'carol' }) });
  const clients = mirrorMap(watcher, 'clients:doc:9', {}, 'clients');
  const users = mirrorMap(watcher, 'users:doc:9', {}, 'users');
  watcher.connect();
  await clients.until(() => clients.state.size === 2, 'both connections in map_clients');
  await users.until(() => users.state.size === 2, 'both users in map_users');
  assert.deepEqual([...users.state.keys()].sort(), ['ann', 'bob']);
  assert.deepEqual([...clients.infos.values()].map((i) => i.user).sort(), ['ann', 'bob']);
  ann.client.disconnect();
  await clients.until(() => clients.state.size === 1, "ann's connection leaves map_clients");
  await users.until(() => users.state.size === 1 && users.state.has('bob'), "ann's user entry lapses from map_users");
  assert.equal(clients.updates.filter((u) => u.removed).length, 1, 'one removal for the connection that left');
});

test('Redis away: the map API and a map subscribe are answered 100 (the SDK retries); back, both work', async (t) => {
  const own = await OwnRedis.start(t);
  const a = await mapNode(t, own.url, uniquePrefix('mapdown'));
  const { client, m: c } = await mapClient(t, a, 'ann', 'doc:1');
  await own.stop();
  await until('unhealthy', 10_000, () => !a.sb.engine.healthy());
  for (const [method, params] of [
    ['map_publish', { channel: 'doc:1', key: 'k', data: { v: 1 } }],
    ['map_remove', { channel: 'doc:1', key: 'k' }],
    ['map_read_state', { channel: 'doc:1' }],
    ['map_stats', { channel: 'doc:1' }],
  ] as const) {
    const r = await execute(a.sb, method, params);
    assert.equal('error' in r && r.error.code, 100, `${method} answers 100`);
  }
  await assert.rejects(
    a.sb.mapPublish('doc:1', 'k', { v: 1 }),
    (e: unknown) => e instanceof EngineUnavailableError || (e as { error?: { code: number } }).error?.code === 100,
  );
  // A connect needs Redis too (revocations), so the subscribe comes from the connection that is up.
  const m2 = mirrorMap(client, 'doc:2');
  await m2.until(() => m2.errors.some((e) => e.error?.code === 100), 'a subscribe error 100');
  assert.equal(m2.unsubscribed.length, 0, 'temporary: the SDK keeps trying');
  await own.start();
  await until('a publish goes through once Redis is back', 15_000, async () =>
    a.sb.mapPublish('doc:1', 'k', { v: 2 }).then(
      () => true,
      () => false,
    ),
  );
  await a.sb.mapPublish('doc:2', 'k', { v: 3 });
  await m2.until(() => m2.syncs > 0 && (m2.state.get('k') as { v: number } | undefined)?.v === 3, 'the retried subscribe synced');
  await c.until(() => (c.state.get('k') as { v: number } | undefined)?.v === 2, 'the first subscriber resubscribed and holds it', 15_000);
});
