/**
 * Subscribe, publish through the server API (cent.js), ordering and
 * offsets, history from both sides, history_remove, and recovery after a
 * disconnect, all with the real `centrifuge` SDK.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CentClient, CentException } from 'cent.js';
import { freePort } from './helpers/net.js';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { connectedClient, makeClient, subscribe } from './helpers/sdk.js';
import { baseConfig, type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;
let cent: CentClient;

const feed = {
  name: 'feed',
  history_size: 500,
  history_ttl: '300s',
  force_recovery: true,
  allow_subscribe_for_client: true,
  allow_history_for_subscriber: true,
};

before(async () => {
  s = await startServer(S, {
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [feed, { name: 'small', history_size: 3, history_ttl: '300s', force_recovery: true, allow_subscribe_for_client: true }],
    },
  });
  cent = new CentClient({ url: s.api, apiKey: s.apiKey });
});

test('subscribe, then a cent.js publish reaches the subscriber', async (t) => {
  const c = await connectedClient(t, s, 'u1');
  const { sub, ctx } = await subscribe(c, 'news');
  assert.equal(ctx.channel, 'news');
  assert.equal(ctx.recoverable, false, 'no history in the bare namespace');
  const got = waitFor(sub, 'publication');
  const res = await cent.publish({ channel: 'news', data: { text: 'hello' } });
  assert.deepEqual(res, {}, 'no offset without history');
  const pub = await got;
  assert.equal(pub.channel, 'news');
  assert.deepEqual(pub.data, { text: 'hello' });
  assert.equal(pub.offset, undefined);
});

test('300 API publications arrive in order with consecutive offsets', async (t) => {
  const c = await connectedClient(t, s, 'u2');
  const { sub, ctx } = await subscribe(c, 'feed:order');
  assert.equal(ctx.recoverable, true);
  assert.equal(ctx.positioned, true);
  const start = ctx.streamPosition!.offset;
  const pubs = collect(sub, 'publication');
  // A raw socket on the same channel shows the order on the wire, SDK aside.
  const raw = await RawClient.open(t, s);
  await raw.connect(await mintToken(s.secret, { sub: 'wire' }));
  assert.ok((await raw.command('subscribe', { channel: 'feed:order' })).subscribe);
  // Concurrent HTTP requests: the server decides the order; every subscriber
  // must see exactly that order (offset n carries the data published as n).
  const byOffset = new Map<number, number>();
  const N = 300;
  for (let base = 0; base < N; base += 50) {
    const batch = [];
    for (let i = base; i < base + 50; i++)
      batch.push(cent.publish({ channel: 'feed:order', data: { n: i } }).then((r) => byOffset.set(r.offset!, i)));
    await Promise.all(batch);
  }
  const got = await pubs.until(N);
  assert.equal(got.length, N);
  assert.equal(byOffset.size, N);
  got.forEach((p, i) => {
    assert.equal(p.offset, start + i + 1, `publication ${i} has offset ${p.offset}`);
    assert.equal(p.data.n, byOffset.get(p.offset), `offset ${p.offset} carries the data published with it`);
  });
  if (raw.messages.filter((m) => m.push?.pub).length < N)
    await waitFor(raw, 'message', { filter: () => raw.messages.filter((m) => m.push?.pub).length >= N });
  const wire = raw.messages.filter((m) => m.push?.pub).map((m) => m.push.pub.offset as number);
  assert.deepEqual(
    wire,
    Array.from({ length: N }, (_, i) => start + i + 1),
    'wire order',
  );
  // Nothing more than the N publications.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(pubs.items.length, N);
});

test('history through the API (cent.js) and through the client agree', async (t) => {
  const ch = 'feed:hist';
  const offsets: number[] = [];
  let epoch = '';
  for (let i = 1; i <= 5; i++) {
    const r = await cent.publish({ channel: ch, data: { i } });
    offsets.push(r.offset!);
    epoch = r.epoch!;
  }
  assert.deepEqual(offsets, [1, 2, 3, 4, 5]);
  assert.equal(typeof epoch, 'string');
  assert.ok(epoch.length > 0);

  const api = await cent.getHistory({ channel: ch, limit: 10 });
  assert.equal(api.offset, 5);
  assert.equal(api.epoch, epoch);
  assert.deepEqual(
    api.publications.map((p) => [p.offset, p.data]),
    [1, 2, 3, 4, 5].map((i) => [i, { i }]),
  );
  const rev = await cent.getHistory({ channel: ch, limit: 2, reverse: true });
  assert.deepEqual(
    rev.publications.map((p) => p.offset),
    [5, 4],
  );
  const since = await cent.getHistory({ channel: ch, limit: 10, since: { offset: 3, epoch } });
  assert.deepEqual(
    since.publications.map((p) => p.offset),
    [4, 5],
  );
  // Centrifugo v3+: without a limit only the stream position comes back.
  const top = await cent.getHistory({ channel: ch });
  assert.equal(top.offset, 5);
  assert.equal(top.epoch, epoch);
  assert.equal((top.publications ?? []).length, 0);

  const c = await connectedClient(t, s, 'u3');
  const { sub } = await subscribe(c, ch);
  const h = await sub.history({ limit: 3 });
  assert.equal(h.offset, 5);
  assert.equal(h.epoch, epoch);
  assert.deepEqual(
    h.publications.map((p) => [p.offset, p.data]),
    [1, 2, 3].map((i) => [i, { i }]),
  );
  const hr = await sub.history({ limit: 2, reverse: true });
  assert.deepEqual(
    hr.publications.map((p) => p.offset),
    [5, 4],
  );
  const hs = await sub.history({ limit: -1, since: { offset: 4, epoch } });
  assert.deepEqual(
    hs.publications.map((p) => p.offset),
    [5],
  );
});

test('history is bounded by history_size', async () => {
  for (let i = 1; i <= 5; i++) await cent.publish({ channel: 'small:x', data: { i } });
  const h = await cent.getHistory({ channel: 'small:x', limit: 100 });
  assert.equal(h.offset, 5);
  assert.deepEqual(
    h.publications.map((p) => p.offset),
    [3, 4, 5],
  );
});

test('history_remove empties the history; the stream position stays', async () => {
  const ch = 'feed:removed';
  for (let i = 0; i < 3; i++) await cent.publish({ channel: ch, data: { i } });
  const before = await cent.getHistory({ channel: ch, limit: 10 });
  assert.equal(before.publications.length, 3);
  assert.deepEqual(await cent.removeHistory({ channel: ch }), {});
  const afterRemove = await cent.getHistory({ channel: ch, limit: 10 });
  assert.equal(afterRemove.publications.length, 0);
  assert.equal(afterRemove.epoch, before.epoch);
  assert.equal(afterRemove.offset, 3);
  const next = await cent.publish({ channel: ch, data: { i: 3 } });
  assert.equal(next.offset, 4);
});

test('history on a channel without history is 108 not available', async () => {
  await assert.rejects(cent.getHistory({ channel: 'news', limit: 1 }), (e: unknown) => {
    assert.ok(e instanceof CentException);
    assert.equal((e as unknown as { message: unknown }).message !== undefined, true);
    return true;
  });
  const raw = await s.call('history', { channel: 'news', limit: 1 });
  assert.deepEqual(raw.error, { code: 108, message: 'not available' });
});

test('after a disconnect the subscription recovers exactly the missed publications', async (t) => {
  const ch = 'feed:recover';
  const c = await connectedClient(t, s, 'u4');
  const { sub } = await subscribe(c, ch);
  const pubs = collect(sub, 'publication');
  for (let i = 1; i <= 3; i++) await cent.publish({ channel: ch, data: { i } });
  await pubs.until(3);

  const disconnected = waitFor(c, 'disconnected');
  c.disconnect();
  await disconnected;
  for (let i = 4; i <= 8; i++) await cent.publish({ channel: ch, data: { i } });

  const resubscribed = waitFor(sub, 'subscribed');
  c.connect();
  const ctx = await resubscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true);
  await pubs.until(8);
  // One more live publication after the recovered ones, then check the whole sequence.
  await cent.publish({ channel: ch, data: { i: 9 } });
  await pubs.until(9);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    pubs.items.map((p) => [p.offset, p.data.i]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => [i, i]),
    'no gap, no duplicate',
  );
});

test('recovery from a wrong epoch gives recovered: false and no publications', async (t) => {
  const ch = 'feed:epoch';
  for (let i = 1; i <= 3; i++) await cent.publish({ channel: ch, data: { i } });
  const c = await connectedClient(t, s, 'u5');
  const sub = c.newSubscription(ch, { since: { offset: 1, epoch: 'not-the-epoch' } });
  const pubs = collect(sub, 'publication');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  const ctx = await ok;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, false);
  assert.equal(ctx.streamPosition.offset, 3);
  assert.notEqual(ctx.streamPosition.epoch, 'not-the-epoch');
  // Only live publications from now on.
  await cent.publish({ channel: ch, data: { i: 4 } });
  await pubs.until(1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    pubs.items.map((p) => p.offset),
    [4],
  );
});

test('recovery from the right epoch and an offset: exactly the publications after it', async (t) => {
  const ch = 'feed:since';
  let epoch = '';
  for (let i = 1; i <= 6; i++) epoch = (await cent.publish({ channel: ch, data: { i } })).epoch!;
  const c = await connectedClient(t, s, 'u6');
  const sub = c.newSubscription(ch, { since: { offset: 4, epoch } });
  const pubs = collect(sub, 'publication');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  const ctx = await ok;
  assert.equal(ctx.recovered, true);
  await pubs.until(2);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    pubs.items.map((p) => p.data.i),
    [5, 6],
  );
});

test('a client publish where the namespace does not allow it is 103; the API publish still reaches subscribers', async (t) => {
  const a = await connectedClient(t, s, 'alice', { info: { name: 'Alice' } });
  const b = await connectedClient(t, s, 'bob');
  const { sub: subA } = await subscribe(a, 'news');
  const { sub: subB } = await subscribe(b, 'news');
  void subA;
  const got = waitFor(subB, 'publication');
  // Bare channels here do not allow client publish (103; client-channels covers the allowed case).
  await assert.rejects(a.publish('news', { x: 1 }), (e: { code: number }) => e.code === 103);
  await cent.publish({ channel: 'news', data: { x: 2 } });
  assert.deepEqual((await got).data, { x: 2 }, 'the refused publication never arrived first');
});

test('publications racing a recovery are merged without gap or duplicate', async (t) => {
  const ch = 'feed:race';
  const c = await connectedClient(t, s, 'u7');
  const { sub } = await subscribe(c, ch);
  const pubs = collect(sub, 'publication');
  const resubscribed = collect(sub, 'subscribed');
  let n = 0;
  const publishSome = async (k: number): Promise<void> => {
    for (let i = 0; i < k; i++) await cent.publish({ channel: ch, data: { n: ++n } });
  };
  await publishSome(20);
  await pubs.until(20);
  // Three disconnect/reconnect rounds while a publisher keeps going.
  let publishing = true;
  const publisher = (async () => {
    while (publishing) await publishSome(1);
  })();
  for (let round = 0; round < 3; round++) {
    const gone = waitFor(c, 'disconnected');
    c.disconnect();
    await gone;
    await new Promise((r) => setTimeout(r, 30));
    c.connect();
    await resubscribed.until(round + 1);
    await new Promise((r) => setTimeout(r, 30));
  }
  publishing = false;
  await publisher;
  await pubs.until(n, 10_000);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    resubscribed.items.every((x) => x.recovered === true),
    'every round recovered',
  );
  assert.deepEqual(
    pubs.items.map((p) => p.data.n),
    Array.from({ length: n }, (_, i) => i + 1),
    `${n} publications, each once, in order`,
  );
});

test('server-side subscriptions recover too: the missed publications come after reconnect', async (t) => {
  const ch = 'feed:server-side';
  const token = await mintToken(s.secret, { sub: 'u8', channels: [ch] });
  const c = makeClient(t, s, { token });
  const pubs = collect(c, 'publication');
  const subs = collect(c, 'subscribed');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  await subs.until(1);
  for (let i = 1; i <= 2; i++) await cent.publish({ channel: ch, data: { i } });
  await pubs.until(2);
  const gone = waitFor(c, 'disconnected');
  c.disconnect();
  await gone;
  for (let i = 3; i <= 5; i++) await cent.publish({ channel: ch, data: { i } });
  c.connect();
  await subs.until(2);
  assert.equal(subs.items[1].wasRecovering, true);
  assert.equal(subs.items[1].recovered, true);
  await pubs.until(5);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    pubs.items.map((p) => p.data.i),
    [1, 2, 3, 4, 5],
  );
});

test('a restarted memory engine has a new epoch: the SDK resubscribes with recovered: false', async (t) => {
  const port = await freePort();
  const cfg = baseConfig({ channel: { namespaces: [feed] } });
  const first = await startServer(t, cfg, { raw: true, port });
  const c = await connectedClient(t, first, 'u9', {}, { maxReconnectDelay: 200 });
  const { sub, ctx } = await subscribe(c, 'feed:restart');
  const epoch1 = ctx.streamPosition!.epoch;
  const pubs = collect(sub, 'publication');
  await first.call('publish', { channel: 'feed:restart', data: { i: 1 } });
  await pubs.until(1);
  const again = collect(sub, 'subscribed');
  first.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);
  const second = await startServer(t, cfg, { raw: true, port });
  const [re] = await again.until(1, 10_000);
  assert.equal(re.wasRecovering, true);
  assert.equal(re.recovered, false, 'history was lost with the process');
  assert.notEqual(re.streamPosition.epoch, epoch1);
  await second.call('publish', { channel: 'feed:restart', data: { i: 2 } });
  await pubs.until(2);
  assert.deepEqual(
    pubs.items.map((p) => [p.offset, p.data.i]),
    [
      [1, 1],
      [1, 2],
    ],
  );
});
