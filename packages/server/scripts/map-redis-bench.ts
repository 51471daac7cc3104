/**
 * The Redis engine's map role, measured (not part of `npm test`, asserts
 * nothing): a redis-server of its own on a free port, one engine (a node)
 * writing a map of `keys` keys, then reading it back in pages.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/map-redis-bench.js [--keys 10000] [--page 1000]
 *
 * Prints: Redis memory per key (used_memory before and after, the map's
 * state, key index and stream of 100), the node's CPU per publish and per
 * key read (and per ordinary publish of the same data, the peer), the publish round trip p50/p99 (one at a time, so it is the
 * script's latency on this machine, not a throughput figure), and how long
 * reading the whole state in pages took.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { Feed } from '../test/helpers/redis-map.js';
import { OwnRedis, redisCommand } from '../test/helpers/redis.js';
import { scope } from '../test/helpers/scope.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '10000' }, page: { type: 'string', default: '1000' } } });
const KEYS = Number(values.keys);
const PAGE = Number(values.page);

async function usedMemory(port: number): Promise<number> {
  const info = await redisCommand(port, 'INFO', 'memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

const t = scope();
try {
  const own = await OwnRedis.start(t);
  const config = loadConfig({
    object: { log: { level: 'error' }, engine: { type: 'redis', redis: { address: own.url, prefix: 'bench' } } },
  }).config;
  const engine = new RedisEngine(config);
  await engine.start(new Feed());
  t.after(() => engine.close());
  const opts = { streamSize: 100, streamTtlMs: 60_000, metaTtlMs: 0, keyTtlMs: 0 };
  const value = JSON.stringify({ premium: 1234.5, currency: 'EUR', editedBy: 'agent-17' });
  const before = await usedMemory(own.port);
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < KEYS; i++) {
    const s = process.hrtime.bigint();
    await engine.maps.publish('quote:42', `field-${i}`, value, opts);
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const pubCpu = process.cpuUsage(cpu0);
  const after = await usedMemory(own.port);
  lat.sort((a, b) => a - b);

  // The peer: as many ordinary publishes (history 100) of the same data, in the same process.
  const cpuP = process.cpuUsage();
  for (let i = 0; i < KEYS; i++)
    await engine.broker.publish('plain', value, { historySize: 100, historyTtlMs: 60_000, historyMetaTtlMs: 0 });
  const plainCpu = process.cpuUsage(cpuP);

  const cpu1 = process.cpuUsage();
  const s = process.hrtime.bigint();
  let cursor = '';
  let read = 0;
  do {
    const page = await engine.maps.readState('quote:42', { limit: PAGE, cursor, metaTtlMs: 0 });
    read += page.entries.length;
    cursor = page.cursor;
  } while (cursor !== '');
  const snapMs = Number(process.hrtime.bigint() - s) / 1e6;
  const readCpu = process.cpuUsage(cpu1);

  const us = (c: NodeJS.CpuUsage): number => c.user + c.system;
  console.log(`keys ${KEYS}, value ${value.length} B, stream_size 100, page ${PAGE}`);
  console.log(`redis memory per key: ${((after - before) / KEYS).toFixed(0)} B (used_memory ${before} -> ${after})`);
  console.log(
    `publish: node CPU ${(us(pubCpu) / KEYS).toFixed(1)} us per publish; round trip p50 ${pct(lat, 50).toFixed(3)} ms, p99 ${pct(lat, 99).toFixed(3)} ms`,
  );
  console.log(
    `ordinary publish (peer, same run): node CPU ${(us(plainCpu) / KEYS).toFixed(1)} us per publish; map/ordinary ${(us(pubCpu) / us(plainCpu)).toFixed(2)}x`,
  );
  console.log(`state read: ${read} entries in ${snapMs.toFixed(1)} ms, node CPU ${(us(readCpu) / read).toFixed(2)} us per entry`);
} finally {
  await t.close();
}
