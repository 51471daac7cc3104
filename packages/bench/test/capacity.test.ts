/**
 * The capacity script (src/capacity.ts) at toy size, so that it cannot rot:
 * every step runs against the real server, raw ws and a real redis-server,
 * every delivery it counts arrives once, and the report renders from what it
 * measured. Its numbers mean nothing at this size and are not asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { TINY, WORKLOAD, measureCapacity, renderModel, renderTable, type Key } from '../src/capacity.js';
import { installExitHooks } from '../src/proc.js';
import { SWITCHBOARD_CLI, systemByName } from '../src/sut/systems.js';

installExitHooks();

test('capacity --tiny: every cost measured, every delivery counted once, the report renders', { timeout: 300_000 }, async (t) => {
  if (!existsSync(SWITCHBOARD_CLI)) {
    t.skip(`server not built yet (${SWITCHBOARD_CLI} missing)`);
    return;
  }
  const noRedis = systemByName('switchboard-redis').unavailable();
  if (noRedis) {
    t.skip(noRedis);
    return;
  }
  const { figures, checks } = await measureCapacity(TINY);
  const keys: Key[] = [
    'connect.raw',
    'connect.json',
    'connect.protobuf',
    'subscribe.extra',
    'mem.conn.raw',
    'mem.conn.json',
    'mem.conn.protobuf',
    'heap.conn.json',
    'mem.node.base',
    'mem.sub.shared',
    'mem.sub.own',
    'delivery.raw',
    'delivery.json',
    'delivery.json.coalesced',
    'delivery.protobuf',
    'delivery.redis',
    'publish.memory',
    'publish.memory.single',
    'publish.redis',
    'publish.redis.server',
    'receive.memory',
    'receive.redis',
    'redis.per.listener',
    'history.memory',
    'history.redis',
    'history.memory.channel',
    'history.redis.channel',
  ];
  for (const k of keys) {
    const f = figures[k];
    assert.ok(f !== undefined, `${k} measured`);
    assert.ok(Number.isFinite(f.value), `${k} = ${f.value}`);
    assert.ok(f.load >= 0);
  }
  assert.equal(checks.connectFailures, 0);
  // 5 fan-out windows and 2 one-subscriber windows
  assert.equal(checks.deliveries.length, 7);
  for (const d of checks.deliveries) {
    assert.ok(d.expected > 0, d.system);
    assert.equal(d.delivered, d.expected, `${d.system}: every publication reaches every subscriber`);
    assert.equal(d.dup, 0, d.system);
  }
  // the history window really went into Redis's stream, and PUB/SUB reached every listener
  assert.deepEqual(checks.redisStream, { length: TINY.publishes, published: TINY.publishes });
  assert.deepEqual(checks.listenerMessages, { got: TINY.publishes * TINY.listeners, expected: TINY.publishes * TINY.listeners });
  const table = renderTable(figures, TINY);
  assert.equal(table.split('\n').length, 2 + 25, table);
  assert.doesNotMatch(table, /n\/a|NaN/);
  const model = renderModel(figures, WORKLOAD);
  assert.match(model, /\*\*Redis shards\*\* \| .* \| \*\*\d+\*\* \|/);
  assert.match(model, /\*\*node processes\*\* \| .* \| \*\*\d+\*\*/);
  assert.doesNotMatch(model, /NaN|Infinity/);
});
