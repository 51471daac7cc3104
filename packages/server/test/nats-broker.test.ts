/**
 * engine.broker "nats": publications and join/leave between nodes over a
 * real nats-server of the test's own, history and presence in Redis, two
 * real `switchboard serve` nodes and the real SDK. What NATS does not carry
 * (a dropped message, a publisher gone between its history append and its
 * send, NATS restarted) subscribers find by offsets and recover from
 * history, exactly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { OwnNats } from './helpers/nats.js';
import { nodeConfig, OwnRedis, publishAcked, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { makeClient, offsetsOf, range, subscribedClient } from './helpers/sdk.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import type { TestContextLike } from './helpers/scope.js';
import { until, waitFor } from './helpers/wait.js';

const NATS_EXTRA = (url: string): Record<string, unknown> => ({
  engine: { broker: 'nats', nats: { url, connect_timeout: '500ms', gap_timeout: '300ms', position_check: '1s' } },
  channel: { without_namespace: { force_push_join_leave: true } },
});

/** Two nodes on one Redis prefix and one NATS. */
async function twoNodes(t: TestContextLike, natsUrl: string, redisUrl = SHARED_REDIS): Promise<[RunningServer, RunningServer, string]> {
  const prefix = uniquePrefix('nats');
  const cfg = nodeConfig(redisUrl, prefix, NATS_EXTRA(natsUrl));
  const [a, b] = await Promise.all([startServer(t, cfg, { raw: true }), startServer(t, cfg, { raw: true })]);
  return [a, b, prefix];
}

test('config: engine.broker "nats" needs the Redis engine and a nats:// url; check-config accepts the documented shape', () => {
  const ok = loadConfig({ object: { engine: { type: 'redis', broker: 'nats', nats: { url: 'nats://127.0.0.1:4222' } } } }).config;
  assert.equal(ok.engine.broker, 'nats');
  assert.equal(ok.engine.nats.gap_timeout, 1000);
  const bad = (o: Record<string, unknown>): string[] => {
    try {
      loadConfig({ object: o });
    } catch (e) {
      return (e as ConfigError).problems;
    }
    return [];
  };
  assert.match(bad({ engine: { broker: 'nats' } }).join(), /engine\.broker: "nats" needs engine\.type "redis"/);
  assert.match(bad({ engine: { type: 'redis', broker: 'nats', nats: { url: 'http://x' } } }).join(), /engine\.nats\.url/);
  assert.match(bad({ engine: { type: 'redis', broker: 'kafka' } }).join(), /engine\.broker/);
  assert.match(bad({ engine: { type: 'redis', broker: 'nats', redis: { replica_wait: 1 } } }).join(), /replica_wait/);
});

test('two nodes over NATS: publish on A reaches B live, client publications and join/leave cross, history and presence are shared', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b] = await twoNodes(t, nats.url);
  const onB = await subscribedClient(t, b, 'bob', 'room');
  const joins: string[] = [];
  onB.sub.on('join', (ctx) => joins.push(ctx.info.user));
  const onA = await subscribedClient(t, a, 'ann', 'room');
  await until('B told of ann joining on A', 5000, () => joins.includes('ann'));

  for (let i = 1; i <= 20; i++) assert.equal((await a.call('publish', { channel: 'room', data: { i } })).result?.offset, i);
  await onB.until(20);
  assert.deepEqual(offsetsOf(onB), range(1, 20), 'all, once, in order');
  // A client publication on B reaches A's subscriber.
  await onB.sub.publish({ from: 'bob' });
  await onA.until(21);
  assert.deepEqual(onA.pubs.at(-1), { offset: 21, data: { from: 'bob' } });

  const presence = await b.call('presence', { channel: 'room' });
  assert.deepEqual(
    Object.values(presence.result.presence)
      .map((p: any) => p.user)
      .sort(),
    ['ann', 'bob'],
  );
  const hist = await b.call('history', { channel: 'room', limit: 3, reverse: true });
  assert.deepEqual(
    hist.result.publications.map((p: any) => p.offset),
    [21, 20, 19],
  );
  const channels = await a.call('channels', {});
  assert.ok('room' in channels.result.channels, `channels over NATS: ${JSON.stringify(channels)}`);
  assert.equal(onB.unsubscribed.length, 0, 'no resync was needed');
});

test('recovery across nodes: a client gone from B comes back on A with its position and gets exactly what it missed', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b] = await twoNodes(t, nats.url);
  const onB = await subscribedClient(t, b, 'bob', 'feed');
  for (let i = 1; i <= 5; i++) await a.call('publish', { channel: 'feed', data: { i } });
  await onB.until(5);
  const pos = { offset: 5, epoch: (await a.call('history', { channel: 'feed', limit: 0 })).result.epoch as string };
  onB.client.disconnect();
  for (let i = 6; i <= 12; i++) await b.call('publish', { channel: 'feed', data: { i } });

  const again = makeClient(t, a, { token: await mintToken(a.secret, { sub: 'bob' }) });
  again.connect();
  const got: number[] = [];
  const sub = again.newSubscription('feed', { since: pos });
  sub.on('publication', (ctx) => got.push(Number(ctx.offset)));
  const subscribed = waitFor(sub, 'subscribed');
  sub.subscribe();
  const ctx = await subscribed;
  assert.equal(ctx.recovered, true);
  for (let i = 13; i <= 15; i++) await b.call('publish', { channel: 'feed', data: { i } });
  await until('recovered and live publications', 5000, () => got.length >= 10);
  assert.deepEqual(got, range(6, 15));
});

test('a publication NATS never carried (its publisher appended it to history, then was gone): subscribers on both nodes get it from history, once and in order', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b, prefix] = await twoNodes(t, nats.url);
  // The same history in Redis, but publishing through Redis PUB/SUB, which no NATS node listens to:
  // its publications are appended with their offsets and never reach the nodes live.
  const silent = new RedisEngine(
    loadConfig({ object: { log: { level: 'error' }, engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix } } } }).config,
  );
  await silent.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  t.after(() => silent.close());
  const HIST = { historySize: 1000, historyTtlMs: 300_000, historyMetaTtlMs: 0 };

  const clients = [await subscribedClient(t, a, 'ann', 'gaps'), await subscribedClient(t, b, 'bob', 'gaps')];
  await a.call('publish', { channel: 'gaps', data: { i: 1 } });
  await Promise.all(clients.map((c) => c.until(1)));
  // A gap in the middle: offset 2 never comes live, offset 3 does.
  assert.equal((await silent.broker.publish('gaps', '{"i":2}', HIST)).offset, 2);
  await b.call('publish', { channel: 'gaps', data: { i: 3 } });
  await Promise.all(clients.map((c) => c.until(3)));
  // The last publication lost: nothing comes after it; the quiet channel's position check finds it.
  assert.equal((await silent.broker.publish('gaps', '{"i":4}', HIST)).offset, 4);
  await Promise.all(clients.map((c) => c.until(4)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, 4), 'each once, in order');
    assert.deepEqual(
      c.pubs.map((p) => (p.data as { i: number }).i),
      [1, 2, 3, 4],
    );
    assert.ok(c.unsubscribed.every((code) => code === 2500) && c.unsubscribed.length >= 1, `told to recover: ${c.unsubscribed}`);
    assert.ok(
      c.subscribed.slice(1).every((s) => s.recovered),
      'recovered every time',
    );
  }
});

test('two nodes publishing to one channel at once: every subscriber gets every offset once and in order', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b] = await twoNodes(t, nats.url);
  const clients = [await subscribedClient(t, a, 'ann', 'race'), await subscribedClient(t, b, 'bob', 'race')];
  const N = 200;
  await Promise.all(
    [a, b].map(async (node, k) => {
      const calls = [];
      for (let i = 0; i < N / 2; i++) calls.push(node.call('publish', { channel: 'race', data: { k, i } }));
      for (const r of await Promise.all(calls)) assert.ok(r.result, JSON.stringify(r));
    }),
  );
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) assert.deepEqual(offsetsOf(c), range(1, N));
});

test('NATS killed and restarted: API publish answers 100 and /ready is 503 meanwhile; after it, every acknowledged publication reached every subscriber once and in order', async (t) => {
  const nats = await OwnNats.start(t);
  const redis = await OwnRedis.start(t);
  const [a, b] = await twoNodes(t, nats.url, redis.url);
  const clients = [await subscribedClient(t, a, 'ann', 'alerts'), await subscribedClient(t, b, 'bob', 'alerts')];
  const N = 30;
  for (let i = 1; i <= 10; i++) await publishAcked(a, 'alerts', { i }, `k${i}`);
  await Promise.all(clients.map((c) => c.until(10)));

  await nats.stop();
  await a.waitReady(false, 5000);
  const down = await a.call('publish', { channel: 'alerts', data: { i: 'refused' } });
  assert.equal(down.error?.code, 100, JSON.stringify(down));
  // Publishers retry through the outage; each acknowledged publication must arrive.
  const publishing = (async () => {
    for (let i = 11; i <= N; i++) await publishAcked(i % 2 ? a : b, 'alerts', { i }, `k${i}`);
  })();
  await new Promise((r) => setTimeout(r, 500));
  await nats.start();
  await Promise.all([a.waitReady(true), b.waitReady(true)]);
  await publishing;
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) {
    assert.deepEqual(offsetsOf(c), range(1, N), 'all acknowledged, once, in order');
    assert.deepEqual(
      c.pubs.map((p) => (p.data as { i: number }).i),
      range(1, N),
    );
    assert.ok(
      c.subscribed.slice(1).every((s) => s.recovered),
      'resubscribed with recovery',
    );
  }
});

test('a node started while NATS is away is not ready, answers 100, and serves once NATS comes', async (t) => {
  const nats = await OwnNats.start(t);
  await nats.stop();
  const prefix = uniquePrefix('nats-late');
  const a = await startServer(t, nodeConfig(SHARED_REDIS, prefix, NATS_EXTRA(nats.url)), { raw: true });
  assert.equal((await fetch(a.http + '/ready')).status, 503);
  assert.equal((await a.call('publish', { channel: 'x', data: 1 })).error?.code, 100);
  await nats.start();
  await a.waitReady(true);
  const c = await subscribedClient(t, a, 'ann', 'x');
  await a.call('publish', { channel: 'x', data: 2 });
  await c.until(1);
  assert.deepEqual(c.pubs[0], { offset: 1, data: 2 }, 'the refused publish appended nothing');
});

test('an engine without NATS: not healthy, subscribe and publish refused as unavailable (100), and it closes while still trying to connect', async (t) => {
  const nats = await OwnNats.start(t);
  await nats.stop();
  const engine = new RedisEngine(
    loadConfig({
      object: {
        log: { level: 'error' },
        engine: {
          type: 'redis',
          broker: 'nats',
          redis: { address: SHARED_REDIS, prefix: uniquePrefix('nats-close') },
          nats: { url: nats.url, connect_timeout: '200ms' },
        },
      },
    }).config,
  );
  await engine.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  assert.equal(engine.healthy(), false, 'not healthy without NATS');
  await assert.rejects(engine.broker.subscribe('x'), { name: 'EngineUnavailableError' });
  await assert.rejects(engine.broker.publish('x', '1', { historySize: 10, historyTtlMs: 60_000, historyMetaTtlMs: 0 }), {
    name: 'EngineUnavailableError',
  });
  await engine.close();
});
