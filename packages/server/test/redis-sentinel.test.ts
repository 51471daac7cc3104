/**
 * Switchboard on a real Redis Sentinel set (master, replica, three
 * sentinels, started by the test): the master is killed while publications
 * flow; with replica_wait every acknowledged publication reaches every
 * subscriber, on both nodes, once and in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MASTER_NAME, RedisSentinelSet } from './helpers/redis-sentinel.js';
import { nodeConfig, publishAcked, uniquePrefix } from './helpers/redis.js';
import { offsetsOf, range, subscribedClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

test('Redis Sentinel failover with replica_wait: every acknowledged publication reaches every subscriber once and in order', async (t) => {
  const set = await RedisSentinelSet.start(t);
  const prefix = uniquePrefix('sentinel');
  const cfg = nodeConfig('', prefix, {
    engine: {
      redis: { sentinel_addresses: set.addresses, sentinel_master_name: MASTER_NAME, replica_wait: 1, replica_wait_timeout: '500ms' },
    },
  });
  const a = await startServer(t, cfg, { raw: true });
  const b = await startServer(t, cfg, { raw: true });
  const subs = [await subscribedClient(t, a, 'ann', 'deals'), await subscribedClient(t, b, 'bob', 'deals')];
  const oldMaster = set.master;

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
  set.kill(oldMaster);
  await until('the sentinels promote the replica', 30_000, async () => (await set.currentMaster()) === set.replica);
  // The new master needs a replica for replica_wait: the old one comes back and the sentinels make it one.
  await set.restart(oldMaster, set.replica);
  await publisher;

  assert.deepEqual(acked, range(1, N), 'offsets handed out once, in order');
  await Promise.all(subs.map((s) => s.until(N, 30_000)));
  for (const s of subs) {
    assert.deepEqual(offsetsOf(s), range(1, N), 'every acknowledged publication once, in order');
    assert.ok(!s.subscribed.some((x) => x.wasRecovering && !x.recovered), 'never told it lost anything');
  }
});
