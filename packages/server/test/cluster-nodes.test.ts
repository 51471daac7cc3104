/**
 * Several `switchboard serve` processes sharing a Redis, with the real
 * `centrifuge` client: fan-out across three nodes, a node killed with
 * SIGKILL, a node drained with SIGTERM. A TCP proxy plays the load
 * balancer, so the client keeps one URL and lands on whichever node is
 * behind it (no sticky sessions).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpProxy } from './helpers/net.js';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { offsetsOf, range, subscribedClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

test('three nodes: publications from the API of each reach every client once, in order', async (t) => {
  const prefix = uniquePrefix('three');
  const cfg = nodeConfig(SHARED_REDIS, prefix);
  const nodes = await Promise.all([0, 1, 2].map(() => startServer(t, cfg, { raw: true })));
  const clients = [];
  for (let i = 0; i < 6; i++) clients.push(await subscribedClient(t, nodes[i % 3]!, `user${i}`, 'news'));

  const N = 30;
  for (let i = 1; i <= N; i++) {
    const res = await nodes[i % 3]!.call('publish', { channel: 'news', data: { i } });
    assert.equal(res.result.offset, i, JSON.stringify(res));
  }
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, N));
    assert.deepEqual(
      c.pubs.map((p) => (p.data as { i: number }).i),
      range(1, N),
    );
  }

  // Every node sees the others, and presence is cluster-wide.
  // (Nodes announce their counts every few seconds.)
  await until('info to list three nodes with six clients in all', 10_000, async () => {
    const info = (await nodes[1]!.call('info')).result.nodes as Array<{ num_clients: number }>;
    return info.length === 3 && info.reduce((s, n) => s + n.num_clients, 0) === 6;
  });
  assert.deepEqual((await nodes[2]!.call('presence_stats', { channel: 'news' })).result, { num_clients: 6, num_users: 6 });

  // An API action on one node reaches a user's connection on another.
  const target = clients[1]!; // on node 1
  const gone = new Promise<number>((r) => target.client.once('disconnected', (ctx) => r(ctx.code)));
  await nodes[0]!.call('disconnect', { user: 'user1' });
  assert.equal(await gone, 3503);
});

test('SIGKILL: clients reconnect to another node and recover exactly what they missed; the dead node leaves presence and info', async (t) => {
  const prefix = uniquePrefix('kill');
  const cfg = nodeConfig(SHARED_REDIS, prefix, { engine: { redis: { presence_ttl: '1s', node_info_ttl: '4s' } } });
  const [a, b] = await Promise.all([startServer(t, cfg, { raw: true }), startServer(t, cfg, { raw: true })]);
  const lb = await TcpProxy.start(t, a.port);
  const clients = await Promise.all(['ann', 'bob', 'cid'].map((u) => subscribedClient(t, { ws: lb.ws, secret: a.secret }, u, 'feed')));
  for (let i = 1; i <= 5; i++) await b.call('publish', { channel: 'feed', data: { i } });
  await Promise.all(clients.map((c) => c.until(5)));
  const before = (await b.call('presence', { channel: 'feed' })).result.presence as Record<string, unknown>;
  assert.equal(Object.keys(before).length, 3);

  // A dies; nothing answers behind the balancer while 6..10 are published.
  lb.refusing = true;
  a.kill('SIGKILL');
  await a.exited;
  lb.cutAll();
  for (let i = 6; i <= 10; i++) await b.call('publish', { channel: 'feed', data: { i } });
  lb.target = b.port;
  lb.refusing = false;

  await Promise.all(clients.map((c) => c.until(10)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, 10), 'every publication exactly once, in order');
    assert.deepEqual(c.subscribed.at(-1), { wasRecovering: true, recovered: true });
  }
  // The old connections' presence entries lapse with their node; the new ones are there.
  await until('presence to hold only the new connections', 8000, async () => {
    const now = (await b.call('presence', { channel: 'feed' })).result.presence as Record<string, unknown>;
    return Object.keys(now).length === 3 && Object.keys(now).every((id) => !(id in before));
  });
  await until('info to list only node B', 10_000, async () => (await b.call('info')).result.nodes.length === 1);
});

test('SIGTERM: the node drains with 3001, clients move to the other node, nothing is lost', async (t) => {
  const prefix = uniquePrefix('drain');
  const cfg = nodeConfig(SHARED_REDIS, prefix);
  const [a, b] = await Promise.all([startServer(t, cfg, { raw: true }), startServer(t, cfg, { raw: true })]);
  const lb = await TcpProxy.start(t, a.port);
  const clients = await Promise.all(range(1, 8).map((i) => subscribedClient(t, { ws: lb.ws, secret: a.secret }, `u${i}`, 'ticks')));

  const N = 60;
  let published = 0;
  const publisher = (async () => {
    for (let i = 1; i <= N; i++) {
      const res = await b.call('publish', { channel: 'ticks', data: { i } });
      assert.equal(res.result.offset, i);
      published = i;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  await until('a third published', 10_000, async () => published >= N / 3);
  lb.target = b.port; // the deploy: new connections go to B, A drains
  a.kill('SIGTERM');
  assert.deepEqual(await a.exited, { code: 0, signal: null }, 'clean exit after the drain');
  await publisher;
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, N));
    assert.ok(c.reconnectCodes.includes(3001), `told to reconnect with 3001 (got ${c.reconnectCodes})`);
  }
});
