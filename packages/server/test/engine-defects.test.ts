/**
 * Defects the review found in the engines, each pinned by a test that
 * failed before its fix: stream meta kept for ever (memory: for any channel
 * name a client reads; Redis: a history read left a meta key without TTL),
 * and Redis presence recorded locally before Redis accepted it (so the
 * node refreshed a refused entry into existence later).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { EngineUnavailableError } from '../src/engine/errors.js';
import { MemoryEngine } from '../src/engine/memory/engine.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import type { EngineHandlers } from '../src/engine/types.js';
import { OwnRedis, redisCommand, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const noop: EngineHandlers = { onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} };
const HIST = { historySize: 10, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
const READ = { historyTtlMs: 60_000, historyMetaTtlMs: 0 };

test('memory: reading channels that have no stream keeps nothing (history_meta_ttl 0)', async (t) => {
  const e = new MemoryEngine();
  t.after(() => e.close());
  await e.start(noop);
  const before = await e.history.read('probe-0', { ...READ, limit: 0 });
  for (let i = 0; i < 1000; i++) await e.history.read(`probe-${i}`, { ...READ, limit: 0 });
  assert.equal(e.history.size, 0, 'no stream was created by reads');
  // The position a reader saw before the first publication is the stream's.
  const r = await e.broker.publish('probe-0', '1', HIST);
  assert.deepEqual(r, { offset: 1, epoch: before.position.epoch });
  assert.equal(e.history.size, 1);
});

test('memory: stream meta expires (history_meta_ttl 0 = the engine default); a recreated stream has a new epoch', async (t) => {
  const e = new MemoryEngine({ defaultHistoryMetaTtlMs: 10_000 });
  t.after(() => e.close());
  await e.start(noop);
  const t0 = Date.now();
  const first = await e.broker.publish('room', '1', HIST);
  await e.broker.publish('room', '2', HIST);
  e.sweep(t0 + 9_000);
  assert.equal(e.history.size, 1, 'kept within its TTL');
  e.sweep(Date.now() + 10_001);
  assert.equal(e.history.size, 0, 'dropped after its TTL');
  const again = await e.broker.publish('room', '3', HIST);
  assert.equal(again.offset, 1);
  assert.notEqual(again.epoch, first.epoch, 'offsets started over: positions of the old stream must not match');
  const h = await e.history.read('room', { ...READ, since: { offset: 2, epoch: first.epoch } });
  assert.deepEqual(h.publications, []);
  assert.notEqual(h.position.epoch, first.epoch);
});

test('redis: a history read gives the stream meta a TTL (history_meta_ttl 0 = 30 days)', async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('metattl');
  const config = loadConfig({ object: { log: { level: 'fatal' }, engine: { type: 'redis', redis: { address: own.url, prefix } } } }).config;
  const e = new RedisEngine(config);
  t.after(() => e.close());
  await e.start(noop);
  await e.history.read('never', { ...READ, limit: 0 });
  await e.broker.publish('published', '1', HIST);
  for (const ch of ['never', 'published']) {
    const pttl = Number((await redisCommand(own.port, 'PTTL', `${prefix}.m.{${ch}}`)).slice(1));
    assert.ok(pttl > 29 * 24 * 3600_000 && pttl <= 30 * 24 * 3600_000, `${ch}: meta PTTL ${pttl}`);
  }
});

test('redis: a presence add Redis refused is not refreshed into existence later', async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('ghost');
  const redis = { address: own.url, prefix, presence_ttl: '1s', circuit_breaker_cooldown: '100ms' };
  const config = loadConfig({ object: { log: { level: 'fatal' }, engine: { type: 'redis', redis } } }).config;
  const e = new RedisEngine(config);
  t.after(() => e.close());
  await e.start(noop);
  await e.presence.add('live', { user: 'u', client: 'ok' });
  await own.stop();
  await until('engine to notice', 3000, async () => !e.healthy());
  await assert.rejects(e.presence.add('room', { user: 'u', client: 'ghost' }), EngineUnavailableError);
  assert.equal(e.presence.localCount('room'), 0, 'not kept alive by this node');
  await own.start(); // empty: only what the node refreshes comes back
  await until('healthy again', 5000, async () => e.healthy());
  await until('a refresh to run (it brings the live entry back)', 5000, async () => {
    return (await redisCommand(own.port, 'EXISTS', `${prefix}.p.{live}`)) === ':1';
  });
  assert.equal((await e.presence.get('room')).size, 0);
  assert.equal((await e.presence.get('live')).size, 1);
});

test('redis: a presence entry removed while its add was on the way is not kept alive', async (t) => {
  const prefix = uniquePrefix('ghost2');
  const config = loadConfig({
    object: { log: { level: 'fatal' }, engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix } } },
  }).config;
  const e = new RedisEngine(config);
  t.after(() => e.close());
  await e.start(noop);
  const add = e.presence.add('room', { user: 'u', client: 'c' });
  const remove = e.presence.remove('room', 'c', 'u');
  await Promise.all([add, remove]);
  assert.equal(e.presence.localCount('room'), 0);
  assert.equal((await e.presence.get('room')).size, 0);
});
