/**
 * Webhooks across nodes on a real Redis: channel occupied / vacated are
 * cluster-wide (first subscriber on any node, last one anywhere), and an
 * event queued by a node that stops before delivering it is delivered by
 * another node from the Redis outbox, under the same event id.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { SECRET, embedded, type EmbeddedNode } from './helpers/embedded.js';
import { RawClient } from './helpers/raw.js';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import type { TestContextLike } from './helpers/scope.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';
import { WebhookReceiver } from './helpers/webhook-receiver.js';

const HOOK_SECRET = 'webhook-redis-secret';

/** node_info_ttl is also how long a node's occupancy lives without a refresh: short only where a dead node is the point. */
function nodeConfig(prefix: string, webhooks: Record<string, unknown>, nodeInfoTtl = '10s'): Record<string, unknown> {
  return {
    channel: { without_namespace: { allow_subscribe_for_client: true } },
    engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix, node_info_ttl: nodeInfoTtl } },
    webhooks: { secret: HOOK_SECRET, retry_min_delay: '50ms', retry_max_delay: '200ms', poll_interval: '100ms', ...webhooks },
  };
}

async function redisNode(t: TestContextLike, config: Record<string, unknown>): Promise<EmbeddedNode> {
  const base = { log: { level: 'error' }, client: { token: { hmac_secret_key: SECRET } } };
  const engine = new RedisEngine(loadConfig({ object: { ...base, ...config } }).config);
  return embedded(t, config, { engine });
}

async function client(t: TestContextLike, node: EmbeddedNode, user: string): Promise<RawClient> {
  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: user }));
  return c;
}

test('occupied on the first subscriber of any node, vacated when the last one anywhere leaves; once each', async (t) => {
  const rcv = await WebhookReceiver.start(t, HOOK_SECRET);
  const prefix = uniquePrefix('wh-occ');
  const endpoints = [{ name: 'occ', url: rcv.url, events: ['subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'] }];
  const a = await redisNode(t, nodeConfig(prefix, { endpoints }));
  const b = await redisNode(t, nodeConfig(prefix, { endpoints }));
  const ca = await client(t, a, 'ann');
  const cb = await client(t, b, 'ben');

  assert.ok((await ca.command('subscribe', { channel: 'room' })).subscribe);
  const occupied = await waitFor(rcv, 'event', { ms: 10_000, filter: (e: any) => e.type === 'channel_occupied' });
  assert.equal(occupied.node, a.sb.nodeId, 'told by the node of the first subscriber');
  assert.ok((await cb.command('subscribe', { channel: 'room' })).subscribe);
  await until('both subscribe events', 10_000, () => rcv.of('subscribe').length === 2);

  await ca.command('unsubscribe', { channel: 'room' });
  await until("ann's unsubscribe", 10_000, () => rcv.of('unsubscribe').length === 1);
  await cb.command('unsubscribe', { channel: 'room' });
  const vacated = await waitFor(rcv, 'event', { ms: 10_000, filter: (e: any) => e.type === 'channel_vacated' });
  assert.equal(vacated.node, b.sb.nodeId, 'told by the node of the last subscriber');
  // Everything queued is delivered: nothing else is on its way.
  await until('outbox drained', 10_000, async () => (await a.sb.engine.outbox!.size()) === 0);
  assert.deepEqual(
    rcv.events.map((e) => e.type).sort(),
    ['channel_occupied', 'channel_vacated', 'subscribe', 'subscribe', 'unsubscribe', 'unsubscribe'],
    'one occupied and one vacated for two nodes',
  );
});

test("a dead node's channel is vacated by a live node once its occupancy lapses", async (t) => {
  const rcv = await WebhookReceiver.start(t, HOOK_SECRET);
  const prefix = uniquePrefix('wh-dead');
  const endpoints = [{ name: 'occ', url: rcv.url, events: ['channel_occupied', 'channel_vacated'] }];
  const a = await redisNode(t, nodeConfig(prefix, { endpoints }, '2s'));
  const b = await redisNode(t, nodeConfig(prefix, { endpoints }, '2s'));
  const ca = await client(t, a, 'ann');
  assert.ok((await ca.command('subscribe', { channel: 'lonely' })).subscribe);
  await waitFor(rcv, 'event', { ms: 10_000, filter: (e: any) => e.type === 'channel_occupied' });
  // Node a dies: its Redis connections go, no unsubscribe, no vacate, no refresh.
  await a.sb.engine.close();
  const vacated = await waitFor(rcv, 'event', { ms: 20_000, filter: (e: any) => e.type === 'channel_vacated' });
  assert.equal(vacated.channel, 'lonely');
  assert.equal(vacated.node, b.sb.nodeId, 'the live node tells it');
  assert.equal(rcv.of('channel_vacated').length, 1);
});

test('an event queued before a node stopped is delivered by the next node from the Redis outbox, same id', async (t) => {
  const rcv = await WebhookReceiver.start(t, HOOK_SECRET);
  rcv.respond = () => 503;
  const prefix = uniquePrefix('wh-restart');
  const endpoints = [{ name: 'main', url: rcv.url, events: ['connect'] }];
  // Node a tries once, then waits long before retrying: it stops before it would.
  const a = await redisNode(t, nodeConfig(prefix, { endpoints, retry_min_delay: '60s', retry_max_delay: '60s', reclaim_after: '1s' }));
  await client(t, a, 'zoe');
  const first = await waitFor(rcv, 'request', { ms: 10_000 });
  assert.equal(first.status, 503);
  assert.equal(first.event.user, 'zoe');
  await a.sb.shutdown();
  assert.equal(rcv.events.length, 0, 'not delivered yet');

  rcv.respond = () => 200;
  const b = await redisNode(t, nodeConfig(prefix, { endpoints, reclaim_after: '1s' }));
  const delivered = await waitFor(rcv, 'event', { ms: 20_000, filter: (e: any) => e.id === first.event.id });
  assert.equal(delivered.user, 'zoe');
  assert.equal(delivered.node, a.sb.nodeId, 'the event names the node where it happened');
  assert.equal(rcv.requests.filter((r) => r.event.id === first.event.id && r.status === 200).length, 1);
  await until('outbox drained', 10_000, async () => (await b.sb.engine.outbox!.size()) === 0);
});
