/**
 * Where features built apart meet: priority lanes and conflation with the
 * unidirectional and emulation transports, and other cross-feature paths
 * found in review. Real server, real sockets; slow readers are clients whose
 * socket stops being read (ws.pause()).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { scope } from './helpers/scope.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { openUniWs, postStream } from './helpers/uni.js';
import { until } from './helpers/wait.js';
import { WebhookReceiver } from './helpers/webhook-receiver.js';

const S = scope();
after(() => S.close());
let s: RunningServer;
let uniWs: string;
let hooks: WebhookReceiver;
const HOOK_SECRET = 'interactions-hook-secret';

before(async () => {
  hooks = await WebhookReceiver.start(S, HOOK_SECRET);
  s = await startServer(S, {
    webhooks: {
      secret: HOOK_SECRET,
      poll_interval: '100ms',
      endpoints: [
        {
          name: 'all',
          url: hooks.url,
          events: ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'],
        },
      ],
    },
    uni_websocket: { enabled: true },
    uni_http_stream: { enabled: true },
    client: { queue_max_size: 4 * 1024 * 1024 },
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [
        { name: 'quotes', history_size: 1000, history_ttl: '300s' },
        { name: 'bulk', priority: 'low' },
      ],
    },
  });
  uniWs = s.ws.replace('/connection/websocket', '/connection/uni_websocket');
});

test('uni_websocket: a reader that is behind gets conflation like a bidirectional WebSocket (the lane and key reach its writer)', async (t) => {
  const ch = 'quotes:uni';
  const { ws, client } = await openUniWs(t, uniWs, JSON.stringify({ token: await mintToken(s.secret, { sub: 'u', channels: [ch] }) }));
  await client.next((p) => p.connect !== undefined);
  ws.pause();
  const c0 = await s.metric('switchboard_queue_conflated_total');
  const payload = 'z'.repeat(48 * 1024);
  let n = 0;
  for (; n < 400; n++) {
    assert.equal(
      client.closeCode,
      0,
      `the paused uni_websocket was closed (${client.closeCode}) after ${n} publications instead of conflating`,
    );
    await s.call('publish', { channel: ch, data: { n, payload }, conflation_key: 'k' });
    if (n >= 4 && (await s.metric('switchboard_queue_conflated_total')) > c0) break;
  }
  assert.ok(n < 400, `no conflation after ${n} publications of 48 KiB to a paused uni_websocket`);
  const last = n;
  await s.call('publish', { channel: ch, data: { n: 'end' } });
  ws.resume();
  await client.next((p) => p.pub?.data?.n === 'end', 60_000);
  const ns = client.pushes.filter((p) => p.pub && typeof p.pub.data.n === 'number').map((p) => p.pub.data.n as number);
  assert.ok(ns.length < last + 1, `publications were replaced (${ns.length} of ${last + 1} arrived)`);
  assert.ok(
    ns.every((v, i) => i === 0 || v > ns[i - 1]!),
    'in order',
  );
  assert.equal(ns.at(-1), last, 'the newest keyed publication arrived');
  await until('still open', 1000, () => client.closeCode === 0);
});

test('uni_websocket: the disconnect push is the last message, after publications still queued in a lower lane', async (t) => {
  const ch = 'bulk:uni';
  const { ws, client } = await openUniWs(t, uniWs, JSON.stringify({ token: await mintToken(s.secret, { sub: 'u-bye', channels: [ch] }) }));
  await client.next((p) => p.connect !== undefined);
  ws.pause();
  const payload = 'b'.repeat(48 * 1024);
  let n = 0;
  for (; n < 200; n++) {
    await s.call('publish', { channel: ch, data: { n, payload } });
    if ((await s.metric('switchboard_queue_pending_bytes')) >= 2 * payload.length) break;
  }
  assert.ok(n < 200, 'the paused reader never had publications queued');
  const r = await s.call('disconnect', { user: 'u-bye', disconnect: { code: 4001, reason: 'bye' } });
  assert.equal(r.error, undefined);
  ws.resume();
  await client.ends(60_000);
  const last = client.pushes.at(-1);
  assert.deepEqual(last?.disconnect, { code: 4001, reason: 'bye' }, `last message: ${JSON.stringify(last).slice(0, 80)}`);
  const ns = client.pushes.filter((p) => p.pub).map((p) => p.pub.data.n as number);
  assert.equal(ns.length, n + 1, 'every queued publication was written before the close');
  assert.equal(client.closeCode, 4001);
});

test('connections API and disconnect by session reach unidirectional sessions: transport names, session ids, the disconnect push', async (t) => {
  const { client: wsc } = await openUniWs(
    t,
    uniWs,
    JSON.stringify({ token: await mintToken(s.secret, { sub: 'u-conn', channels: ['c1'] }) }),
  );
  const wsConnect = (await wsc.next((p) => p.connect !== undefined)).connect;
  const r = await postStream(
    t,
    s.http + '/connection/uni_http_stream',
    JSON.stringify({ token: await mintToken(s.secret, { sub: 'u-conn' }) }),
  );
  const hsConnect = (await r.client.next((p) => p.connect !== undefined)).connect;
  const conns = (await s.call('connections', { user: 'u-conn' })).result.connections as Record<string, any>;
  assert.deepEqual(Object.keys(conns).sort(), [wsConnect.client, hsConnect.client].sort());
  assert.equal(conns[wsConnect.client].transport, 'uni_websocket');
  assert.equal(conns[wsConnect.client].session, wsConnect.session);
  assert.equal(conns[wsConnect.client].protocol, 'json');
  assert.deepEqual(Object.keys(conns[wsConnect.client].state.channels), ['c1']);
  assert.equal(conns[hsConnect.client].transport, 'uni_http_stream');
  assert.equal(conns[hsConnect.client].session, hsConnect.session);

  // the session target closes only the uni_http_stream one, with a disconnect push
  const d = await s.call('disconnect', { user: 'u-conn', session: hsConnect.session, disconnect: { code: 4002, reason: 'admin' } });
  assert.equal(d.error, undefined);
  await r.client.ends(30_000);
  assert.deepEqual(r.client.pushes.at(-1)?.disconnect, { code: 4002, reason: 'admin' });
  const left = (await s.call('connections', { user: 'u-conn' })).result.connections as Record<string, any>;
  assert.deepEqual(Object.keys(left), [wsConnect.client]);
});

test('webhooks for a uni_websocket session: connect, the token channel subscribed and occupied, then unsubscribe, vacated and disconnect, with its client id', async (t) => {
  const ch = 'wh-uni';
  const { ws, client } = await openUniWs(t, uniWs, JSON.stringify({ token: await mintToken(s.secret, { sub: 'u-wh', channels: [ch] }) }));
  const id = (await client.next((p) => p.connect !== undefined)).connect.client as string;
  const mine = () => hooks.events.filter((e) => e.client === id || (e.client === undefined && e.channel === ch));
  const kinds = () =>
    mine()
      .map((e) => `${e.type}${e.channel ? ' ' + e.channel : ''}`)
      .sort();
  await until('connect, subscribe and occupied arrive', 30_000, () => kinds().length >= 3);
  assert.deepEqual(kinds(), ['channel_occupied wh-uni', 'connect', 'subscribe wh-uni']);
  ws.close();
  await until('the rest arrive', 30_000, () => kinds().length >= 6);
  assert.deepEqual(kinds(), [
    'channel_occupied wh-uni',
    'channel_vacated wh-uni',
    'connect',
    'disconnect',
    'subscribe wh-uni',
    'unsubscribe wh-uni',
  ]);
  for (const e of mine()) if (e.client !== undefined) assert.equal(e.user, 'u-wh');
});
