/**
 * The Protobuf client protocol with the real `centrifuge` SDK's Protobuf
 * build (`centrifuge/build/protobuf`, which asks for the
 * `centrifuge-protobuf` subprotocol): connect, subscribe, API publications
 * as bytes, binary `b64data`, history and recovery, presence, RPC, JSON and
 * Protobuf subscribers on one channel, one encoding per publication per
 * encoding, and malformed binary input.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';
import { embedded, encodesOf, SECRET } from './helpers/embedded.js';
import { scope, type TestContextLike } from './helpers/scope.js';
import { BrowserLikeWebSocket, connectedClient, subscribe } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, until, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

const feed = {
  name: 'feed',
  history_size: 100,
  history_ttl: '300s',
  force_recovery: true,
  allow_subscribe_for_client: true,
  allow_publish_for_subscriber: true,
  allow_history_for_subscriber: true,
  allow_presence_for_subscriber: true,
  presence: true,
  join_leave: true,
  force_push_join_leave: true,
};

before(async () => {
  s = await startServer(S, { channel: { without_namespace: { allow_subscribe_for_client: true }, namespaces: [feed] } });
});

const text = (u8: Uint8Array) => Buffer.from(u8).toString('utf8');
const json = (u8: Uint8Array) => JSON.parse(text(u8));
const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

async function protobufClient(t: TestContextLike, server: { ws: string; secret: string }, user: string): Promise<ProtobufCentrifuge> {
  const token = await mintToken(server.secret, { sub: user });
  const c = new ProtobufCentrifuge(server.ws, {
    websocket: BrowserLikeWebSocket,
    token,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
  });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  const ctx = await connected;
  assert.equal(ctx.transport, 'websocket');
  return c;
}

async function pbSubscribe(c: ProtobufCentrifuge, channel: string) {
  const sub = c.newSubscription(channel);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  return { sub, ctx: await ok };
}

test('connect, subscribe, and an HTTP API publication arrives as the JSON text bytes', async (t) => {
  const c = await protobufClient(t, s, 'pb1');
  const { sub, ctx } = await pbSubscribe(c, 'feed:pb1');
  assert.equal(ctx.recoverable, true);
  const got = waitFor(sub, 'publication');
  const res = await s.call('publish', { channel: 'feed:pb1', data: { text: 'hello' } });
  const pub = await got;
  assert.ok(pub.data instanceof Uint8Array);
  assert.deepEqual(json(pub.data), { text: 'hello' });
  // the SDK's protobufjs decodes uint64 as a Long where the `long` package is installed (as in Node here)
  assert.equal(Number(pub.offset), res.result.offset);
});

test('b64data of non-JSON bytes reaches a Protobuf client as those bytes, a JSON client as a marked base64 string', async (t) => {
  const raw = Buffer.from([0, 1, 2, 250, 251, 255]);
  const pb = await protobufClient(t, s, 'pb2');
  const { sub: pbSub } = await pbSubscribe(pb, 'feed:bin');
  const js = await connectedClient(t, s, 'js2');
  const { sub: jsSub } = await subscribe(js, 'feed:bin');
  const pbGot = waitFor(pbSub, 'publication');
  const jsGot = waitFor(jsSub, 'publication');
  await s.call('publish', { channel: 'feed:bin', b64data: raw.toString('base64') });
  assert.deepEqual(Buffer.from((await pbGot).data), raw);
  assert.equal((await jsGot).data, '\u0000b64:' + raw.toString('base64'));
});

test('a Protobuf client publishes bytes; JSON and Protobuf subscribers each get them in their encoding', async (t) => {
  const pub = await protobufClient(t, s, 'pb3');
  const { sub: pbSub } = await pbSubscribe(pub, 'feed:mixed');
  const js = await connectedClient(t, s, 'js3');
  const { sub: jsSub } = await subscribe(js, 'feed:mixed');
  const pbGot = waitFor(pbSub, 'publication');
  const jsGot = waitFor(jsSub, 'publication');
  await pub.publish('feed:mixed', bytes({ n: 1, s: 'é' }));
  assert.deepEqual(json((await pbGot).data), { n: 1, s: 'é' });
  assert.deepEqual((await jsGot).data, { n: 1, s: 'é' });
  // and the other way: a JSON client's publication reaches the Protobuf client as its JSON bytes
  const pbGot2 = waitFor(pbSub, 'publication');
  await js.publish('feed:mixed', { from: 'json' });
  assert.deepEqual(json((await pbGot2).data), { from: 'json' });
});

test('history and recovery after a reconnect', async (t) => {
  const ch = 'feed:pbrecover';
  const c = await protobufClient(t, s, 'pb4');
  const { sub } = await pbSubscribe(c, ch);
  const pubs = collect(sub, 'publication');
  for (let i = 1; i <= 3; i++) await s.call('publish', { channel: ch, data: { i } });
  await pubs.until(3);
  const disconnected = waitFor(c, 'disconnected');
  c.disconnect();
  await disconnected;
  for (let i = 4; i <= 6; i++) await s.call('publish', { channel: ch, data: { i } });
  const resubscribed = waitFor(sub, 'subscribed');
  c.connect();
  const ctx = await resubscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true);
  await pubs.until(6);
  assert.deepEqual(
    pubs.items.map((p) => [Number(p.offset), json(p.data).i]),
    [1, 2, 3, 4, 5, 6].map((i) => [i, i]),
  );
  const h = await sub.history({ limit: 2, reverse: true });
  assert.deepEqual(
    h.publications.map((p: any) => [Number(p.offset), json(p.data).i]),
    [
      [6, 6],
      [5, 5],
    ],
  );
  assert.equal(Number(h.offset), 6);
});

test('presence, presence stats and join pushes', async (t) => {
  const ch = 'feed:pbpresence';
  const a = await protobufClient(t, s, 'pb5a');
  const { sub } = await pbSubscribe(a, ch);
  const joined = waitFor(sub, 'join');
  const b = await protobufClient(t, s, 'pb5b');
  await pbSubscribe(b, ch);
  assert.equal((await joined).info.user, 'pb5b');
  const p = await sub.presence();
  assert.deepEqual(
    Object.values(p.clients)
      .map((i: any) => i.user)
      .sort(),
    ['pb5a', 'pb5b'],
  );
  assert.deepEqual(await sub.presenceStats(), { numClients: 2, numUsers: 2 });
});

test('malformed binary input closes with 3501 and is counted; a text frame too', async () => {
  const before = await s.metric('switchboard_bad_input_total');
  for (const [frame, binary] of [
    [Buffer.from([0x05, 0x08]), true], // length 5, one byte follows
    [Buffer.from([0x02, 0x0f, 0xff]), true], // field 1 with wire type 7
    [Buffer.from('{"id":1,"connect":{}}'), false],
  ] as const) {
    const ws = new WebSocket(s.ws, 'centrifuge-protobuf');
    await waitFor(ws, 'open');
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(frame, { binary });
    assert.equal(await closed, 3501);
  }
  await until('bad input counted', 5000, async () => (await s.metric('switchboard_bad_input_total')) >= before + 3);
});

test('embedded: RPC over Protobuf, and each publication is encoded once per encoding', async (t) => {
  const node = await embedded(
    t,
    { channel: { without_namespace: { allow_subscribe_for_client: true } } },
    { hooks: { onRpc: (ctx) => ({ echo: ctx.data ?? null, method: ctx.method }) } },
  );
  const server = { ws: node.ws, secret: SECRET };
  const pb = await protobufClient(t, server, 'e1');
  const r = await pb.rpc('sum', bytes({ a: 1 }));
  assert.deepEqual(json(r.data), { echo: { a: 1 }, method: 'sum' });

  const pbs = [pb, await protobufClient(t, server, 'e2'), await protobufClient(t, server, 'e3')];
  const jss = [await connectedClient(t, server, 'j1'), await connectedClient(t, server, 'j2')];
  const subs = [
    ...(await Promise.all(pbs.map((c) => pbSubscribe(c, 'count')))),
    ...(await Promise.all(jss.map((c) => subscribe(c, 'count')))),
  ];
  const got = subs.map(({ sub }) => collect(sub, 'publication'));
  const encodes = (codec: string): Promise<number> => encodesOf(node.sb, codec);
  const [json0, pb0] = [await encodes('json'), await encodes('protobuf')];
  for (let i = 0; i < 10; i++) await node.sb.publish('count', { i });
  await Promise.all(got.map((g) => g.until(10)));
  assert.deepEqual(
    [(await encodes('json')) - json0, (await encodes('protobuf')) - pb0],
    [10, 10],
    'one encoding per publication per encoding',
  );
  assert.deepEqual(node.sb.hub.encodes, [10 + json0, 10 + pb0], "the node's own count, not the process's");
  assert.deepEqual(json(got[0]!.items[9].data), { i: 9 });
  assert.deepEqual(got[4]!.items[9].data, { i: 9 });
});

test('embedded: the server ping is answered by the Protobuf client, so the connection outlives several pong timeouts', async (t) => {
  const node = await embedded(t, { client: { ping_interval: '1s', pong_timeout: '500ms' } });
  const c = await protobufClient(t, { ws: node.ws, secret: SECRET }, 'pinged');
  let disconnected = false;
  c.on('disconnected', () => (disconnected = true));
  const started = Date.now();
  await until('three ping intervals', 10_000, () => Date.now() - started > 3500, 100);
  assert.equal(disconnected, false, 'no 3012 no pong');
  assert.equal(c.state, 'connected');
});
