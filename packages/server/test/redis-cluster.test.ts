/**
 * Switchboard nodes on a real Redis Cluster (3 masters, 3 replicas, started
 * by the test): every engine script runs there, fan-out and recovery cross
 * nodes for channels on every master, and a master failing over keeps the
 * guarantees: with replica_wait every acknowledged publication reaches every
 * subscriber once and in order; without it a promoted replica that lost the
 * stream's tail changes the epoch instead of handing out an offset again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RedisCluster, infoField } from './helpers/redis-cluster.js';
import { nodeConfig, publishAcked, uniquePrefix } from './helpers/redis.js';
import { offsetsOf, range, subscribedClient, type Received } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

function clusterNode(cluster: RedisCluster, prefix: string, redis: Record<string, unknown> = {}): Record<string, unknown> {
  return nodeConfig('', prefix, { engine: { redis: { cluster_addresses: cluster.addresses, ...redis } } });
}

test('Redis Cluster: three nodes publish without an idempotency key, fan out across nodes and recover on channels of every master', async (t) => {
  const cluster = await RedisCluster.start(t);
  const prefix = uniquePrefix('cluster');
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => startServer(t, clusterNode(cluster, prefix), { raw: true })));
  const channels = ['quotes', 'alerts', 'agents', 'news', 'ops', 'room-7'];
  const masters = new Set(await Promise.all(channels.map((ch) => cluster.masterOf(`${prefix}.s.{${ch}}`))));
  assert.ok(masters.size >= 2, `the channels' streams live on ${masters.size} masters`);

  const subs: Received[] = [];
  for (const ch of channels) for (const node of [b!, c!]) subs.push(await subscribedClient(t, node, `u-${subs.length}`, ch));
  for (let i = 1; i <= 5; i++) {
    for (const ch of channels) {
      const r = await a!.call('publish', { channel: ch, data: { ch, i } });
      assert.deepEqual(r.error, undefined, `publish on ${ch}: ${JSON.stringify(r)}`);
      assert.equal(r.result.offset, i);
    }
  }
  await Promise.all(subs.map((s) => s.until(5)));
  for (const s of subs) assert.deepEqual(offsetsOf(s), range(1, 5));

  // An idempotent publish is the same publication.
  const first = await a!.call('publish', { channel: 'quotes', data: { x: 1 }, idempotency_key: 'k1' });
  const again = await b!.call('publish', { channel: 'quotes', data: { x: 1 }, idempotency_key: 'k1' });
  assert.equal(again.result.offset, first.result.offset);

  // History and presence from another node.
  const hist = await c!.call('history', { channel: 'alerts', limit: -1 });
  assert.deepEqual(
    hist.result.publications.map((p: { data: { i: number } }) => p.data.i),
    range(1, 5),
  );
  const presence = await a!.call('presence_stats', { channel: 'alerts' });
  assert.equal(presence.result.num_clients, 2);

  // A client away while publications go by recovers them on reconnect.
  const away = subs.find((s) => s.sub.channel === 'news')!;
  away.client.disconnect();
  for (let i = 6; i <= 8; i++) await a!.call('publish', { channel: 'news', data: { ch: 'news', i } });
  away.client.connect();
  await away.subscribedTimes(2);
  assert.deepEqual(away.subscribed.at(-1), { wasRecovering: true, recovered: true });
  await away.until(8);
  assert.deepEqual(offsetsOf(away), range(1, 8));

  // Every node sees the others in the registry.
  await until('three nodes in info', 10_000, async () => (await a!.call('info', {})).result?.nodes?.length === 3);
});

test('Redis Cluster failover with replica_wait: every acknowledged publication reaches every subscriber once and in order', async (t) => {
  const cluster = await RedisCluster.start(t);
  const prefix = uniquePrefix('failover');
  const redis = { replica_wait: 1, replica_wait_timeout: '500ms' };
  const a = await startServer(t, clusterNode(cluster, prefix, redis), { raw: true });
  const b = await startServer(t, clusterNode(cluster, prefix, redis), { raw: true });
  const subs = [await subscribedClient(t, a, 'ann', 'deals'), await subscribedClient(t, b, 'bob', 'deals')];
  const master = await cluster.masterOf(`${prefix}.s.{deals}`);
  const [replica] = await cluster.replicasOf(master);
  assert.ok(replica, 'the master has a replica');

  const N = 60;
  const acked: number[] = [];
  let epoch = '';
  const publisher = (async () => {
    for (let i = 1; i <= N; i++) {
      const r = await publishAcked(i % 2 ? a : b, 'deals', { i }, `deal-${i}`);
      acked.push(r.offset);
      epoch ||= r.epoch;
      assert.equal(r.epoch, epoch, 'the epoch holds: nothing acknowledged was lost');
    }
  })();
  await until('publishing under way', 20_000, async () => acked.length >= 15);
  cluster.kill(master);
  await until('the replica promoted', 30_000, async () => (await infoField(replica, 'replication', 'role')) === 'master');
  // Until a replica is back the new master has none, and replica_wait refuses publishes (100).
  await cluster.rejoinAsReplica(master, replica);
  await publisher;

  assert.deepEqual(acked, range(1, N), 'offsets handed out once, in order');
  await Promise.all(subs.map((s) => s.until(N, 30_000)));
  for (const s of subs) {
    assert.deepEqual(offsetsOf(s), range(1, N), 'every acknowledged publication once, in order');
    assert.deepEqual(
      s.pubs.map((p) => (p.data as { i: number }).i),
      range(1, N),
    );
    assert.ok(!s.subscribed.some((x) => x.wasRecovering && !x.recovered), 'never told it lost anything');
  }
});

test('Redis Cluster: a promoted replica that lost the stream tail gets a new epoch; no offset is handed out again with other data', async (t) => {
  const cluster = await RedisCluster.start(t);
  const prefix = uniquePrefix('losttail');
  const a = await startServer(t, clusterNode(cluster, prefix), { raw: true });
  const s = await subscribedClient(t, a, 'ann', 'book');
  const master = await cluster.masterOf(`${prefix}.s.{book}`);
  const [replica] = await cluster.replicasOf(master);
  assert.ok(replica);

  for (let i = 1; i <= 5; i++) await publishAcked(a, 'book', { i }, `b-${i}`);
  await until('the replica has the first five', 10_000, async () => {
    const [m, r] = await Promise.all([master, replica].map((p) => infoField(p, 'replication', 'master_repl_offset')));
    return m !== undefined && m === r;
  });
  // The replica stops taking the stream (paused), the master acknowledges three more, then dies.
  cluster.pause(replica);
  const before = await a.call('publish', { channel: 'book', data: { i: 6 } });
  for (let i = 7; i <= 8; i++) await a.call('publish', { channel: 'book', data: { i } });
  await s.until(8);
  cluster.kill(master);
  cluster.resume(replica);
  await until('the replica promoted', 30_000, async () => (await infoField(replica, 'replication', 'role')) === 'master');

  const after = await publishAcked(a, 'book', { i: 'after' }, 'after');
  assert.notEqual(after.epoch, before.result.epoch, 'a new epoch: the old offsets 6..8 are not handed out again under the old one');
  await until('the subscriber resynced', 30_000, async () => s.subscribed.length >= 2);
  assert.ok(
    s.subscribed.slice(1).every((x) => !x.recovered),
    `told it may have lost publications: ${JSON.stringify(s.subscribed)}`,
  );
  await until('a publication after the resync arrives', 30_000, async () => {
    await a.call('publish', { channel: 'book', data: { i: 'later' } });
    return s.pubs.some((p) => (p.data as { i: unknown }).i === 'later');
  });
  // What the subscriber holds under the old epoch is what was published under it; nothing else arrived with those offsets.
  const oldEpoch = s.pubs.filter((p) => p.offset <= 8 && typeof (p.data as { i: unknown }).i === 'number');
  for (const p of oldEpoch) assert.equal((p.data as { i: number }).i, p.offset);
});
