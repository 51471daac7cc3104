/**
 * Tags filters (the SDK's `tagsFilter`, namespace `allow_tags_filter`) with
 * the real `centrifuge` SDK, JSON and Protobuf: subscribers get only the
 * publications whose tags match, the hub evaluates a filter once per
 * publication for all subscribers that share it, positioned subscribers
 * keep their position across filtered-out publications (and recover only
 * matching ones), and bad filters are a clear 107 (103 where not allowed),
 * counted, with the connection left working (also under random input).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { filterEvaluations } from '../src/hub/hub.js';
import { embedded, SECRET, type EmbeddedNode } from './helpers/embedded.js';
import { RawClient } from './helpers/raw.js';
import type { TestContextLike } from './helpers/scope.js';
import { BrowserLikeWebSocket } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const ticks = {
  name: 'ticks',
  allow_subscribe_for_client: true,
  allow_tags_filter: true,
  history_size: 100,
  history_ttl: '300s',
  allow_recovery: true,
};
const closed = { name: 'closed', allow_subscribe_for_client: true };

async function node(t: TestContextLike): Promise<EmbeddedNode> {
  return embedded(t, { channel: { namespaces: [ticks, closed] } });
}

type Encoding = 'json' | 'protobuf';

async function client(t: TestContextLike, n: EmbeddedNode, enc: Encoding, user = 'u'): Promise<Centrifuge> {
  const token = await mintToken(SECRET, { sub: user });
  const Ctor = enc === 'json' ? Centrifuge : (ProtobufCentrifuge as unknown as typeof Centrifuge);
  const c = new Ctor(n.ws, { websocket: BrowserLikeWebSocket, token, minReconnectDelay: 50, maxReconnectDelay: 300, timeout: 5000 });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  return c;
}

const value = (enc: Encoding, data: unknown): any => (enc === 'json' ? data : JSON.parse(Buffer.from(data as Uint8Array).toString('utf8')));

async function subscribed(c: Centrifuge, channel: string, opts: Record<string, unknown>) {
  const sub = c.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 300, ...opts });
  const pubs = collect<{ data: unknown; offset?: number; tags?: Record<string, string> }>(sub, 'publication');
  const resubscribes = collect(sub, 'subscribing');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  return { sub, pubs, resubscribes, ctx: await ok };
}

const trades: Array<[string, string]> = [
  ['BTC', '50001'],
  ['ETH', '3000'],
  ['SOL', '150'],
  ['BTC', '49000'],
  ['DOGE', 'n/a'],
  ['ETH', '3100'],
];

for (const enc of ['json', 'protobuf'] as const) {
  test(`${enc}: each subscriber gets only the publications its filter matches`, async (t) => {
    const n = await node(t);
    const c = await client(t, n, enc);
    const c2 = await client(t, n, enc, 'v');
    const btc = await subscribed(c, 'ticks:a', { tagsFilter: { key: 'ticker', cmp: 'eq', val: 'BTC' } });
    const alts = await subscribed(c2, 'ticks:a', { tagsFilter: { key: 'ticker', cmp: 'in', vals: ['ETH', 'SOL'] } });
    const rich = await subscribed(c, 'ticks:b', {
      tagsFilter: {
        op: 'and',
        nodes: [
          { key: 'price', cmp: 'gt', val: '1000' },
          { op: 'not', nodes: [{ key: 'ticker', cmp: 'sw', val: 'E' }] },
        ],
      },
    });
    const everything = await subscribed(c2, 'ticks:b', {});
    for (const [i, [ticker, price]] of trades.entries()) {
      for (const ch of ['ticks:a', 'ticks:b']) await n.sb.publish(ch, { i, ticker }, { tags: { ticker, price } });
    }
    const ids = async (r: Awaited<ReturnType<typeof subscribed>>, count: number) =>
      (await r.pubs.until(count)).map((p) => value(enc, p.data).i as number);
    assert.deepEqual(await ids(everything, 6), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(await ids(btc, 2), [0, 3]);
    assert.deepEqual(await ids(alts, 3), [1, 2, 5]);
    assert.deepEqual(await ids(rich, 2), [0, 3], 'price > 1000 and the ticker does not start with E; "n/a" is no number');
    // nothing more arrived behind the last expected one: the unfiltered subscriber saw every publication first
    assert.equal(btc.pubs.items.length, 2);
    assert.equal(alts.pubs.items.length, 3);
    assert.equal(rich.pubs.items.length, 2);
    assert.deepEqual(btc.pubs.items[0]!.tags, { ticker: 'BTC', price: '50001' });
  });
}

test('a filter is evaluated once per publication for all subscribers that share it', async (t) => {
  const n = await node(t);
  const filters = [
    { key: 'ticker', cmp: 'in', vals: ['BTC', 'ETH'] },
    { vals: ['ETH', 'BTC'], cmp: 'in', key: 'ticker' }, // the same filter written differently
    { cmp: 'in', key: 'ticker', vals: ['BTC', 'ETH'] },
  ];
  const subs = [];
  for (const [i, f] of filters.entries())
    subs.push(await subscribed(await client(t, n, i % 2 ? 'protobuf' : 'json', `u${i}`), 'ticks:x', { tagsFilter: f }));
  const before = filterEvaluations.count;
  for (const [i, [ticker, price]] of trades.entries()) await n.sb.publish('ticks:x', { i }, { tags: { ticker, price } });
  for (const s of subs) await s.pubs.until(4);
  assert.equal(filterEvaluations.count - before, trades.length, 'one evaluation per publication, not per subscriber');
});

test('a positioned subscriber keeps its position across filtered-out publications and recovers only matching ones', async (t) => {
  const n = await node(t);
  const c = await client(t, n, 'json');
  const r = await subscribed(c, 'ticks:pos', { recoverable: true, positioned: true, tagsFilter: { key: 'ticker', cmp: 'eq', val: 'BTC' } });
  for (const [i, [ticker, price]] of trades.entries()) await n.sb.publish('ticks:pos', { i }, { tags: { ticker, price } });
  await r.pubs.until(2);
  const gone = waitFor(c, 'disconnected');
  c.disconnect();
  await gone;
  for (const [i, [ticker, price]] of trades.entries()) await n.sb.publish('ticks:pos', { i: i + 10 }, { tags: { ticker, price } });
  const again = waitFor<{ recovered: boolean }>(r.sub, 'subscribed');
  c.connect();
  assert.equal((await again).recovered, true);
  await n.sb.publish('ticks:pos', { i: 99 }, { tags: { ticker: 'BTC' } });
  const got = await r.pubs.until(5);
  assert.deepEqual(
    got.map((p) => (p.data as { i: number }).i),
    [0, 3, 10, 13, 99],
  );
  assert.deepEqual(
    got.map((p) => p.offset),
    [1, 4, 7, 10, 13],
  );
  assert.deepEqual(
    r.resubscribes.items.map((e: { code: number }) => e.code).filter((code) => code >= 2000 && code < 3000),
    [],
    'skipped offsets are no gap: no insufficient-state resubscribe',
  );
});

async function raw(t: TestContextLike, n: EmbeddedNode): Promise<RawClient> {
  const c = await RawClient.open(t, n);
  await c.connect(await mintToken(SECRET, { sub: 'raw' }));
  return c;
}

async function badInput(n: EmbeddedNode, label: string): Promise<number> {
  const m = await n.sb.metrics.badInput.get();
  return m.values.filter((v) => v.labels.kind === label).reduce((a, v) => a + v.value, 0);
}

test('bad filters are a 107 that says why, refused filters a 103; counted; the connection stays', async (t) => {
  const n = await node(t);
  const c = await raw(t, n);
  const before = await badInput(n, 'tags_filter');
  const bad: unknown[] = [
    'BTC',
    [],
    { key: 'ticker' },
    { key: 'ticker', cmp: 'like', val: 'B%' },
    { key: '', cmp: 'eq', val: 'x' },
    { key: 'ticker', cmp: 'in' },
    { key: 'ticker', cmp: 'in', vals: [1, 2] },
    { key: 'price', cmp: 'gt', val: 'lots' },
    { op: 'xor', nodes: [{ key: 'a', cmp: 'ex' }] },
    { op: 'and', nodes: [] },
    {
      op: 'not',
      nodes: [
        { key: 'a', cmp: 'ex' },
        { key: 'b', cmp: 'ex' },
      ],
    },
    { op: 'and', nodes: 'x' },
    { key: 'a', cmp: 'eq', val: 'x', nodes: [{ key: 'b', cmp: 'ex' }] },
    { key: 'a', cmp: 'in', vals: Array.from({ length: 300 }, (_, i) => String(i)) },
    { key: 'a'.repeat(300), cmp: 'ex' },
    JSON.parse('{"op":"and","nodes":[' + '{"op":"not","nodes":['.repeat(10) + '{"key":"a","cmp":"ex"}' + ']}'.repeat(10) + ']}'),
  ];
  for (const [i, tf] of bad.entries()) {
    const r = await c.command('subscribe', { channel: `ticks:bad${i}`, tf });
    assert.equal(r.error?.code, 107, `${JSON.stringify(tf).slice(0, 80)} → ${JSON.stringify(r)}`);
    assert.match(r.error.message, /tags filter/);
  }
  const both = await c.command('subscribe', { channel: 'ticks:both', tf: { key: 'a', cmp: 'ex' }, delta: 'fossil' });
  assert.equal(both.error?.code, 107, 'delta and a tags filter together');
  const refused = await c.command('subscribe', { channel: 'closed:x', tf: { key: 'a', cmp: 'ex' } });
  assert.equal(refused.error?.code, 103, 'the namespace does not allow tags filters');
  assert.equal(await badInput(n, 'tags_filter'), before + bad.length + 2);
  const ok = await c.command('subscribe', { channel: 'ticks:ok', tf: { key: 'a', cmp: 'ex' } });
  assert.ok(ok.subscribe, JSON.stringify(ok));
  assert.equal(c.closeCode, undefined, 'the connection stays');
});

test('random filter trees never break the connection: each is subscribed or refused with 107', async (t) => {
  const n = await node(t);
  let c = await raw(t, n);
  let seed = 7;
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed >>> 16) % k; // the high bits: an LCG's low bits repeat with a short period
  };
  const atoms: unknown[] = ['', 'a', 'eq', 'in', 'and', 'not', 'gt', '1', 1, -1, null, true, {}, [], 'x'.repeat(400)];
  const pick = () => atoms[rnd(atoms.length)];
  const leaf = (): unknown => {
    const cmp = ['eq', 'neq', 'in', 'nin', 'ex', 'nex', 'sw', 'ew', 'ct', 'lt', 'lte', 'gt', 'gte'][rnd(13)]!;
    if (cmp === 'in' || cmp === 'nin') return { key: 'ticker', cmp, vals: ['BTC', 'ETH'] };
    return { key: ['ticker', 'price'][rnd(2)], cmp, val: String(rnd(100)) };
  };
  const tree = (d: number): unknown => {
    if (rnd(2)) return rnd(4) ? leaf() : { op: ['and', 'or'][rnd(2)], nodes: [leaf(), d < 5 ? tree(d + 1) : leaf()] };
    const o: Record<string, unknown> = {};
    if (rnd(3) === 0) o.op = rnd(2) ? ['and', 'or', 'not'][rnd(3)] : pick();
    if (rnd(2)) o.key = rnd(3) ? ['ticker', 'price'][rnd(2)] : pick();
    if (rnd(2)) o.cmp = rnd(3) ? ['eq', 'neq', 'in', 'nin', 'ex', 'nex', 'sw', 'ew', 'ct', 'lt', 'lte', 'gt', 'gte'][rnd(13)] : pick();
    if (rnd(2)) o.val = rnd(3) ? String(rnd(100)) : pick();
    if (rnd(3) === 0) o.vals = rnd(3) ? ['BTC', 'ETH'] : pick();
    if (d < 5 && rnd(3) === 0) o.nodes = Array.from({ length: rnd(4) }, () => tree(d + 1));
    return o;
  };
  const outcomes = { ok: 0, bad: 0 };
  for (let i = 0; i < 200; i++) {
    // a fresh connection every few commands: many refusals in a row are a disconnect of their own (guard)
    if (i % 8 === 7) {
      assert.equal(c.closeCode, undefined);
      c.ws.close();
      c = await raw(t, n);
    }
    const r = await c.command('subscribe', { channel: `ticks:f${i}`, tf: tree(0) });
    if (r.subscribe) outcomes.ok++;
    else {
      assert.equal(r.error?.code, 107, JSON.stringify(r));
      outcomes.bad++;
    }
  }
  assert.ok(outcomes.ok > 10 && outcomes.bad > 10, `both outcomes happen: ${JSON.stringify(outcomes)}`);
  assert.equal(c.closeCode, undefined);
  // the accepted filters are evaluated without harm
  await n.sb.publish('ticks:f0', { x: 1 }, { tags: { ticker: 'BTC', price: '5' } });
  const again = await c.command('presence_stats', { channel: 'ticks:f0' });
  assert.ok(again.error || again.presence_stats, 'still answering');
});
