/**
 * engine.nats.history "jetstream": history in one JetStream stream of a real
 * nats-server of the test's own, two real `switchboard serve` nodes and the
 * real SDK. Publishers on two nodes race for one channel's next offset (the
 * server orders them by the expected last subject sequence); the stream
 * deleted means a new epoch, never an old offset with other data.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NatsConnection } from 'nats';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { OwnNats, jsApi, natsClient } from './helpers/nats.js';
import { nodeConfig, publishAcked, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { makeClient, offsetsOf, range, subscribedClient } from './helpers/sdk.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import type { TestContextLike } from './helpers/scope.js';
import { until, waitFor } from './helpers/wait.js';

const JS_EXTRA = (url: string): Record<string, unknown> => ({
  engine: {
    broker: 'nats',
    nats: {
      url,
      connect_timeout: '500ms',
      gap_timeout: '300ms',
      position_check: '1s',
      history: 'jetstream',
      jetstream: { storage: 'file' },
    },
  },
});

async function twoNodes(t: TestContextLike, natsUrl: string): Promise<[RunningServer, RunningServer]> {
  const cfg = nodeConfig(SHARED_REDIS, uniquePrefix('js'), JS_EXTRA(natsUrl));
  const [a, b] = await Promise.all([startServer(t, cfg, { raw: true }), startServer(t, cfg, { raw: true })]);
  return [a, b];
}

/** The history stream: found by its subjects, as the nodes find it (a node that creates it adds a random suffix). */
async function historyStream(nc: NatsConnection): Promise<string> {
  const names = (await jsApi(nc, 'STREAM.NAMES', { subject: 'switchboard.h.>' })).streams as string[];
  assert.equal(names.length, 1);
  assert.match(names[0]!, /^switchboard_history_[0-9a-f]{8}$/);
  return names[0]!;
}

function problems(o: Record<string, unknown>): string[] {
  try {
    loadConfig({ object: o });
  } catch (e) {
    return (e as ConfigError).problems;
  }
  return [];
}

test('config: history "jetstream" is checked at load (a namespace keeping more than the stream keeps per subject is refused)', () => {
  const base = { type: 'redis', broker: 'nats', nats: { history: 'jetstream', jetstream: { max_history_size: 100 } } };
  const ok = loadConfig({ object: { engine: base, channel: { without_namespace: { history_size: 100, history_ttl: '1m' } } } }).config;
  assert.equal(ok.engine.nats.history, 'jetstream');
  assert.deepEqual(ok.engine.nats.jetstream, { storage: 'file', max_history_size: 100, replicas: 1, max_age: 720 * 3600_000 });
  assert.deepEqual(
    problems({
      engine: base,
      channel: { namespaces: [{ name: 'big', history_size: 101, history_ttl: '1m' }], without_namespace: { history_size: 500 } },
    }),
    [
      'channel.namespaces.0.history_size: 101 is above engine.nats.jetstream.max_history_size (100)',
      'channel.without_namespace.history_size: 500 is above engine.nats.jetstream.max_history_size (100)',
    ],
  );
  assert.match(
    problems({ engine: { ...base, nats: { history: 'jetstream', jetstream: { max_history_size: 0 } } } }).join(),
    /max_history_size: at least 1/,
  );
  assert.match(problems({ engine: { ...base, nats: { history: 'kafka' } } }).join(), /engine\.nats\.history/);
  assert.deepEqual(problems({ engine: { type: 'redis', nats: { history: 'jetstream' } } }), [
    'engine.nats.history: "jetstream" needs engine.broker "nats"',
  ]);
});

test('two nodes publishing to one channel at once over JetStream history: offsets 1..N once each, every subscriber in order, history exact, recovery exact with the SDK', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b] = await twoNodes(t, nats.url);
  const clients = [await subscribedClient(t, a, 'ann', 'race'), await subscribedClient(t, b, 'bob', 'race')];
  const N = 200;
  const acks: number[] = [];
  await Promise.all(
    [a, b].map(async (node, k) => {
      const calls = [];
      for (let i = 0; i < N / 2; i++) calls.push(node.call('publish', { channel: 'race', data: { k, i } }));
      for (const r of await Promise.all(calls)) {
        assert.ok(r.result, JSON.stringify(r));
        acks.push(r.result.offset);
      }
    }),
  );
  assert.deepEqual(
    acks.sort((x, y) => x - y),
    range(1, N),
    'each offset handed out once, none skipped',
  );
  await Promise.all(clients.map((c) => c.until(N)));
  for (const c of clients) assert.deepEqual(offsetsOf(c), range(1, N));
  // History is in the stream, and both nodes read the same one.
  const ha = (await a.call('history', { channel: 'race', limit: -1 })).result;
  const hb = (await b.call('history', { channel: 'race', limit: -1 })).result;
  assert.deepEqual(
    ha.publications.map((p: any) => p.offset),
    range(1, N),
  );
  assert.deepEqual(hb, ha);
  assert.deepEqual(
    ha.publications.map((p: any) => p.data),
    clients[0]!.pubs.map((p) => p.data),
    'history holds what was delivered, offset for offset',
  );
  const nc = await natsClient(t, nats.url);
  const info = await jsApi(nc, `STREAM.INFO.${await historyStream(nc)}`, { subjects_filter: 'switchboard.h.>' });
  assert.equal(info.config.max_msgs_per_subject, 1000);
  assert.equal(info.config.allow_direct, true);
  // N publications and the marker that fixed the epoch when the first subscriber read the empty channel.
  assert.equal(info.state.subjects['switchboard.h.c.race'], N + 1);

  // Bob leaves B at offset 200; both nodes publish on; he comes back on A with his position.
  const epoch = ha.epoch as string;
  clients[1]!.client.disconnect();
  await Promise.all(
    [a, b].map(async (node, k) => {
      for (let i = 0; i < 10; i++) assert.ok((await node.call('publish', { channel: 'race', data: { k, i, later: true } })).result);
    }),
  );
  const again = makeClient(t, a, { token: await mintToken(a.secret, { sub: 'bob' }) });
  const got: Array<{ offset: number; data: unknown }> = [];
  const sub = again.newSubscription('race', { since: { offset: N, epoch } });
  sub.on('publication', (ctx) => got.push({ offset: Number(ctx.offset), data: ctx.data }));
  const subscribed = waitFor(sub, 'subscribed');
  sub.subscribe();
  again.connect();
  const ctx = await subscribed;
  assert.equal(ctx.recovered, true);
  assert.deepEqual(
    got.map((p) => p.offset),
    range(N + 1, N + 20),
  );
  const after = (await a.call('history', { channel: 'race', since: { offset: N, epoch }, limit: -1 })).result;
  assert.deepEqual(
    got,
    after.publications.map((p: any) => ({ offset: p.offset, data: p.data })),
  );
});

test('the stream deleted: the next publication starts a new epoch at offset 1; a subscriber is resynced and told recovered: false, never an old offset with other data', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b] = await twoNodes(t, nats.url);
  const live = await subscribedClient(t, b, 'bob', 'news');
  for (let i = 1; i <= 5; i++) await a.call('publish', { channel: 'news', data: { gen: 1, i } });
  await live.until(5);
  const old = (await a.call('history', { channel: 'news', limit: 0 })).result;
  assert.equal(old.offset, 5);
  // A client that leaves at offset 5 of the old epoch.
  const away = await subscribedClient(t, a, 'ann', 'news');
  away.client.disconnect();

  const nc = await natsClient(t, nats.url);
  const deleted = await historyStream(nc);
  assert.equal((await jsApi(nc, `STREAM.DELETE.${deleted}`)).success, true);
  // The node that published before remembers the old last sequence: the server refuses it, the node re-reads.
  const first = (await a.call('publish', { channel: 'news', data: { gen: 2, i: 1 } })).result;
  assert.equal(first.offset, 1);
  assert.notEqual(first.epoch, old.epoch);
  // B remembers the old stream's last sequence of the channel too, which the new stream has reached again (1):
  // the publish names the stream it expects, so the new one refuses it and B re-reads.
  for (let i = 2; i <= 3; i++)
    assert.deepEqual((await b.call('publish', { channel: 'news', data: { gen: 2, i } })).result, { offset: i, epoch: first.epoch });
  assert.notEqual(await historyStream(nc), deleted, 'a new stream, under a new name');

  // The live subscriber: resynced (2500) and resubscribed with recovered false; then it has the new epoch.
  await live.subscribedTimes(2);
  assert.ok(live.unsubscribed.includes(2500), `told to resync: ${live.unsubscribed}`);
  assert.equal(live.subscribed[1]!.recovered, false);
  await a.call('publish', { channel: 'news', data: { gen: 2, i: 4 } });
  await until('the new epoch live', 5000, () => live.pubs.some((p) => (p.data as any).gen === 2 && (p.data as any).i === 4));
  for (const p of live.pubs) assert.equal((p.data as { i: number }).i, p.offset, `offset ${p.offset} carries its own data`);

  // The client that left comes back with the old position: not recovered, nothing of the old epoch.
  const back = makeClient(t, b, { token: await mintToken(b.secret, { sub: 'ann' }) });
  const got: unknown[] = [];
  const sub = back.newSubscription('news', { since: { offset: 5, epoch: old.epoch } });
  sub.on('publication', (ctx) => got.push(ctx.data));
  const subscribed = waitFor(sub, 'subscribed');
  sub.subscribe();
  back.connect();
  const ctx = await subscribed;
  assert.equal(ctx.recovered, false);
  assert.deepEqual(got, []);
  const h = (await b.call('history', { channel: 'news', limit: -1 })).result;
  assert.deepEqual(
    h.publications.map((p: any) => p.data),
    [1, 2, 3, 4].map((i) => ({ gen: 2, i })),
  );
  assert.equal(h.epoch, first.epoch);
});

test('nats-server restarted with file storage: history and epoch survive, a client away meanwhile recovers exactly', async (t) => {
  const nats = await OwnNats.start(t);
  const [a] = await twoNodes(t, nats.url);
  for (let i = 1; i <= 5; i++) await a.call('publish', { channel: 'kept', data: { i } });
  const before = (await a.call('history', { channel: 'kept', limit: 0 })).result;
  await nats.stop();
  await a.waitReady(false, 5000);
  await nats.start();
  await a.waitReady(true);
  for (let i = 6; i <= 8; i++) {
    const r = await a.call('publish', { channel: 'kept', data: { i } });
    assert.deepEqual(r.result, { offset: i, epoch: before.epoch });
  }
  const back = makeClient(t, a, { token: await mintToken(a.secret, { sub: 'ann' }) });
  const got: number[] = [];
  const sub = back.newSubscription('kept', { since: { offset: 3, epoch: before.epoch } });
  sub.on('publication', (ctx) => got.push((ctx.data as { i: number }).i));
  const subscribed = waitFor(sub, 'subscribed');
  sub.subscribe();
  back.connect();
  assert.equal((await subscribed).recovered, true);
  assert.deepEqual(got, range(4, 8));
});

test('nats-server killed and restarted (file storage) while two nodes publish: 100 meanwhile; after it, every acknowledged publication reached every subscriber once and in order, and history holds them', async (t) => {
  const nats = await OwnNats.start(t);
  const [a, b] = await twoNodes(t, nats.url);
  const clients = [await subscribedClient(t, a, 'ann', 'alerts'), await subscribedClient(t, b, 'bob', 'alerts')];
  const N = 30;
  for (let i = 1; i <= 10; i++) await publishAcked(a, 'alerts', { i }, `k${i}`);
  await Promise.all(clients.map((c) => c.until(10)));

  await nats.stop();
  await a.waitReady(false, 5000);
  assert.equal((await a.call('publish', { channel: 'alerts', data: { i: 'refused' } })).error?.code, 100);
  // Publishers retry through the outage; the idempotency key makes each retry the same publication.
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
  }
  const h = (await b.call('history', { channel: 'alerts', limit: -1 })).result;
  assert.deepEqual(
    h.publications.map((p: any) => p.data.i),
    range(1, N),
  );
});

test('nats-server restarted with memory storage: the stream is gone, a node makes a new one; the next publication starts a new epoch at 1, the old position gets no publications', async (t) => {
  const nats = await OwnNats.start(t);
  const e = new RedisEngine(
    loadConfig({
      object: {
        log: { level: 'error' },
        engine: {
          type: 'redis',
          broker: 'nats',
          redis: { address: SHARED_REDIS, prefix: uniquePrefix('js-mem') },
          nats: { url: nats.url, connect_timeout: '300ms', history: 'jetstream', jetstream: { storage: 'memory' } },
        },
      },
    }).config,
  );
  await e.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  t.after(() => e.close());
  const HIST = { historySize: 100, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
  let old = { offset: 0, epoch: '' };
  for (let i = 1; i <= 3; i++) old = await e.broker.publish('mem', String(i), HIST);
  await nats.stop();
  await nats.start();
  let next: { offset: number; epoch: string } | undefined;
  await until('a publish acknowledged after the restart', 10_000, async () => {
    next = await e.broker.publish('mem', '"after"', HIST).catch(() => undefined);
    return next !== undefined;
  });
  assert.equal(next!.offset, 1);
  assert.notEqual(next!.epoch, old.epoch);
  const h = await e.history.read('mem', { since: old, historyTtlMs: 60_000, historyMetaTtlMs: 0 });
  assert.deepEqual(h, { publications: [], position: next });
});

test('remove keeps the position; idempotent publishes answer the first offset across nodes; a history_size above the stream limit is refused', async (t) => {
  const nats = await OwnNats.start(t);
  const cfg = (): RedisEngine =>
    new RedisEngine(
      loadConfig({
        object: {
          log: { level: 'error' },
          engine: {
            type: 'redis',
            broker: 'nats',
            redis: { address: SHARED_REDIS, prefix: uniquePrefix('js-engine') },
            nats: { url: nats.url, history: 'jetstream', jetstream: { storage: 'memory', max_history_size: 20 } },
          },
        },
      }).config,
    );
  const [e1, e2] = [cfg(), cfg()];
  for (const e of [e1, e2]) {
    await e.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
    t.after(() => e.close());
  }
  const HIST = { historySize: 20, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
  const first = await e1.broker.publish('pay', '"a"', { ...HIST, idempotencyKey: 'order-1' });
  await e2.broker.publish('pay', '"b"', HIST);
  // The same key on the other node: the stream's duplicate window answers with the first publication's offset.
  assert.deepEqual(await e2.broker.publish('pay', '"a"', { ...HIST, idempotencyKey: 'order-1' }), { ...first, duplicate: true });
  // The same key on another channel is another publication.
  assert.equal((await e2.broker.publish('pay-2', '"a"', { ...HIST, idempotencyKey: 'order-1' })).offset, 1);

  await e2.history.remove('pay');
  const h = await e1.history.read('pay', { historyTtlMs: 60_000, historyMetaTtlMs: 0 });
  assert.deepEqual(h, { publications: [], position: { offset: 2, epoch: first.epoch } });
  assert.deepEqual(await e1.broker.publish('pay', '"c"', HIST), { offset: 3, epoch: first.epoch });
  const after = await e2.history.read('pay', { historyTtlMs: 60_000, historyMetaTtlMs: 0 });
  assert.deepEqual(
    after.publications.map((p) => [p.offset, p.data]),
    [[3, '"c"']],
  );
  await assert.rejects(e1.broker.publish('pay', '"d"', { ...HIST, historySize: 21 }), /max_history_size \(20\)/);

  // A retry after its first publication was pushed out of the stream (20 per channel): a duplicate, offset unknown (0).
  const early = await e1.broker.publish('trimmed', '"x"', { ...HIST, idempotencyKey: 'early' });
  for (let i = 0; i < 21; i++) await e1.broker.publish('trimmed', String(i), HIST);
  assert.deepEqual(await e2.broker.publish('trimmed', '"x"', { ...HIST, idempotencyKey: 'early' }), {
    offset: 0,
    epoch: early.epoch,
    duplicate: true,
  });
  // Without history nothing is stored, so a key does not deduplicate.
  const NONE = { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: 0, idempotencyKey: 'k' };
  assert.deepEqual(
    [await e1.broker.publish('bare', '1', NONE), await e1.broker.publish('bare', '1', NONE)],
    [
      { offset: 0, epoch: '' },
      { offset: 0, epoch: '' },
    ],
  );
});

test('a stream an operator made is used as found (any name) and its limits are set to the config; a channel quiet for max_age starts a new epoch', async (t) => {
  const nats = await OwnNats.start(t);
  const nc = await natsClient(t, nats.url);
  const made = await jsApi(nc, 'STREAM.CREATE.ops_made', {
    name: 'ops_made',
    subjects: ['switchboard.h.>'],
    storage: 'memory',
    max_msgs_per_subject: 5,
  });
  assert.equal(made.error, undefined);
  const e = new RedisEngine(
    loadConfig({
      object: {
        log: { level: 'error' },
        engine: {
          type: 'redis',
          broker: 'nats',
          redis: { address: SHARED_REDIS, prefix: uniquePrefix('js-ops') },
          nats: { url: nats.url, history: 'jetstream', jetstream: { max_history_size: 50, max_age: '1s' } },
        },
      },
    }).config,
  );
  await e.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  t.after(() => e.close());
  const HIST = { historySize: 50, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
  const first = await e.broker.publish('quiet', '1', HIST);
  const info = await jsApi(nc, 'STREAM.INFO.ops_made');
  assert.deepEqual(
    [info.config.max_msgs_per_subject, info.config.max_age, info.config.allow_direct, info.config.storage, info.state.messages],
    [50, 1e9, true, 'memory', 1],
    'limits updated, storage kept, the publication in it',
  );
  assert.deepEqual((await jsApi(nc, 'STREAM.NAMES')).streams, ['ops_made']);
  // max_age: the channel's last message ages out, and with it the position.
  await until('the channel to age out', 10_000, async () => (await jsApi(nc, 'STREAM.INFO.ops_made')).state.messages === 0);
  const next = await e.broker.publish('quiet', '2', HIST);
  assert.equal(next.offset, 1);
  assert.notEqual(next.epoch, first.epoch);
});

test('reads: short ones walk back message by message, long ones take one consumer batch (from a checkpoint when a few hops reach it); all answer the same windows', async (t) => {
  const nats = await OwnNats.start(t);
  const e = new RedisEngine(
    loadConfig({
      object: {
        log: { level: 'error' },
        engine: {
          type: 'redis',
          broker: 'nats',
          redis: { address: SHARED_REDIS, prefix: uniquePrefix('js-reads') },
          nats: { url: nats.url, history: 'jetstream', jetstream: { max_history_size: 60 } },
        },
      },
    }).config,
  );
  await e.start({ onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} });
  t.after(() => e.close());
  const HIST = { historySize: 50, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
  const READ = { historyTtlMs: 60_000, historyMetaTtlMs: 0 };
  let epoch = '';
  // Another channel's messages between this one's: the stream's sequences are not the channel's offsets.
  for (let i = 1; i <= 80; i++) {
    epoch = (await e.broker.publish('long', String(i), HIST)).epoch;
    await e.broker.publish('other', String(i), HIST);
  }
  const offsets = async (o: Record<string, unknown>): Promise<number[]> =>
    (await e.history.read('long', { ...READ, ...o })).publications.map((p) => {
      assert.equal(p.data, String(p.offset), 'each offset with its own data');
      return p.offset;
    });
  // history_size 50 of 80: offsets 31..80; checkpoints at 32 and 64.
  assert.deepEqual(await offsets({}), range(31, 80), 'the whole window: a batch of the subject');
  assert.deepEqual(await offsets({ since: { offset: 40, epoch }, limit: 5 }), range(41, 45), 'a batch from checkpoint 32');
  assert.deepEqual(await offsets({ since: { offset: 66, epoch } }), range(67, 80), 'a batch from checkpoint 64');
  assert.deepEqual(await offsets({ since: { offset: 63, epoch } }), range(64, 80), 'a batch that starts at checkpoint 64 itself');
  assert.deepEqual(await offsets({ since: { offset: 75, epoch } }), range(76, 80), 'a walk');
  assert.deepEqual(await offsets({ since: { offset: 2, epoch } }), range(31, 80), 'since below the window: the window');
  assert.deepEqual(await offsets({ reverse: true, limit: 20 }), range(61, 80).reverse(), 'reverse, a batch from checkpoint 32');
  assert.deepEqual(await offsets({ reverse: true, limit: 3 }), [80, 79, 78], 'reverse, a walk');
  assert.deepEqual(await offsets({ since: { offset: 80, epoch } }), []);
});
