/**
 * Redis faults under a running `switchboard serve` with real clients: Redis
 * killed and restarted empty, and the node's PUB/SUB connection cut while
 * Redis keeps its data. In both a client that may have missed a
 * publication is told (unsubscribe 2500 → resubscribe with recovery): it
 * gets the missed publications or `recovered: false`, never a silent gap.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeConfig, OwnRedis, redisCommand, uniquePrefix } from './helpers/redis.js';
import { offsetsOf, range, subscribedClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

test('Redis restart: /ready 503 and API error 100 without a hang; after it returns clients resubscribe with recovered:false and get new publications', async (t) => {
  const redis = await OwnRedis.start(t);
  const node = await startServer(t, nodeConfig(redis.url, uniquePrefix('restart')), { raw: true });
  const c = await subscribedClient(t, node, 'ann', 'alerts');
  for (let i = 1; i <= 3; i++) await node.call('publish', { channel: 'alerts', data: { i } });
  await c.until(3);

  await redis.stop();
  await node.waitReady(false, 5000);
  const t0 = Date.now();
  const res = await node.call('publish', { channel: 'alerts', data: { i: 'lost' } });
  assert.equal(res.error?.code, 100, JSON.stringify(res));
  assert.ok(Date.now() - t0 < 1500, `failed within io_timeout (${Date.now() - t0} ms)`);
  const ready = await fetch(node.http + '/ready');
  assert.equal(ready.status, 503);

  await redis.start(); // empty: history and epochs are gone
  await node.waitReady(true, 10_000);
  await until('the client to resubscribe', 10_000, async () => c.subscribed.length >= 2);
  assert.deepEqual(c.unsubscribed, [2500], 'told: insufficient state');
  assert.deepEqual(c.subscribed.at(-1), { wasRecovering: true, recovered: false });
  const after = await node.call('publish', { channel: 'alerts', data: { i: 4 } });
  assert.equal(after.result.offset, 1, 'a new stream');
  await c.until(4);
  assert.deepEqual(c.pubs.at(-1)!.data, { i: 4 });
});

test('PUB/SUB connection cut while Redis keeps its data: subscribers on both nodes resync and recover the missed publications from history', async (t) => {
  const redis = await OwnRedis.start(t);
  const a = await startServer(t, nodeConfig(redis.url, uniquePrefix('pubsubcut')), { raw: true });
  // A second node on the same Redis (its own prefix) loses its PUB/SUB link in the same cut and must come back too.
  const b = await startServer(t, nodeConfig(redis.url, uniquePrefix('pubsubcut-b')), { raw: true });
  const clients = await Promise.all(['ann', 'bob'].map((u) => subscribedClient(t, a, u, 'stream')));
  const onB = await subscribedClient(t, b, 'cid', 'stream');
  let published = 0;
  const N = 40;
  const publisher = (async () => {
    for (let i = 1; i <= N; i++) {
      const r = await a.call('publish', { channel: 'stream', data: { i } });
      if (r.error) {
        i--; // Redis was busy reconnecting us: the API said so, retry
        await new Promise((res) => setTimeout(res, 20));
        continue;
      }
      published = i;
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  await until('some published', 10_000, async () => published >= 10);
  assert.equal(await redisCommand(redis.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), ':2', "both nodes' PUB/SUB connections cut");
  await publisher;
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, N), 'all, once, in order');
    assert.deepEqual(c.unsubscribed, [2500]);
    assert.deepEqual(c.subscribed.at(-1), { wasRecovering: true, recovered: true });
  }

  // Node b noticed its cut (its subscriber was told 2500 and resubscribed) and
  // its PUB/SUB link is back: publications through b reach b's subscriber live.
  await onB.subscribedTimes(2);
  assert.deepEqual(onB.unsubscribed, [2500], 'b told its subscriber to resync');
  for (let i = 1; i <= 5; i++) assert.equal((await b.call('publish', { channel: 'stream', data: { i } })).result?.offset, i);
  await onB.until(5, 5000);
  assert.deepEqual(offsetsOf(onB), range(1, 5));
  assert.equal(onB.reconnectCodes.length, 1, 'b kept its client connected (only the initial connecting)');
});
