/**
 * Fossil delta compression with the real `centrifuge` SDK (JSON and
 * Protobuf builds): negotiation (`delta: 'fossil'` against the namespace's
 * `allowed_delta_types`), the SDK rebuilding every payload from deltas, one
 * delta per publication per encoding shared by all delta subscribers, the
 * first publication after subscribe whole, recovery (first recovered
 * publication whole, the rest deltas) and the per-publication `delta` flag
 * (`delta_publish`, the API's `delta`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Centrifuge, type Subscription } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { deltaComputations } from '../src/hub/hub.js';
import { embedded, SECRET, type EmbeddedNode } from './helpers/embedded.js';
import { RawClient } from './helpers/raw.js';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { scope, type TestContextLike } from './helpers/scope.js';
import { startServer } from './helpers/server.js';
import { BrowserLikeWebSocket } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const doc = {
  name: 'doc',
  history_size: 100,
  history_ttl: '300s',
  allow_recovery: true,
  allow_subscribe_for_client: true,
  allowed_delta_types: ['fossil'],
  delta_publish: true,
};
const plain = { name: 'plain', allow_subscribe_for_client: true, allowed_delta_types: ['fossil'] };
const none = { name: 'none', allow_subscribe_for_client: true };

async function node(t: TestContextLike): Promise<EmbeddedNode> {
  return embedded(t, { channel: { namespaces: [doc, plain, none] } });
}

type Encoding = 'json' | 'protobuf';

async function client(t: TestContextLike, n: { ws: string; secret?: string }, enc: Encoding, user = 'u'): Promise<Centrifuge> {
  const token = await mintToken(n.secret ?? SECRET, { sub: user });
  const Ctor = enc === 'json' ? Centrifuge : (ProtobufCentrifuge as unknown as typeof Centrifuge);
  const c = new Ctor(n.ws, { websocket: BrowserLikeWebSocket, token, minReconnectDelay: 50, maxReconnectDelay: 300, timeout: 5000 });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  return c;
}

/** The payload as the app sees it: JSON clients get values, Protobuf clients bytes. */
function valueOf(enc: Encoding, data: unknown): unknown {
  return enc === 'json' ? data : JSON.parse(Buffer.from(data as Uint8Array).toString('utf8'));
}

/** A ~10 KB JSON document; version `v` changes one field. */
function document(v: number): Record<string, unknown> {
  const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `row-${i}`, value: i * 7, note: 'lorem ipsum dolor sit amet' }));
  return { version: v, updated: `2026-01-01T00:00:${String(v % 60).padStart(2, '0')}Z`, rows };
}

async function subscribed(c: Centrifuge, channel: string, opts: Record<string, unknown>) {
  const sub = c.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 300, ...opts });
  const pubs = collect<{ data: unknown; offset?: number }>(sub, 'publication');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  return { sub, pubs, ctx: await ok };
}

function stats(sub: Subscription) {
  return sub.deltaStats();
}

for (const enc of ['json', 'protobuf'] as const) {
  test(`${enc}: delta subscribers rebuild every document; one delta per publication shared by all`, async (t) => {
    const n = await node(t);
    const a = await subscribed(await client(t, n, enc, 'a'), 'doc:1', { delta: 'fossil' });
    const b = await subscribed(await client(t, n, enc, 'b'), 'doc:1', { delta: 'fossil' });
    const full = await subscribed(await client(t, n, enc, 'c'), 'doc:1', {});
    const slot = enc === 'json' ? 0 : 1;
    const before = deltaComputations[slot]!;
    const N = 6;
    for (let v = 1; v <= N; v++) await n.sb.publish('doc:1', document(v));
    for (const r of [a, b, full]) {
      const got = await r.pubs.until(N);
      assert.deepEqual(
        got.map((p) => valueOf(enc, p.data)),
        Array.from({ length: N }, (_, i) => document(i + 1)),
      );
    }
    for (const r of [a, b]) {
      const st = stats(r.sub);
      assert.equal(st.numFullPayloads, 1, 'the first publication after subscribe is whole');
      assert.equal(st.numDeltaPayloads, N - 1, 'the rest are deltas');
      assert.ok(st.bytesReceived * 5 < st.bytesDecoded, `deltas are small: ${JSON.stringify(st)}`);
    }
    assert.equal(stats(full.sub).numDeltaPayloads, 0, 'no delta without asking');
    assert.equal(deltaComputations[slot]! - before, N - 1, 'one delta per publication for both delta subscribers');
  });

  test(`${enc}: delta is not negotiated where the namespace does not allow it, nor sent for publications without the delta flag`, async (t) => {
    const n = await node(t);
    const c = await client(t, n, enc);
    const off = await subscribed(c, 'none:1', { delta: 'fossil' });
    const noFlag = await subscribed(c, 'plain:1', { delta: 'fossil' });
    for (let v = 1; v <= 3; v++) {
      await n.sb.publish('none:1', document(v));
      await n.sb.publish('plain:1', document(v));
    }
    await n.sb.publish('plain:1', document(4), { delta: true });
    const got = await off.pubs.until(3);
    assert.deepEqual(
      got.map((p) => valueOf(enc, p.data)),
      [1, 2, 3].map(document),
    );
    assert.equal(stats(off.sub).numPublications, 0, 'the SDK saw no negotiated delta');
    const got2 = await noFlag.pubs.until(4);
    assert.deepEqual(
      got2.map((p) => valueOf(enc, p.data)),
      [1, 2, 3, 4].map(document),
    );
    assert.deepEqual(
      [stats(noFlag.sub).numFullPayloads, stats(noFlag.sub).numDeltaPayloads],
      [3, 1],
      'whole until a publication allows a delta (the API delta flag)',
    );
  });

  test(`${enc}: recovery sends the first missed publication whole and the rest as deltas; live deltas follow`, async (t) => {
    const n = await node(t);
    const c = await client(t, n, enc);
    const r = await subscribed(c, 'doc:rec', { delta: 'fossil', recoverable: true });
    for (let v = 1; v <= 3; v++) await n.sb.publish('doc:rec', document(v));
    await r.pubs.until(3);
    const before = { ...stats(r.sub) };
    const gone = waitFor(c, 'disconnected');
    c.disconnect();
    await gone;
    for (let v = 4; v <= 7; v++) await n.sb.publish('doc:rec', document(v));
    const again = waitFor<{ wasRecovering: boolean; recovered: boolean }>(r.sub, 'subscribed');
    c.connect();
    const ctx = await again;
    assert.equal(ctx.recovered, true);
    await r.pubs.until(7);
    await n.sb.publish('doc:rec', document(8));
    const got = await r.pubs.until(8);
    assert.deepEqual(
      got.map((p) => valueOf(enc, p.data)),
      [1, 2, 3, 4, 5, 6, 7, 8].map(document),
    );
    assert.deepEqual(
      got.map((p) => Number(p.offset)),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    const st = stats(r.sub);
    assert.equal(st.numFullPayloads - before.numFullPayloads, 1, 'only the first recovered publication is whole');
    assert.equal(st.numDeltaPayloads - before.numDeltaPayloads, 4, 'three recovered deltas and one live');
  });
}

test('a JSON and a Protobuf delta subscriber on one channel each get their own encoding of one delta', async (t) => {
  const n = await node(t);
  const j = await subscribed(await client(t, n, 'json'), 'doc:mix', { delta: 'fossil' });
  const p = await subscribed(await client(t, n, 'protobuf'), 'doc:mix', { delta: 'fossil' });
  const before = [...deltaComputations];
  for (let v = 1; v <= 3; v++) await n.sb.publish('doc:mix', { ...document(v), text: 'ünïcødé ✓ 😀'.repeat(v) });
  const gj = await j.pubs.until(3);
  const gp = await p.pubs.until(3);
  const want = [1, 2, 3].map((v) => ({ ...document(v), text: 'ünïcødé ✓ 😀'.repeat(v) }));
  assert.deepEqual(
    gj.map((x) => x.data),
    want,
  );
  assert.deepEqual(
    gp.map((x) => valueOf('protobuf', x.data)),
    want,
  );
  assert.deepEqual([deltaComputations[0]! - before[0]!, deltaComputations[1]! - before[1]!], [2, 2]);
});

test('an unknown delta type is a 107 and leaves the connection working', async (t) => {
  const n = await node(t);
  const c = await client(t, n, 'json');
  const sub = c.newSubscription('doc:bad', {});
  // the SDK only knows 'fossil': set what a hostile client would send
  (sub as unknown as { _delta: string })._delta = 'zstd';
  const refused = waitFor<{ code: number; reason: string }>(sub, 'unsubscribed');
  sub.subscribe();
  const e = await refused;
  assert.equal(e.code, 107);
  assert.match(e.reason, /delta/);
  const ok = await subscribed(c, 'doc:good', { delta: 'fossil' });
  await n.sb.publish('doc:good', document(1));
  assert.deepEqual((await ok.pubs.until(1))[0]!.data, document(1));
});

test('Redis engine, HTTP API: the publish delta flag travels through Redis; recovery from Redis history continues with deltas', async (t) => {
  const S = scope();
  t.after(() => S.close());
  const ns = { ...doc, delta_publish: false };
  const s = await startServer(S, nodeConfig(SHARED_REDIS, uniquePrefix('delta'), { channel: { namespaces: [ns] } }), { raw: true });
  const c = await client(t, s, 'json');
  const r = await subscribed(c, 'doc:redis', { delta: 'fossil', recoverable: true });
  await s.call('publish', { channel: 'doc:redis', data: document(1), delta: true });
  await s.call('publish', { channel: 'doc:redis', data: document(2), delta: true });
  await s.call('publish', { channel: 'doc:redis', data: document(3) }); // no flag: whole
  await r.pubs.until(3);
  const gone = waitFor(c, 'disconnected');
  c.disconnect();
  await gone;
  for (let v = 4; v <= 6; v++) await s.call('publish', { channel: 'doc:redis', data: document(v), delta: true });
  const again = waitFor<{ recovered: boolean }>(r.sub, 'subscribed');
  c.connect();
  assert.equal((await again).recovered, true);
  await r.pubs.until(6);
  await s.call('publish', { channel: 'doc:redis', data: document(7), delta: true });
  const got = await r.pubs.until(7);
  assert.deepEqual(
    got.map((p) => p.data),
    [1, 2, 3, 4, 5, 6, 7].map(document),
  );
  const st = stats(r.sub);
  // whole: 1 (first), 3 (no flag), 4 (first recovered); deltas: 2, 5, 6 (recovered), 7 (live after recovery)
  assert.deepEqual([st.numFullPayloads, st.numDeltaPayloads], [3, 4], JSON.stringify(st));
});

test('bad delta fields from a raw client are a 107 each, counted; the connection stays', async (t) => {
  const n = await node(t);
  const c = await RawClient.open(t, n);
  await c.connect(await mintToken(SECRET, { sub: 'raw' }));
  const count = async () => (await n.sb.metrics.badInput.get()).values.find((v) => v.labels.kind === 'delta')?.value ?? 0;
  const before = await count();
  const bad: unknown[] = ['zstd', 'FOSSIL', 'fossil ', 'x'.repeat(10_000)];
  for (const [i, delta] of bad.entries()) {
    const r = await c.command('subscribe', { channel: `doc:b${i}`, delta });
    assert.equal(r.error?.code, 107, JSON.stringify(r));
  }
  for (const [i, delta] of [5, true, {}, ['fossil']].entries()) {
    const r = await c.command('subscribe', { channel: `doc:t${i}`, delta });
    assert.equal(r.error?.code, 107, 'a delta that is no string fails the params schema');
  }
  assert.equal(await count(), before + bad.length);
  const ok = await c.command('subscribe', { channel: 'doc:fine', delta: 'fossil' });
  assert.equal(ok.subscribe?.delta, true);
  const empty = await c.command('subscribe', { channel: 'doc:none', delta: '' });
  assert.equal(empty.subscribe?.delta, undefined, 'an empty delta asks for nothing');
  assert.equal(c.closeCode, undefined);
});
