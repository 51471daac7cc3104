/**
 * History in JetStream against history in Redis (not part of `npm test`):
 * one engine of each kind, in this process, on a nats-server of the script's
 * own (file storage, in a temporary folder) and the machine's Redis. For each:
 * sequential publishes (one in flight), 8 channels publishing at once, and
 * reads of the last 100 publications of a 1,000-publication channel
 * (a recovery read that misses the node's tail: a since position, limit 100),
 * and two nodes publishing to one channel at once.
 * The history stores are read directly, so the numbers are the store's.
 *
 *   npm run build -w @switchboard/server
 *   node packages/server/dist/scripts/jetstream-history-bench.js [rounds]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import type { Engine, PublishOptions } from '../src/engine/types.js';
import { natsAnswers, NATS_SERVER } from '../test/helpers/nats.js';
import { freePort } from '../test/helpers/net.js';
import { SHARED_REDIS, uniquePrefix } from '../test/helpers/redis.js';
import { until } from '../test/helpers/wait.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const HIST: PublishOptions = { historySize: 1000, historyTtlMs: 600_000, historyMetaTtlMs: 0 };
const READ = { historyTtlMs: 600_000, historyMetaTtlMs: 0 };
const PAYLOAD = JSON.stringify({ text: 'x'.repeat(100) });

const store = mkdtempSync(join(tmpdir(), 'sb-js-bench-'));
const port = await freePort();
const nats = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
await until('nats-server', 5000, () => natsAnswers(port));

function engine(history: 'redis' | 'jetstream', redisPrefix = uniquePrefix(`bench-${history}`)): Engine {
  return new RedisEngine(
    loadConfig({
      object: {
        log: { level: 'error' },
        engine: {
          type: 'redis',
          broker: 'nats',
          redis: { address: SHARED_REDIS, prefix: redisPrefix },
          nats: { url: `nats://127.0.0.1:${port}`, prefix: `bench${history}`, history },
        },
      },
    }).config,
  );
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function measure(kind: 'redis' | 'jetstream', round: number): Promise<Record<string, string>> {
  const e = engine(kind);
  await e.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  const ch = `bench-${round}`;
  // 1,000 sequential publishes.
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) await e.broker.publish(ch, PAYLOAD, HIST);
  const seq = 1000 / (ms(t0) / 1000);
  // 8 channels at once, 250 each (one in flight per channel).
  t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 8 }, async (_, k) => {
      for (let i = 0; i < 250; i++) await e.broker.publish(`${ch}-par-${k}`, PAYLOAD, HIST);
    }),
  );
  const par = 2000 / (ms(t0) / 1000);
  // Recovery reads of the last 100 (the store, not the tail: no subscription on this node).
  const top = (await e.history.read(ch, { ...READ, limit: 0 })).position;
  const reads: number[] = [];
  for (let i = 0; i < 50; i++) {
    t0 = process.hrtime.bigint();
    const h = await e.history.read(ch, { ...READ, since: { offset: top.offset - 100, epoch: top.epoch }, limit: 100 });
    reads.push(ms(t0));
    if (h.publications.length !== 100 || h.publications[0]!.offset !== top.offset - 99) throw new Error(`${kind}: wrong read`);
  }
  const full: number[] = [];
  for (let i = 0; i < 10; i++) {
    t0 = process.hrtime.bigint();
    const h = await e.history.read(ch, READ);
    full.push(ms(t0));
    if (h.publications.length !== 1000) throw new Error(`${kind}: wrong full read`);
  }
  // Two nodes racing for one channel (one in flight each): JetStream orders them by the expected subject sequence, the loser retries.
  const prefix = uniquePrefix(`bench-two-${kind}`);
  const pair = [engine(kind, prefix), engine(kind, prefix)];
  for (const x of pair) await x.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  t0 = process.hrtime.bigint();
  const offs = (
    await Promise.all(
      pair.map(async (x) => {
        const o: number[] = [];
        for (let i = 0; i < 500; i++) o.push((await x.broker.publish(`${ch}-two`, PAYLOAD, HIST)).offset);
        return o;
      }),
    )
  ).flat();
  const two = 1000 / (ms(t0) / 1000);
  if (new Set(offs).size !== 1000 || Math.max(...offs) !== 1000) throw new Error(`${kind}: offsets not 1..1000`);
  for (const x of pair) await x.close();
  await e.close();
  return {
    'publish/s (2 nodes, 1 channel)': two.toFixed(0),
    'publish/s (1 in flight)': seq.toFixed(0),
    'publish/s (8 channels)': par.toFixed(0),
    'read 100: p50 ms': pct(reads, 0.5).toFixed(2),
    'read 100: p99 ms': pct(reads, 0.99).toFixed(2),
    'read 1000: p50 ms': pct(full, 0.5).toFixed(1),
  };
}

try {
  for (let r = 1; r <= ROUNDS; r++) {
    for (const kind of ['redis', 'jetstream'] as const)
      console.log(JSON.stringify({ round: r, history: kind, ...(await measure(kind, r)) }));
  }
} finally {
  nats.kill('SIGKILL');
  rmSync(store, { recursive: true, force: true });
}
