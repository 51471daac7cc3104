/**
 * history_remove across nodes: a node subscribed to a channel keeps the
 * channel's recent publications (its recovery tail) to answer recoveries
 * without a store read. When another node removes the history, every node
 * drops its tail (an engine control message), so no recovery answers with
 * removed publications. Two engines on one real Redis (and a nats-server of
 * the test's own for the NATS broker and JetStream history).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import type { ControlMessage, EngineHandlers, PublishOptions } from '../src/engine/types.js';
import { OwnNats } from './helpers/nats.js';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import type { TestContextLike } from './helpers/scope.js';
import { until } from './helpers/wait.js';

const HIST: PublishOptions = { historySize: 10, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
const READ = { historyTtlMs: 60_000, historyMetaTtlMs: 0 };

class Handlers implements EngineHandlers {
  offsets: number[] = [];
  controls: ControlMessage[] = [];
  onPublication(_ch: string, pub: { offset: number }): void {
    this.offsets.push(pub.offset);
  }
  onJoin(): void {}
  onLeave(): void {}
  onControl(msg: ControlMessage): void {
    this.controls.push(msg);
  }
}

async function twoNodes(t: TestContextLike, engine: Record<string, unknown>): Promise<Array<{ e: RedisEngine; h: Handlers }>> {
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const e = new RedisEngine(loadConfig({ object: { log: { level: 'error' }, engine } }).config);
    const h = new Handlers();
    await e.start(h);
    t.after(() => e.close());
    nodes.push({ e, h });
  }
  return nodes;
}

async function removedEverywhere(t: TestContextLike, engine: Record<string, unknown>): Promise<void> {
  const [a, b] = await twoNodes(t, engine);
  const c = `rm-${Math.random().toString(36).slice(2)}`;
  await a!.e.broker.subscribe(c);
  let r = await b!.e.broker.publish(c, '1', HIST);
  for (const d of ['2', '3']) r = await b!.e.broker.publish(c, d, HIST);
  await until('node A got the 3 publications', 5000, () => a!.h.offsets.length === 3);
  const since = { offset: 1, epoch: r.epoch };
  const before = await a!.e.history.read(c, { ...READ, since, recovery: true });
  assert.deepEqual(
    before.publications.map((p) => p.offset),
    [2, 3],
  );
  await b!.e.history.remove(c);
  await until('node A no longer recovers the removed publications', 5000, async () => {
    const after = await a!.e.history.read(c, { ...READ, since, recovery: true });
    return after.publications.length === 0;
  });
  const after = await a!.e.history.read(c, { ...READ, since, recovery: true });
  assert.deepEqual(after.position, { offset: 3, epoch: r.epoch }, 'the position stays');
  assert.equal(
    a!.h.controls.some((m) => m.type === 'history_removed'),
    false,
    'the engine handles its own control message; the node never sees it',
  );
  // later publications are recovered again, from the tail or the store
  const next = await b!.e.broker.publish(c, '4', HIST);
  await until('node A got publication 4', 5000, () => a!.h.offsets.includes(4));
  const again = await a!.e.history.read(c, { ...READ, since: { offset: 3, epoch: next.epoch }, recovery: true });
  assert.deepEqual(
    again.publications.map((p) => p.offset),
    [4],
  );
}

test('Redis engine: a history removed on node B is not recovered from node A’s tail', (t) =>
  removedEverywhere(t, { type: 'redis', redis: { address: SHARED_REDIS, prefix: uniquePrefix('rm-nodes') } }));

test('NATS broker: a history removed on node B is not recovered from node A’s tail', async (t) => {
  const nats = await OwnNats.start(t);
  await removedEverywhere(t, {
    type: 'redis',
    broker: 'nats',
    redis: { address: SHARED_REDIS, prefix: uniquePrefix('rm-nats') },
    nats: { url: nats.url },
  });
});

test('JetStream history: a history removed on node B is not recovered from node A’s tail', async (t) => {
  const nats = await OwnNats.start(t);
  await removedEverywhere(t, {
    type: 'redis',
    broker: 'nats',
    redis: { address: SHARED_REDIS, prefix: uniquePrefix('rm-js') },
    nats: { url: nats.url, prefix: uniquePrefix('rmjs').replace(/[^A-Za-z0-9_-]/g, ''), history: 'jetstream' },
  });
});
