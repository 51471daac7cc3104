/**
 * The unidirectional transports (uni_http_stream, uni_sse, uni_websocket)
 * against a real `switchboard serve`, with clients written as an app without
 * an SDK writes them: fetch-style POST streams, `eventsource`, raw `ws`.
 * The connect result comes as a connect push, then bare pushes; the
 * server-side subscriptions come from the token; recovery from `subs`; bad
 * input gets Centrifugo's answer and is counted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { scope } from './helpers/scope.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { openSse, openUniWs, postStream } from './helpers/uni.js';
import { until } from './helpers/wait.js';
import { WebSocket } from 'ws';

const S = scope();
after(() => S.close());
let s: RunningServer;
let stream: string;
let sse: string;
let uniWs: string;

before(async () => {
  s = await startServer(S, {
    uni_websocket: { enabled: true },
    uni_sse: { enabled: true },
    uni_http_stream: { enabled: true, max_request_body_size: 4096 },
    client: { ping_interval: '25s', pong_timeout: '8s' },
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [{ name: 'feed', history_size: 100, history_ttl: '300s', force_recovery: true }],
    },
  });
  stream = s.http + '/connection/uni_http_stream';
  sse = s.http + '/connection/uni_sse';
  uniWs = s.ws.replace('/connection/websocket', '/connection/uni_websocket');
});

const token = (sub: string, channels: string[] = []): Promise<string> => mintToken(s.secret, { sub, channels });
const sseUrl = (req: unknown): string => sse + '?cf_connect=' + encodeURIComponent(JSON.stringify(req));

test('uni_http_stream: connect push (session, ping, no pong), token channels subscribed, API publications as bare pushes', async (t) => {
  const r = await postStream(t, stream, JSON.stringify({ token: await token('hs-user', ['hs-news']) }));
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /application\/json/);
  const connect = (await r.client.next((p) => p.connect !== undefined)).connect;
  assert.equal(typeof connect.client, 'string');
  assert.equal(typeof connect.session, 'string', 'unidirectional connections learn their session id');
  assert.equal(connect.ping, 25);
  assert.equal(connect.pong, undefined, 'a uni client is never asked to pong');
  assert.deepEqual(Object.keys(connect.subs), ['hs-news']);
  await s.call('publish', { channel: 'hs-news', data: { n: 1 } });
  const pub = await r.client.next((p) => p.pub !== undefined);
  assert.deepEqual(Object.keys(pub), ['channel', 'pub'], 'a bare Push, no {"push": …} envelope');
  assert.deepEqual([pub.channel, pub.pub.data], ['hs-news', { n: 1 }]);
});

test('uni_sse: EventSource with cf_connect; API subscribe/publish/disconnect reach it as pushes and the stream ends', async (t) => {
  const { client } = openSse(t, sseUrl({ token: await token('sse-user', ['sse-news']) }));
  const connect = (await client.next((p) => p.connect !== undefined)).connect;
  assert.deepEqual(Object.keys(connect.subs), ['sse-news']);
  await s.call('publish', { channel: 'sse-news', data: 'hello' });
  const hello = await client.next((p) => p.pub !== undefined);
  assert.deepEqual([hello.channel, hello.pub.data], ['sse-news', 'hello']);
  // server-side subscription by the API, then a publication into it
  await s.call('subscribe', { user: 'sse-user', channel: 'sse-extra' });
  const sub = await client.next((p) => p.subscribe !== undefined);
  assert.equal(sub.channel, 'sse-extra');
  await s.call('publish', { channel: 'sse-extra', data: { x: 1 } });
  assert.deepEqual((await client.next((p) => p.channel === 'sse-extra' && p.pub !== undefined)).pub.data, { x: 1 });
  await s.call('unsubscribe', { user: 'sse-user', channel: 'sse-extra' });
  assert.equal((await client.next((p) => p.unsubscribe !== undefined)).channel, 'sse-extra');
  await s.call('disconnect', { user: 'sse-user', disconnect: { code: 4000, reason: 'bye' } });
  assert.deepEqual((await client.next((p) => p.disconnect !== undefined)).disconnect, { code: 4000, reason: 'bye' });
  await client.ends();
});

test('uni_sse: POST with the connect request as body streams SSE events too', async (t) => {
  const r = await postStream(t, sse, JSON.stringify({ token: await token('sse-post') }), {}, false);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /text\/event-stream/);
  await until('a connect event', 10_000, () => /^data: \{"connect":\{/m.test(r.text()));
});

test('uni_websocket: connect request as the first message, or in cf_connect; one push per frame; disconnect push then close frame', async (t) => {
  const a = await openUniWs(t, uniWs, JSON.stringify({ token: await token('ws-user', ['ws-news']) }));
  const b = await openUniWs(t, uniWs + '?cf_connect=' + encodeURIComponent(JSON.stringify({ token: await token('ws-user', ['ws-news']) })));
  for (const c of [a, b]) assert.deepEqual(Object.keys((await c.client.next((p) => p.connect !== undefined)).connect.subs), ['ws-news']);
  const frames: string[] = [];
  a.ws.on('message', (d) => frames.push(d.toString()));
  await s.call('batch', { commands: [1, 2, 3].map((n) => ({ publish: { channel: 'ws-news', data: { n } } })) });
  for (const c of [a, b]) await until('three publications', 10_000, () => c.client.pushes.filter((p) => p.pub).length === 3);
  assert.deepEqual(
    frames.filter((f) => f.includes('"pub"')).map((f) => JSON.parse(f).pub.data.n),
    [1, 2, 3],
    'each frame is exactly one JSON push (join_push_messages is off)',
  );
  await s.call('disconnect', { user: 'ws-user', disconnect: { code: 4001, reason: 'go away' } });
  for (const c of [a, b]) {
    assert.deepEqual((await c.client.next((p) => p.disconnect !== undefined)).disconnect, { code: 4001, reason: 'go away' });
    await c.client.ends();
    assert.equal(c.client.closeCode, 4001);
  }
});

test('recovery: subs {recover, offset, epoch} in the connect request returns the missed publications in the connect push', async (t) => {
  const ch = 'feed:rec';
  const first = await s.call('publish', { channel: ch, data: { n: 1 } });
  for (const n of [2, 3]) await s.call('publish', { channel: ch, data: { n } });
  const { offset, epoch } = first.result;
  assert.equal(offset, 1);
  const r = await postStream(
    t,
    stream,
    JSON.stringify({ token: await token('rec-user', [ch]), subs: { [ch]: { recover: true, offset, epoch } } }),
  );
  const sub = (await r.client.next((p) => p.connect !== undefined)).connect.subs[ch];
  assert.equal(sub.recovered, true);
  assert.equal(sub.epoch, epoch);
  assert.deepEqual(
    sub.publications.map((p: { data: { n: number } }) => p.data.n),
    [2, 3],
  );
  await s.call('publish', { channel: ch, data: { n: 4 } });
  const live = await r.client.next((p) => p.pub !== undefined);
  assert.deepEqual([live.pub.data.n, live.pub.offset], [4, 4]);
});

test('bad input: malformed connect → 400, oversize body → 413, bad token → disconnect push 3500; all counted', async (t) => {
  const malformed0 = await s.metric('switchboard_bad_input_total', { kind: 'malformed_connect' });
  const big0 = await s.metric('switchboard_bad_input_total', { kind: 'message_too_big' });
  const badTok0 = await s.metric('switchboard_disconnects_total', { code: '3500' });

  const r1 = await fetch(sse + '?cf_connect=' + encodeURIComponent('{not json'));
  assert.equal(r1.status, 400);
  assert.match(await r1.text(), /invalid connect request/);
  const r2 = await fetch(stream, { method: 'POST', body: '{"token": 5}' });
  assert.equal(r2.status, 400, 'fields of the wrong type');
  const r3 = await fetch(stream, { method: 'POST', body: JSON.stringify({ token: 'x'.repeat(5000) }) });
  assert.equal(r3.status, 413);
  const r4 = await fetch(stream, { method: 'GET' });
  assert.equal(r4.status, 405);
  // uni_websocket: a malformed cf_connect refuses the upgrade; a malformed first message closes with 3501
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(uniWs + '?cf_connect=%7Bnope');
    ws.on('unexpected-response', (_req: unknown, res: { statusCode: number }) => resolve(res.statusCode));
    ws.on('error', () => undefined);
  });
  assert.equal(refused, 400);
  const w = await openUniWs(t, uniWs, '{nope');
  assert.deepEqual((await w.client.next((p) => p.disconnect !== undefined)).disconnect, { code: 3501, reason: 'bad request' });
  await w.client.ends();
  assert.equal(w.client.closeCode, 3501);

  const r5 = await postStream(t, stream, JSON.stringify({ token: 'not.a.jwt' }));
  assert.equal(r5.status, 200, 'as Centrifugo: the stream opens, then the disconnect push');
  assert.deepEqual((await r5.client.next((p) => p.disconnect !== undefined)).disconnect, { code: 3500, reason: 'invalid token' });
  await r5.client.ends();

  assert.ok((await s.metric('switchboard_bad_input_total', { kind: 'malformed_connect' })) >= malformed0 + 3);
  assert.ok((await s.metric('switchboard_bad_input_total', { kind: 'message_too_big' })) >= big0 + 1);
  assert.ok((await s.metric('switchboard_disconnects_total', { code: '3500' })) >= badTok0 + 1);
  // the server is fine: a fresh connection still works
  const ok = await postStream(t, stream, JSON.stringify({ token: await token('after-bad') }));
  await ok.client.next((p) => p.connect !== undefined);
});

test('a disallowed Origin is refused (403), an allowed one gets CORS headers', async (t) => {
  const strict = await startServer(t, { uni_http_stream: { enabled: true }, client: { allowed_origins: ['http://app.example'] } });
  const url = strict.http + '/connection/uni_http_stream';
  const bad = await fetch(url, { method: 'POST', body: '{}', headers: { origin: 'http://evil.example' } });
  assert.equal(bad.status, 403);
  const pre = await fetch(url, {
    method: 'OPTIONS',
    headers: { origin: 'http://app.example', 'access-control-request-headers': 'content-type' },
  });
  assert.equal(pre.status, 200);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example');
  assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type');
  assert.ok((await strict.metric('switchboard_bad_input_total', { kind: 'origin' })) >= 1);
});
