/**
 * Redis faults under a running `switchboard serve` with real clients: Redis
 * killed and restarted empty, and the node's PUB/SUB connection cut while
 * Redis keeps its data. In both a client that may have missed a
 * publication is told (unsubscribe 2500 → resubscribe with recovery): it
 * gets the missed publications or `recovered: false`, never a silent gap.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  NodeProcess,
  OwnRedis,
  nodeConfig,
  offsetsOf,
  range,
  redisCommand,
  subscribedClient,
  uniquePrefix,
  waitUntil,
} from './helpers/redis.js';

test('Redis restart: /ready 503 and API error 100 without a hang; after it returns clients resubscribe with recovered:false and get new publications', async (t) => {
  const redis = await OwnRedis.start(t);
  const node = await NodeProcess.start(t, nodeConfig(redis.url, uniquePrefix('restart')));
  const c = await subscribedClient(t, node.ws, 'ann', 'alerts');
  for (let i = 1; i <= 3; i++) await node.api('publish', { channel: 'alerts', data: { i } });
  await c.until(3);

  await redis.stop();
  await node.waitReady(false, 5000);
  const t0 = Date.now();
  const res = await node.api('publish', { channel: 'alerts', data: { i: 'lost' } });
  assert.equal(res.error?.code, 100, JSON.stringify(res));
  assert.ok(Date.now() - t0 < 1500, `failed within io_timeout (${Date.now() - t0} ms)`);
  const ready = await fetch(node.url + '/ready');
  assert.equal(ready.status, 503);

  await redis.start(); // empty: history and epochs are gone
  await node.waitReady(true, 10_000);
  await waitUntil('the client to resubscribe', 10_000, async () => c.subscribed.length >= 2);
  assert.deepEqual(c.unsubscribed, [2500], 'told: insufficient state');
  assert.deepEqual(c.subscribed.at(-1), { wasRecovering: true, recovered: false });
  const after = await node.api('publish', { channel: 'alerts', data: { i: 4 } });
  assert.equal(after.result.offset, 1, 'a new stream');
  await c.until(4);
  assert.deepEqual(c.pubs.at(-1)!.data, { i: 4 });
});

test('PUB/SUB connection cut while Redis keeps its data: subscribers resync and recover the missed publications from history', async (t) => {
  const redis = await OwnRedis.start(t);
  const a = await NodeProcess.start(t, nodeConfig(redis.url, uniquePrefix('pubsubcut')));
  const b = await NodeProcess.start(t, nodeConfig(redis.url, uniquePrefix('pubsubcut-b')));
  void b; // a second node on the same Redis loses its PUB/SUB link too and must come back
  const clients = await Promise.all(['ann', 'bob'].map((u) => subscribedClient(t, a.ws, u, 'stream')));
  let published = 0;
  const N = 40;
  const publisher = (async () => {
    for (let i = 1; i <= N; i++) {
      const r = await a.api('publish', { channel: 'stream', data: { i } });
      if (r.error) {
        i--; // Redis was busy reconnecting us: the API said so, retry
        await new Promise((res) => setTimeout(res, 20));
        continue;
      }
      published = i;
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  await waitUntil('some published', 10_000, async () => published >= 10);
  assert.equal(await redisCommand(redis.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), ':2', "both nodes' PUB/SUB connections cut");
  await publisher;
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, N), 'all, once, in order');
    assert.deepEqual(c.unsubscribed, [2500]);
    assert.deepEqual(c.subscribed.at(-1), { wasRecovering: true, recovered: true });
  }
});
