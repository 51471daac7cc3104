/**
 * The Redis engine's map role across nodes: two engines on one real Redis
 * (one key prefix = one cluster of nodes). A mutation on one node reaches
 * the other through PUB/SUB with its key; lapsed keys are removed once
 * however many nodes sweep; state pages and the stream join with no gap
 * while the map changes under them; Redis away answers "unavailable" and
 * the map works again when it is back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineUnavailableError } from '../src/engine/errors.js';
import type { MapChannelOptions } from '../src/engine/types.js';
import { RedisCluster } from './helpers/redis-cluster.js';
import { OwnRedis, redisCommand, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { redisNode } from './helpers/redis-map.js';
import { until } from './helpers/wait.js';

const DURABLE: MapChannelOptions = { streamSize: 100, streamTtlMs: 60_000, metaTtlMs: 0 };
const STREAMLESS: MapChannelOptions = { streamSize: 0, streamTtlMs: 0, metaTtlMs: 0 };

test('two nodes: a publish and a remove on node A reach node B with key, data, info and offsets in order', async (t) => {
  const prefix = uniquePrefix('map2');
  const a = await redisNode(t, { address: SHARED_REDIS }, prefix);
  const b = await redisNode(t, { address: SHARED_REDIS }, prefix);
  await b.engine.broker.subscribe('doc');
  const info = { client: 'c1', user: 'ann' };
  const r1 = await a.engine.maps.publish('doc', 'premium', '{"v":1}', { ...DURABLE, keyTtlMs: 0, info, tags: { t: 'x' } });
  const r2 = await a.engine.maps.publish('doc', 'clause/ü', '"text"', { ...DURABLE, keyTtlMs: 0, delta: true });
  const r3 = await a.engine.maps.remove('doc', 'premium', { ...DURABLE });
  assert.deepEqual(
    [r1, r2, r3].map((r) => r.offset),
    [1, 2, 3],
  );
  assert.equal(new Set([r1.epoch, r2.epoch, r3.epoch]).size, 1);
  await until('three updates on node B', 3000, () => b.feed.of('doc').length === 3);
  const [p1, p2, p3] = b.feed.of('doc');
  assert.deepEqual(
    { key: p1!.key, data: p1!.data, offset: p1!.offset, info: p1!.info, tags: p1!.tags },
    {
      key: 'premium',
      data: '{"v":1}',
      offset: 1,
      info,
      tags: { t: 'x' },
    },
  );
  assert.deepEqual({ key: p2!.key, data: p2!.data, delta: p2!.delta }, { key: 'clause/ü', data: '"text"', delta: true });
  assert.deepEqual({ key: p3!.key, removed: p3!.removed, offset: p3!.offset }, { key: 'premium', removed: true, offset: 3 });

  // Node B reads what node A wrote: the state, and the stream from any position.
  const state = await b.engine.maps.readState('doc', { limit: 10, metaTtlMs: 0 });
  assert.deepEqual(
    state.entries.map((e) => [e.key, e.data, e.offset]),
    [['clause/ü', '"text"', 2]],
  );
  assert.deepEqual(state.position, { offset: 3, epoch: r1.epoch });
  const stream = await b.engine.maps.readStream('doc', { since: { offset: 1, epoch: r1.epoch }, streamTtlMs: 60_000, metaTtlMs: 0 });
  assert.equal(stream.recoverable, true);
  assert.deepEqual(
    stream.publications.map((p) => [p.offset, p.key, p.removed === true]),
    [
      [2, 'clause/ü', false],
      [3, 'premium', true],
    ],
  );
  // Another epoch, or a streamless channel, cannot be continued.
  const other = await b.engine.maps.readStream('doc', { since: { offset: 1, epoch: 'nope' }, streamTtlMs: 0, metaTtlMs: 0 });
  assert.equal(other.recoverable, false);
  await a.engine.maps.publish('eph', 'k', '1', { ...STREAMLESS, keyTtlMs: 0 });
  const e2 = await a.engine.maps.publish('eph', 'k', '2', { ...STREAMLESS, keyTtlMs: 0 });
  assert.equal(e2.offset, 2, 'offsets count on a streamless map too');
  const lost = await b.engine.maps.readStream('eph', { since: { offset: 1, epoch: e2.epoch }, streamTtlMs: 0, metaTtlMs: 0 });
  assert.deepEqual([lost.recoverable, lost.publications.length], [false, 0]);
});

test('a lapsed key is removed once, with one removal publication, while two nodes sweep', async (t) => {
  const prefix = uniquePrefix('mapttl');
  const a = await redisNode(t, { address: SHARED_REDIS }, prefix, 50);
  const b = await redisNode(t, { address: SHARED_REDIS }, prefix, 50);
  for (const n of [a, b]) await n.engine.broker.subscribe('cursors');
  for (let i = 0; i < 20; i++) await a.engine.maps.publish('cursors', `u${i}`, String(i), { ...DURABLE, keyTtlMs: 300 });
  await b.engine.maps.publish('cursors', 'stays', '"x"', { ...DURABLE, keyTtlMs: 0 });
  await until('20 removals', 5000, () => a.feed.of('cursors').filter((p) => p.removed).length >= 20);
  await new Promise((r) => setTimeout(r, 300)); // a second removal of any key would arrive by now
  for (const n of [a, b]) {
    const removals = n.feed.of('cursors').filter((p) => p.removed);
    assert.equal(removals.length, 20, 'each lapsed key removed once');
    assert.equal(new Set(removals.map((p) => p.key)).size, 20);
    const offsets = n.feed.of('cursors').map((p) => p.offset);
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => i + 1),
      'offsets contiguous, removals included',
    );
  }
  const state = await a.engine.maps.readState('cursors', { limit: 100, metaTtlMs: 0 });
  assert.deepEqual(
    state.entries.map((e) => e.key),
    ['stays'],
  );
  assert.equal((await b.engine.maps.stats('cursors')).numKeys, 1);
  // The removals are in the stream, so a subscriber that was away recovers them.
  const s = await b.engine.maps.readStream('cursors', { since: { offset: 21, epoch: state.position.epoch }, streamTtlMs: 0, metaTtlMs: 0 });
  assert.equal(s.recoverable, true);
  assert.equal(s.publications.length, 20);
  assert.ok(s.publications.every((p) => p.removed === true && p.info === undefined));

  // A key published again before it lapses lives on; refreshTtlOnSuppress extends it without a publication.
  await a.engine.maps.publish('cursors', 'kept', '1', { ...DURABLE, keyTtlMs: 400 });
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const r = await b.engine.maps.publish('cursors', 'kept', '1', {
      ...DURABLE,
      keyTtlMs: 400,
      keyMode: 'if_new',
      refreshTtlOnSuppress: true,
    });
    assert.equal(r.suppressReason, 'key_exists');
  }
  assert.equal(a.feed.of('cursors').filter((p) => p.key === 'kept' && p.removed).length, 0, 'refreshed, not removed');
  await until('kept lapses once nobody refreshes it', 5000, () => a.feed.of('cursors').some((p) => p.key === 'kept' && p.removed));
});

test('a removal (explicit or by expiry) carries the removed entry tags, whatever characters they hold', async (t) => {
  const prefix = uniquePrefix('maptags');
  const a = await redisNode(t, { address: SHARED_REDIS }, prefix, 50);
  const b = await redisNode(t, { address: SHARED_REDIS }, prefix, 50);
  await b.engine.broker.subscribe('tagged');
  const tags = { team: 'ünïcode ✓', emoji: '😀 "q" \\ /', plain: 'x' };
  const info = { client: 'c-ü', user: 'zoë 😀', connInfo: '{"n":"ü"}' };
  await a.engine.maps.publish('tagged', 'k/😀', '{"v":"ü"}', { ...DURABLE, keyTtlMs: 0, tags, info });
  await a.engine.maps.publish('tagged', 'lapses', '1', { ...DURABLE, keyTtlMs: 150, tags });
  await a.engine.maps.remove('tagged', 'k/😀', { ...DURABLE, info: { client: 'c2', user: 'bob' } });
  await until('both removals on node B', 5000, () => b.feed.of('tagged').filter((p) => p.removed).length === 2);
  const [explicit, expired] = b.feed.of('tagged').filter((p) => p.removed);
  assert.deepEqual([explicit!.key, explicit!.tags, explicit!.info, explicit!.data], ['k/😀', tags, { client: 'c2', user: 'bob' }, '']);
  assert.deepEqual([expired!.key, expired!.tags, expired!.info], ['lapses', tags, undefined]);
  const set = b.feed.of('tagged')[0]!;
  assert.deepEqual([set.key, set.data, set.tags, set.info], ['k/😀', '{"v":"ü"}', tags, info]);
  const s = await b.engine.maps.readStream('tagged', { streamTtlMs: 0, metaTtlMs: 0 });
  assert.deepEqual(
    s.publications.map((p) => [p.key, p.removed === true, p.tags]),
    [
      ['k/😀', false, tags],
      ['lapses', false, tags],
      ['k/😀', true, tags],
      ['lapses', true, tags],
    ],
  );
});

test('key modes, max keys and idempotency are decided in the script, whichever node asks', async (t) => {
  const prefix = uniquePrefix('mapmodes');
  const a = await redisNode(t, { address: SHARED_REDIS }, prefix);
  const b = await redisNode(t, { address: SHARED_REDIS }, prefix);
  const o = { ...DURABLE, keyTtlMs: 0 };
  assert.equal((await a.engine.maps.publish('lobby', 'seat1', '"ann"', { ...o, keyMode: 'if_new' })).suppressed, undefined);
  const taken = await b.engine.maps.publish('lobby', 'seat1', '"bob"', { ...o, keyMode: 'if_new' });
  assert.deepEqual([taken.suppressed, taken.suppressReason, taken.offset], [true, 'key_exists', 1]);
  assert.equal((await b.engine.maps.publish('lobby', 'seat9', '"x"', { ...o, keyMode: 'if_exists' })).suppressReason, 'key_not_found');
  assert.equal((await b.engine.maps.remove('lobby', 'seat9', DURABLE)).suppressReason, 'key_not_found');
  await a.engine.maps.publish('lobby', 'seat2', '"cy"', { ...o, maxKeys: 2 });
  assert.equal((await b.engine.maps.publish('lobby', 'seat3', '"di"', { ...o, maxKeys: 2 })).suppressReason, 'too_many_keys');
  assert.equal(
    (await b.engine.maps.publish('lobby', 'seat2', '"ed"', { ...o, maxKeys: 2 })).suppressed,
    undefined,
    'an existing key may change',
  );
  const first = await a.engine.maps.publish('lobby', 'seat1', '"fay"', { ...o, idempotencyKey: 'op-1' });
  const again = await b.engine.maps.publish('lobby', 'seat1', '"gus"', { ...o, idempotencyKey: 'op-1' });
  assert.deepEqual([again.offset, again.epoch, again.suppressReason], [first.offset, first.epoch, 'idempotency']);
  const state = await b.engine.maps.readState('lobby', { limit: 10, metaTtlMs: 0, key: 'seat1' });
  assert.deepEqual(
    state.entries.map((e) => e.data),
    ['"fay"'],
  );
  await a.engine.maps.clear('lobby');
  assert.equal((await b.engine.maps.stats('lobby')).numKeys, 0);
  const fresh = await b.engine.maps.publish('lobby', 'seat1', '"hal"', o);
  assert.equal(fresh.offset, 1, 'clear drops the meta: a new stream');
  assert.notEqual(fresh.epoch, first.epoch);
});

test('state pages read while another node writes, then the stream since the first page: the same map as the writer ends with', async (t) => {
  const prefix = uniquePrefix('mapsnap');
  const a = await redisNode(t, { address: SHARED_REDIS }, prefix);
  const b = await redisNode(t, { address: SHARED_REDIS }, prefix);
  const o = { ...DURABLE, streamSize: 10_000, keyTtlMs: 0 };
  const truth = new Map<string, string>();
  for (let i = 0; i < 300; i++) {
    truth.set(`k${i}`, String(i));
    await a.engine.maps.publish('big', `k${i}`, String(i), o);
  }
  let stop = false;
  let n = 0;
  const writer = (async () => {
    while (!stop) {
      const k = `k${Math.floor(Math.random() * 400)}`;
      if (n % 5 === 0) {
        truth.delete(k);
        await a.engine.maps.remove('big', k, o);
      } else {
        truth.set(k, `"w${n}"`);
        await a.engine.maps.publish('big', k, `"w${n}"`, o);
      }
      n++;
    }
  })();
  const seen = new Map<string, string>();
  let cursor = '';
  let first: { offset: number; epoch: string } | undefined;
  let pages = 0;
  do {
    const page = await b.engine.maps.readState('big', { limit: 25, cursor, metaTtlMs: 0 });
    first ??= page.position;
    assert.ok(page.entries.length <= 25);
    for (const e of page.entries) seen.set(e.key!, e.data);
    cursor = page.cursor;
    pages++;
  } while (cursor !== '');
  stop = true;
  await writer;
  assert.ok(pages >= 12, `paginated (${pages} pages)`);
  const s = await b.engine.maps.readStream('big', { since: first, streamTtlMs: 0, metaTtlMs: 0 });
  assert.equal(s.recoverable, true);
  for (const p of s.publications) {
    if (p.removed) seen.delete(p.key!);
    else seen.set(p.key!, p.data);
  }
  assert.ok(n > 0, 'the map changed during the pages');
  assert.deepEqual(new Map([...seen].sort()), new Map([...truth].sort()));
});

test("two Redis shards (address list): each map lives on its channel's shard, keys expire on both", async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('mapshards');
  const redis = { address: [SHARED_REDIS, own.url] };
  const a = await redisNode(t, redis, prefix, 50);
  const b = await redisNode(t, redis, prefix, 50);
  const channels = Array.from({ length: 8 }, (_, i) => `room-${i}`);
  for (const ch of channels) await b.engine.broker.subscribe(ch);
  for (const ch of channels) await a.engine.maps.publish(ch, 'typing', '"ann"', { ...DURABLE, keyTtlMs: 150 });
  for (const ch of channels) {
    await until(`${ch}: set and lapsed on node B`, 5000, () => b.feed.of(ch).length === 2);
    assert.deepEqual(
      b.feed.of(ch).map((p) => [p.offset, p.removed === true]),
      [
        [1, false],
        [2, true],
      ],
    );
  }
  const onOwn = Number((await redisCommand(own.port, 'EVAL', `return #redis.call('keys', ARGV[1])`, '0', `${prefix}.m.*`)).slice(1));
  assert.ok(onOwn > 0 && onOwn < channels.length, `the maps are spread over both shards (${onOwn} of ${channels.length} on one)`);
});

test('Redis away: map calls fail as unavailable; back, a map works again (the sweep too)', async (t) => {
  const own = await OwnRedis.start(t);
  const a = await redisNode(t, { address: own.url }, uniquePrefix('mapdown'), 50);
  await a.engine.broker.subscribe('m');
  await a.engine.maps.publish('m', 'k', '1', { ...DURABLE, keyTtlMs: 0 });
  await own.stop();
  await until('unhealthy', 3000, () => !a.engine.healthy());
  await assert.rejects(a.engine.maps.publish('m', 'k', '2', { ...DURABLE, keyTtlMs: 0 }), EngineUnavailableError);
  await assert.rejects(a.engine.maps.readState('m', { limit: 10, metaTtlMs: 0 }), EngineUnavailableError);
  await assert.rejects(a.engine.maps.readStream('m', { streamTtlMs: 0, metaTtlMs: 0 }), EngineUnavailableError);
  await own.start();
  await until('healthy again', 10_000, () => a.engine.healthy());
  await until('a publish goes through', 10_000, async () =>
    a.engine.maps.publish('m', 'k', '3', { ...DURABLE, keyTtlMs: 200 }).then(
      () => true,
      () => false,
    ),
  );
  await until('the lapsed key is removed and delivered', 5000, () => a.feed.of('m').some((p) => p.key === 'k' && p.removed));
});

test('Redis Cluster with replica_wait: map publish, remove, pages, stream and key expiry on channels of every master, across two nodes', async (t) => {
  const cluster = await RedisCluster.start(t);
  const prefix = uniquePrefix('mapcluster');
  // replica_wait: every mutation (and every expiry's removal) is sent once a replica has it.
  const redis = { cluster_addresses: cluster.addresses, replica_wait: 1, replica_wait_timeout: '2s' };
  const a = await redisNode(t, redis, prefix, 50);
  const b = await redisNode(t, redis, prefix, 50);
  const channels = ['quote:1', 'quote:2', 'quote:3', 'quote:4', 'quote:5', 'quote:6'];
  const masters = new Set(await Promise.all(channels.map((ch) => cluster.masterOf(`${prefix}.mh.{${ch}}`))));
  assert.ok(masters.size >= 2, `the maps live on ${masters.size} masters`);
  for (const ch of channels) await b.engine.broker.subscribe(ch);
  const o = { ...DURABLE, keyTtlMs: 0 };
  for (const ch of channels) {
    for (let i = 0; i < 30; i++) await a.engine.maps.publish(ch, `field${i}`, String(i), o);
    assert.equal((await a.engine.maps.publish(ch, 'field0', '0', { ...o, keyMode: 'if_new' })).suppressReason, 'key_exists');
    await a.engine.maps.remove(ch, 'field29', { ...DURABLE, idempotencyKey: 'rm-29' });
    await a.engine.maps.publish(ch, 'lock', '"ann"', { ...DURABLE, keyTtlMs: 200 });
  }
  for (const ch of channels) {
    await until(`${ch}: 31 updates and the lapsed lock's removal on node B`, 10_000, () => b.feed.of(ch).length === 33);
    const pubs = b.feed.of(ch);
    assert.deepEqual(
      pubs.map((p) => p.offset),
      pubs.map((_, i) => i + 1),
    );
    assert.deepEqual(
      pubs.slice(30).map((p) => [p.key, p.removed === true]),
      [
        ['field29', true],
        ['lock', false],
        ['lock', true],
      ],
    );
    const keys: string[] = [];
    let cursor = '';
    let first;
    do {
      const page = await b.engine.maps.readState(ch, { limit: 7, cursor, metaTtlMs: 0 });
      first ??= page.position;
      keys.push(...page.entries.map((e) => e.key!));
      cursor = page.cursor;
    } while (cursor !== '');
    assert.deepEqual(keys.sort(), Array.from({ length: 29 }, (_, i) => `field${i}`).sort());
    const top = await a.engine.maps.readStream(ch, { limit: 0, streamTtlMs: 0, metaTtlMs: 0 });
    assert.deepEqual(first, top.position, 'the pages were read at the top position');
    assert.equal(top.position.offset, 33);
    const s = await a.engine.maps.readStream(ch, { since: { offset: 29, epoch: first!.epoch }, streamTtlMs: 0, metaTtlMs: 0 });
    assert.deepEqual(
      s.publications.map((p) => p.offset),
      [30, 31, 32, 33],
    );
    assert.equal((await b.engine.maps.stats(ch)).numKeys, 29);
    await b.engine.maps.clear(ch);
    assert.equal((await a.engine.maps.stats(ch)).numKeys, 0);
  }
});
