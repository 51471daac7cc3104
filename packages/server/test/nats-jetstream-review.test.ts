/**
 * engine.nats.history "jetstream" (src/engine/nats/jetstream.ts): defects a
 * review found, each on a real nats-server of the test's own and the real
 * Redis: what a remove leaves in the stream, and what the config accepts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { EngineUnavailableError } from '../src/engine/errors.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { createLogger } from '../src/observability/logger.js';
import { NATS_SERVER, natsAnswers, OwnNats, jsApi, natsClient } from './helpers/nats.js';
import { freePort } from './helpers/net.js';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import type { TestContextLike } from './helpers/scope.js';
import { until } from './helpers/wait.js';

class Lines extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const l of chunk.toString().split('\n')) if (l.trim()) this.lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  }
}

async function engine(t: TestContextLike, natsUrl: string, out?: Lines): Promise<RedisEngine> {
  const config = loadConfig({
    object: {
      log: { level: 'warn' },
      engine: {
        type: 'redis',
        broker: 'nats',
        redis: { address: SHARED_REDIS, prefix: uniquePrefix('js-review') },
        // position_check far off: its background read of a quiet channel's position would be counted on the wire below
        nats: {
          url: natsUrl,
          history: 'jetstream',
          position_check: '1h',
          jetstream: { storage: 'memory', max_history_size: 20 },
        },
      },
    },
  }).config;
  const e = new RedisEngine(config, out ? { log: createLogger('warn', out) } : {});
  await e.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  t.after(() => e.close());
  return e;
}

const HIST = { historySize: 20, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
const READ = { historyTtlMs: 60_000, historyMetaTtlMs: 0 };

test('remove frees the space (the subject keeps only the marker); a stream that refuses the purge (deny_purge) is logged, the history still reads empty', async (t) => {
  const nats = await OwnNats.start(t);
  const nc = await natsClient(t, nats.url);
  const e = await engine(t, nats.url);
  for (let i = 1; i <= 5; i++) await e.broker.publish('gone', String(i), HIST);
  await e.history.remove('gone');
  const [name] = (await jsApi(nc, 'STREAM.NAMES', { subject: 'switchboard.h.>' })).streams as string[];
  const info = await jsApi(nc, `STREAM.INFO.${name}`, { subjects_filter: 'switchboard.h.>' });
  assert.deepEqual(info.state.subjects, { 'switchboard.h.c.gone': 1 }, 'the five publications purged, the marker kept');

  // An operator's stream that denies purges: the remove still hides the history, and says what it could not free.
  const ops = await OwnNats.start(t);
  const onc = await natsClient(t, ops.url);
  const made = await jsApi(onc, 'STREAM.CREATE.ops_nopurge', {
    name: 'ops_nopurge',
    subjects: ['switchboard.h.>'],
    storage: 'memory',
    deny_purge: true,
  });
  assert.equal(made.error, undefined);
  const out = new Lines();
  const e2 = await engine(t, ops.url, out);
  const top = await e2.broker.publish('kept', '"a"', HIST);
  await e2.history.remove('kept');
  assert.deepEqual(await e2.history.read('kept', READ), { publications: [], position: top });
  assert.ok(
    out.lines.some((l) => l.kind === 'jetstream_purge' && l.stream === 'ops_nopurge'),
    `a warning for the refused purge: ${JSON.stringify(out.lines)}`,
  );
});

test('config: with history "jetstream", a namespace history_ttl above engine.nats.jetstream.max_age is refused (the stream would drop it earlier)', () => {
  const engineCfg = { type: 'redis', broker: 'nats', nats: { history: 'jetstream', jetstream: { max_age: '1h' } } };
  const problems = (channel: Record<string, unknown>): string[] => {
    try {
      loadConfig({ object: { engine: engineCfg, channel } });
    } catch (e) {
      return (e as ConfigError).problems;
    }
    return [];
  };
  assert.deepEqual(problems({ without_namespace: { history_size: 10, history_ttl: '1h' } }), []);
  assert.deepEqual(
    problems({
      namespaces: [{ name: 'long', history_size: 10, history_ttl: '2h' }],
      without_namespace: { history_size: 10, history_ttl: '90m' },
    }),
    [
      'channel.namespaces.0.history_ttl: 7200000ms is above engine.nats.jetstream.max_age (3600000ms)',
      'channel.without_namespace.history_ttl: 5400000ms is above engine.nats.jetstream.max_age (3600000ms)',
    ],
  );
});

test('a nats-server without JetStream: publishes with history and reads answer 100 saying JetStream is not there (not a bare "503")', async (t) => {
  const port = await freePort();
  const proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  t.after(() => proc.kill('SIGKILL'));
  await until('nats-server without JetStream', 5000, () => natsAnswers(port));
  const out = new Lines();
  const e = await engine(t, `nats://127.0.0.1:${port}`, out);
  const errs = [
    await e.broker.publish('x', '1', HIST).then(
      () => undefined,
      (err: unknown) => err,
    ),
    await e.history.read('x', { ...READ, limit: 0 }).then(
      () => undefined,
      (err: unknown) => err,
    ),
  ];
  for (const err of errs) {
    assert.ok(err instanceof EngineUnavailableError, String(err));
    assert.match(err.message, /JetStream is not enabled/);
  }
});

test('SCALING.md claims, counted on the wire: a publish to a channel the node knows is one JetStream request (no direct get); a recovery read of a subscribed channel within its tail asks JetStream nothing', async (t) => {
  const nats = await OwnNats.start(t);
  const nc = await natsClient(t, nats.url);
  const e = await engine(t, nats.url);
  await e.broker.subscribe('warm');
  const first = await e.broker.publish('warm', '0', HIST);
  // Every request the node makes is seen by a core subscriber of its subject too.
  const seen: string[] = [];
  const watch = [nc.subscribe('$JS.API.>'), nc.subscribe('switchboard.h.>')];
  for (const s of watch)
    void (async () => {
      for await (const m of s) seen.push(m.subject);
    })();
  await nc.flush();
  for (let i = 1; i <= 10; i++) await e.broker.publish('warm', String(i), HIST);
  await nc.flush();
  // the watchers' loops take what the connection received a few microtasks later
  await until('the ten publishes seen on the wire', 5000, () => seen.length >= 10);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, Array(10).fill('switchboard.h.c.warm'), 'ten publishes, no direct get, no stream lookup');
  seen.length = 0;
  await until('the tail to hold the publications', 5000, async () => {
    const r = await e.history.read('warm', { ...READ, since: { offset: 3, epoch: first.epoch }, recovery: true, limit: 20 });
    return r.publications.length === 8;
  });
  seen.length = 0;
  const r = await e.history.read('warm', { ...READ, since: { offset: 3, epoch: first.epoch }, recovery: true, limit: 20 });
  assert.deepEqual(
    r.publications.map((p) => p.offset),
    [4, 5, 6, 7, 8, 9, 10, 11],
  );
  await nc.flush();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, [], 'served from the tail');
  for (const s of watch) s.unsubscribe();
});

test('a stream an operator made with retention other than "limits" (interest keeps nothing without consumers, workqueue refuses the reads\' consumers) is refused with 100, never used', async (t) => {
  for (const retention of ['interest', 'workqueue']) {
    const nats = await OwnNats.start(t);
    const nc = await natsClient(t, nats.url);
    const made = await jsApi(nc, `STREAM.CREATE.ops_${retention}`, {
      name: `ops_${retention}`,
      subjects: ['switchboard.h.>'],
      storage: 'memory',
      retention,
    });
    assert.equal(made.error, undefined);
    const e = await engine(t, nats.url);
    for (let i = 1; i <= 2; i++)
      await assert.rejects(e.broker.publish('kept', String(i), HIST), (err: unknown) => {
        assert.ok(err instanceof EngineUnavailableError, String(err));
        assert.match(err.message, new RegExp(`ops_${retention}.*retention "${retention}"`));
        return true;
      });
    await assert.rejects(e.history.read('kept', READ), /retention/);
  }
});
