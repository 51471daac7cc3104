/**
 * Conflation: while a connection is behind, a queued publication of the
 * same channel with the same conflation key is replaced by the newest (the
 * newest takes its turn at the tail, so offsets keep rising). History keeps
 * everything. Slow readers are real: clients whose socket stops being read
 * (ws.pause()) until the server's queue is behind, seen in its metrics.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Subscription } from 'centrifuge';
import { RawClient } from './helpers/raw.js';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { scope } from './helpers/scope.js';
import { BrowserLikeWebSocket, makeClient, subscribedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(S, {
    // The default bound (1 MiB): a slow client with conflation must live within it.
    client: { queue_max_size: 1024 * 1024 },
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [
        { name: 'quotes', allow_subscribe_for_client: true, history_size: 1000, history_ttl: '300s' },
        {
          name: 'ticks',
          allow_subscribe_for_client: true,
          history_size: 10000,
          history_ttl: '300s',
          force_recovery: true,
          conflation_key: '/k',
        },
      ],
    },
  });
});

/** Publication pushes a raw client got, in arrival order. */
function pushes(c: RawClient): Array<{ channel: string; offset: number; data: any }> {
  return c.messages
    .filter((m) => m?.push?.pub)
    .map((m) => ({ channel: m.push.channel, offset: m.push.pub.offset ?? 0, data: m.push.pub.data }));
}

/** Publishes keyed fillers until the server reports conflation (its queue to a paused reader is behind); returns how many. */
async function fillUntilConflating(channel: string, key: string, payload: string): Promise<number> {
  const c0 = await s.metric('switchboard_queue_conflated_total');
  let n = 0;
  for (; n < 1500; n++) {
    await s.call('publish', { channel, data: { n, payload }, conflation_key: key });
    if (n >= 4 && (await s.metric('switchboard_queue_conflated_total')) > c0) return n + 1;
  }
  assert.fail(`no conflation after ${n} publications of ${payload.length} bytes to a paused reader`);
}

test('conflation replaces only a queued publication of the same channel and key; order within a channel is kept', async (t) => {
  const c = await RawClient.open(t, s);
  await c.connect(await mintToken(s.secret, { sub: 'raw' }));
  for (const channel of ['fill', 'quotes:a', 'quotes:b']) assert.ok((await c.command('subscribe', { channel })).subscribe);
  c.ws.pause();
  const fills = await fillUntilConflating('fill', 'f', 'z'.repeat(48 * 1024));

  const seq: Array<[string, string | undefined, string]> = [
    ['quotes:a', 'x', 'x1'],
    ['quotes:b', 'x', 'bx1'],
    ['quotes:a', 'y', 'y1'],
    ['quotes:a', 'x', 'x2'],
    ['quotes:b', undefined, 'n1'],
    ['quotes:b', undefined, 'n2'],
    ['quotes:a', 'x', 'x3'],
  ];
  for (const [channel, key, v] of seq) await s.call('publish', { channel, data: { v }, ...(key ? { conflation_key: key } : {}) });

  const done = waitFor(c, 'message', {
    ms: 60_000,
    failOn: 'closed',
    filter: () => pushes(c).some((p) => p.data.v === 'x3') && pushes(c).some((p) => p.data.v === 'n2'),
  });
  c.ws.resume();
  await done;

  const got = pushes(c);
  const values = (ch: string) => got.filter((p) => p.channel === ch).map((p) => p.data.v);
  assert.deepEqual(values('quotes:a'), ['y1', 'x3'], 'x1 and x2 replaced by x3, which comes after y1');
  assert.deepEqual(values('quotes:b'), ['bx1', 'n1', 'n2'], 'the same key in another channel and unkeyed publications untouched');
  for (const ch of ['quotes:a', 'quotes:b']) {
    const offs = got.filter((p) => p.channel === ch).map((p) => p.offset);
    assert.ok(
      offs.every((o, i) => i === 0 || o > offs[i - 1]!),
      `${ch}: offsets rise (${offs.join(',')})`,
    );
  }
  const fillNs = got.filter((p) => p.channel === 'fill').map((p) => p.data.n as number);
  assert.ok(fillNs.length < fills, `fillers were conflated (${fillNs.length} of ${fills} arrived)`);
  assert.ok(
    fillNs.every((n, i) => i === 0 || n > fillNs[i - 1]!),
    'fillers in order',
  );
  assert.equal(fillNs.at(-1), fills - 1, 'the newest filler arrived');

  const h = await s.call('history', { channel: 'quotes:a', limit: -1 });
  assert.deepEqual(
    h.result.publications.map((p: any) => p.data.v),
    ['x1', 'y1', 'x2', 'x3'],
    'history keeps every publication',
  );
  assert.equal(c.closeCode, undefined);
});

/** The SDK's WebSocket, remembered so the test can stop reading it (as a phone on a slow link would). */
class PausableWebSocket extends BrowserLikeWebSocket {
  static last: PausableWebSocket | undefined;
  constructor(...args: ConstructorParameters<typeof BrowserLikeWebSocket>) {
    super(...args);
    PausableWebSocket.last = this;
  }
}

test('a slow SDK client on a conflated, recoverable channel is not dropped, ends with the latest values, and recovers exactly', async (t) => {
  const ch = 'ticks:prices';
  const keys = 10;
  const payload = 'p'.repeat(20 * 1024);
  const fast = await subscribedClient(t, s, 'fast', ch);

  const slow = makeClient(t, s, { token: await mintToken(s.secret, { sub: 'slow' }), websocket: PausableWebSocket });
  const sub: Subscription = slow.newSubscription(ch, { minResubscribeDelay: 50, maxResubscribeDelay: 300 });
  const latest = new Map<number, number>();
  const offsets: number[] = [];
  sub.on('publication', (ctx) => {
    latest.set(ctx.data.k, ctx.data.n);
    offsets.push(Number(ctx.offset));
  });
  const subscribedEvents = collect(sub, 'subscribed');
  const reconnects = collect(slow, 'connecting');
  const unsubscribes = collect(sub, 'subscribing');
  sub.subscribe();
  slow.connect();
  await subscribedEvents.until(1, 10_000);
  const slow0 = await s.metric('switchboard_disconnects_total', { code: '3008' });
  const conflated0 = await s.metric('switchboard_queue_conflated_total');
  PausableWebSocket.last!.pause();

  // Publish rounds over the keys until the server has replaced plenty (at least twice the
  // queue bound's worth), so a FIFO queue would have passed client.queue_max_size.
  let n = 0;
  const last = new Map<number, number>();
  for (; n < 4000; n++) {
    const k = n % keys;
    await s.call('publish', { channel: ch, data: { k, n, payload } });
    last.set(k, n);
    if (k === keys - 1 && (await s.metric('switchboard_queue_conflated_total')) - conflated0 >= 120) break;
  }
  const published = n + 1;
  assert.ok((await s.metric('switchboard_queue_conflated_total')) - conflated0 >= 120, `conflated enough after ${published}`);

  const caughtUp = waitFor(sub, 'publication', { ms: 60_000, filter: () => [...last].every(([k, v]) => latest.get(k) === v) });
  PausableWebSocket.last!.resume();
  await caughtUp;

  assert.equal(slow.state, 'connected', 'never disconnected');
  assert.deepEqual(
    reconnects.items.filter((c) => c.code !== 0).map((c) => c.code),
    [],
    'no reconnect',
  );
  assert.deepEqual(
    unsubscribes.items.filter((c) => c.code >= 2000).map((c) => c.code),
    [],
    'no resubscribe (no insufficient state)',
  );
  assert.equal(await s.metric('switchboard_disconnects_total', { code: '3008' }), slow0, 'no 3008');
  assert.ok(offsets.length < published, `conflated: ${offsets.length} of ${published} delivered`);
  assert.ok(
    offsets.every((o, i) => i === 0 || o > offsets[i - 1]!),
    'offsets the SDK saw only rise',
  );
  assert.equal(offsets.at(-1), published, 'the SDK holds the newest offset');

  // A reader that keeps up gets everything: conflation only touches a queue that is behind.
  await fast.until(published, 60_000);
  assert.deepEqual(
    fast.pubs.map((p) => p.offset),
    Array.from({ length: published }, (_, i) => i + 1),
  );

  const h = await s.call('history', { channel: ch, limit: -1 });
  assert.equal(h.result.publications.length, published, 'history keeps every publication');

  // Recovery from the SDK's position is exact: only what was published while away.
  slow.disconnect();
  await s.call('publish', { channel: ch, data: { k: 0, n: published, payload: '' } });
  const before = offsets.length;
  const back = waitFor(sub, 'publication', { ms: 30_000, filter: (ctx: any) => ctx.data.n === published });
  slow.connect();
  await back;
  const again = await subscribedEvents.until(2, 10_000);
  assert.equal(again[1].wasRecovering, true);
  assert.equal(again[1].recovered, true, 'recovered from the conflated position');
  assert.deepEqual(offsets.slice(before), [published + 1], 'exactly the missed publication, no duplicates');
});

test('with the Redis engine the conflation key (the namespace default, read where it was published) reaches the subscriber’s node', async (t) => {
  const ns = { name: 'qq', conflation_key: '/k', allow_subscribe_for_client: true, history_size: 1000, history_ttl: '300s' };
  const cfg = nodeConfig(SHARED_REDIS, uniquePrefix('conflation'), {
    client: { queue_max_size: 1024 * 1024 },
    channel: { namespaces: [ns] },
  });
  const [a, b] = await Promise.all([startServer(t, cfg, { raw: true }), startServer(t, cfg, { raw: true })]);
  const c = await RawClient.open(t, b);
  await c.connect(await mintToken(b.secret, { sub: 'remote' }));
  assert.ok((await c.command('subscribe', { channel: 'qq:a' })).subscribe);
  c.ws.pause();
  const c0 = await b.metric('switchboard_queue_conflated_total');
  const payload = 'r'.repeat(48 * 1024);
  let fills = 0;
  for (; fills < 1500; fills++) {
    await a.call('publish', { channel: 'qq:a', data: { k: 'fill', n: fills, payload } });
    if (fills >= 4 && (await b.metric('switchboard_queue_conflated_total')) > c0) break;
  }
  assert.ok((await b.metric('switchboard_queue_conflated_total')) > c0, `node b conflated after ${fills + 1} publications on node a`);
  for (const [k, v] of [
    ['x', 'x1'],
    ['y', 'y1'],
    ['x', 'x2'],
  ]) {
    await a.call('publish', { channel: 'qq:a', data: { k, v } });
  }
  const done = waitFor(c, 'message', { ms: 60_000, failOn: 'closed', filter: (m: any) => m?.push?.pub?.data?.v === 'x2' });
  c.ws.resume();
  await done;
  const got = pushes(c).map((p) => p.data);
  assert.deepEqual(
    got.filter((d) => d.k !== 'fill').map((d) => d.v),
    ['y1', 'x2'],
  );
  const ns2 = got.filter((d) => d.k === 'fill').map((d) => d.n as number);
  assert.ok(ns2.length < fills + 1, 'fillers conflated');
  assert.equal(ns2.at(-1), fills, 'the newest filler arrived');
  assert.equal((await a.call('history', { channel: 'qq:a', limit: -1 })).result.publications.length, fills + 4, 'history keeps all');
});
