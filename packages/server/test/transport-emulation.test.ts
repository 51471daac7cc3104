/**
 * The bidirectional emulation transports with the real `centrifuge` SDK in
 * Node: http_stream (JSON and the Protobuf build) and sse (JSON; the SDK's
 * SSE transport is JSON only), commands POSTed to /emulation. Connect,
 * subscribe, publish, presence, history, recovery, RPC, refresh, server-side
 * subscriptions, disconnect codes, the drain, and the fallback from a
 * refused WebSocket. Publications from the hub are shared bytes: one
 * encoding per publication per encoding whatever the transport mix.
 */
import { encodesOf } from './helpers/embedded.js';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Centrifuge, Subscription } from 'centrifuge';
import { connectedEmuClient, emulationOptions, httpNode, type EmulationKind, type HttpNode } from './helpers/emulation.js';
import { scope } from './helpers/scope.js';
import { BrowserLikeWebSocket, connectedClient, subscribe } from './helpers/sdk.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { collect, until, waitFor } from './helpers/wait.js';
import { Centrifuge as JsonCentrifuge } from 'centrifuge';

const S = scope();
after(() => S.close());

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

let nodePromise: Promise<HttpNode> | undefined;
function node(): Promise<HttpNode> {
  nodePromise ??= httpNode(
    S,
    { channel: { without_namespace: { allow_subscribe_for_client: true }, namespaces: [feed] } },
    { hooks: { onRpc: (ctx) => ({ echo: ctx.data ?? null, method: ctx.method }) } },
  );
  return nodePromise;
}

const VARIANTS: Array<{ kind: EmulationKind; protobuf: boolean; label: string }> = [
  { kind: 'http_stream', protobuf: false, label: 'http_stream JSON' },
  { kind: 'http_stream', protobuf: true, label: 'http_stream Protobuf' },
  { kind: 'sse', protobuf: false, label: 'sse JSON' },
];

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (u8: Uint8Array) => JSON.parse(Buffer.from(u8).toString('utf8'));
/** Data as the build delivers it: JSON values, or bytes (Protobuf) parsed as JSON text. */
const dataOf = (protobuf: boolean, d: unknown) => (protobuf ? dec(d as Uint8Array) : d);
const payload = (protobuf: boolean, v: unknown) => (protobuf ? enc(v) : v);

async function subscribed(c: Centrifuge, channel: string, opts: Record<string, unknown> = {}): Promise<{ sub: Subscription; ctx: any }> {
  const sub = c.newSubscription(channel, opts);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  return { sub, ctx: await ok };
}

for (const v of VARIANTS) {
  test(`${v.label}: connect reports the transport, session and node; subscribe, API and client publications, presence, history, RPC`, async (t) => {
    const n = await node();
    const { client, ctx } = await connectedEmuClient(t, n, v.kind, `u-${v.kind}-${v.protobuf}`, { protobuf: v.protobuf });
    assert.equal(ctx.transport, v.kind);
    // the SDK keeps what it sends back with each emulation request
    const internals = client as unknown as { _session: string; _node: string };
    assert.ok(internals._session.length > 0, 'session id in the connect reply');
    assert.equal(internals._node, n.sb.nodeId);

    const ch = `feed:${v.kind}-${v.protobuf}`;
    const { sub } = await subscribed(client, ch);
    const got = collect(sub, 'publication');
    await n.sb.publish(ch, { from: 'api' });
    await sub.publish(payload(v.protobuf, { from: 'client' }));
    const pubs = await got.until(2);
    assert.deepEqual(
      pubs.map((p) => dataOf(v.protobuf, p.data)),
      [{ from: 'api' }, { from: 'client' }],
    );

    const presence = await sub.presence();
    assert.deepEqual(
      Object.values(presence.clients).map((c) => c.user),
      [`u-${v.kind}-${v.protobuf}`],
    );
    const history = await sub.history({ limit: 10 });
    assert.deepEqual(
      history.publications.map((p) => dataOf(v.protobuf, p.data)),
      [{ from: 'api' }, { from: 'client' }],
    );

    const r = await client.rpc('sum', payload(v.protobuf, { a: 1 }));
    assert.deepEqual(dataOf(v.protobuf, r.data), { echo: { a: 1 }, method: 'sum' });
  });
}

for (const v of VARIANTS) {
  test(`${v.label}: recovery after a reconnect, server-side subscriptions, refresh, disconnect codes`, async (t) => {
    const n = await node();
    const user = `r-${v.kind}-${v.protobuf}`;
    let tokens = 0;
    const getToken = async () => {
      tokens++;
      return mintToken(n.secret, { sub: user, exp: nowSec() + 2 });
    };
    const { client } = await connectedEmuClient(t, n, v.kind, user, { protobuf: v.protobuf, getToken }, { exp: nowSec() + 2 });

    // recovery: publications made while the client was away arrive on resubscribe, recovered
    const ch = `feed:rec-${v.kind}-${v.protobuf}`;
    const { sub } = await subscribed(client, ch);
    const got = collect(sub, 'publication');
    await n.sb.publish(ch, { i: 1 });
    await got.until(1);
    client.disconnect();
    for (let i = 2; i <= 4; i++) await n.sb.publish(ch, { i });
    const resubscribed = waitFor(sub, 'subscribed');
    client.connect();
    const rctx = await resubscribed;
    assert.equal(rctx.wasRecovering, true);
    assert.equal(rctx.recovered, true);
    await got.until(4);
    // (order across stream lines is the SDK's to keep; see the wire-order test)
    assert.deepEqual(got.items.map((p) => dataOf(v.protobuf, p.data).i).sort(), [1, 2, 3, 4]);

    // a server-side subscription made through the API, and its publications
    const srv = `feed:srv-${v.kind}-${v.protobuf}`;
    const srvSubscribed = waitFor(client, 'subscribed', { filter: (c: any) => c.channel === srv });
    await n.sb.subscribe({ user }, srv);
    await srvSubscribed;
    const srvPub = waitFor(client, 'publication', { filter: (c: any) => c.channel === srv });
    await n.sb.publish(srv, { server: 'side' });
    assert.deepEqual(dataOf(v.protobuf, (await srvPub).data), { server: 'side' });

    // the token (exp in 2 s) is refreshed over the emulation requests, twice, without a reconnect
    const reconnects = collect(client, 'connecting');
    // (the SDK asks for the next token only once the server answered the previous refresh)
    await until('two token refreshes', 20_000, () => tokens >= 2);
    assert.equal(client.state, 'connected');
    assert.equal(reconnects.items.length, 0, 'no reconnect while refreshing');

    // a reconnecting disconnect (3011): the SDK reconnects over the same transport
    const reconnecting = waitFor(client, 'connecting');
    const back = waitFor(client, 'connected');
    await n.sb.disconnect({ user }, { code: 3011, reason: 'force reconnect' });
    assert.equal((await reconnecting).code, 3011);
    assert.equal((await back).transport, v.kind);

    // a terminal disconnect reaches the client with its code
    const gone = waitFor(client, 'disconnected');
    await n.sb.disconnect({ user });
    assert.equal((await gone).code, 3503);
  });
}

test('the SDK falls back to http_stream, then sse, when WebSocket is refused', async (t) => {
  const n = await node();
  for (const kind of ['http_stream', 'sse'] as const) {
    const token = await mintToken(n.secret, { sub: `fallback-${kind}` });
    const c = new JsonCentrifuge(
      [
        // a WebSocket a proxy refuses (404 on upgrade)
        { transport: 'websocket', endpoint: n.ws.replace('/connection/websocket', '/connection/blocked') },
        { transport: kind, endpoint: `${n.base}/connection/${kind}` },
      ],
      { ...emulationOptions(n), websocket: BrowserLikeWebSocket, token },
    );
    t.after(() => c.disconnect());
    const errors = collect(c, 'error');
    const connected = waitFor(c, 'connected');
    c.connect();
    assert.equal((await connected).transport, kind);
    assert.ok(
      errors.items.some((e) => e.transport === 'websocket'),
      'websocket was tried first',
    );
    c.disconnect();
  }
});

test('a publication is encoded once per encoding for WebSocket, http_stream (JSON, Protobuf) and sse subscribers together', async (t) => {
  const n = await node();
  const ch = 'feed:mixed';
  const clients = [
    (await connectedEmuClient(t, n, 'http_stream', 'm1')).client,
    (await connectedEmuClient(t, n, 'http_stream', 'm2', { protobuf: true })).client,
    (await connectedEmuClient(t, n, 'sse', 'm3')).client,
    (await connectedEmuClient(t, n, 'sse', 'm4')).client,
    await connectedClient(t, { ws: n.ws, secret: n.secret }, 'm5'),
  ];
  const subs = await Promise.all(clients.map((c) => subscribe(c, ch)));
  const got = subs.map(({ sub }) => collect(sub, 'publication'));
  const [json0, pb0] = [await encodesOf(n.sb, 'json'), await encodesOf(n.sb, 'protobuf')];
  for (let i = 1; i <= 20; i++) await n.sb.publish(ch, { i });
  await Promise.all(got.map((g) => g.until(20)));
  assert.deepEqual(
    [(await encodesOf(n.sb, 'json')) - json0, (await encodesOf(n.sb, 'protobuf')) - pb0],
    [20, 20],
    'one encoding per publication per encoding',
  );
  assert.deepEqual(dec(got[1]!.items[0].data), { i: 1 });
  for (const g of [got[0]!, got[2]!, got[3]!, got[4]!])
    assert.deepEqual(
      g.items.map((p) => p.data.i).sort((a: number, b: number) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
});

test('http_stream carries publications in offset order on the wire (a raw reader of the stream)', async (t) => {
  const n = await node();
  const token = await mintToken(n.secret, { sub: 'wire' });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${n.base}/connection/http_stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 1, connect: { token } }),
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  const lines = lineReader(res.body!);
  const connect = JSON.parse(await lines.next());
  assert.equal(connect.id, 1);
  const { session, node: nodeId } = connect.connect;
  assert.equal(nodeId, n.sb.nodeId);
  const post = await fetch(`${n.base}/emulation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session, node: nodeId, data: JSON.stringify({ id: 2, subscribe: { channel: 'feed:wire' } }) }),
  });
  assert.equal(post.status, 204);
  assert.equal(JSON.parse(await lines.next()).id, 2);
  for (let i = 1; i <= 50; i++) await n.sb.publish('feed:wire', { i });
  const offsets: number[] = [];
  while (offsets.length < 50) offsets.push(JSON.parse(await lines.next()).push.pub.offset);
  assert.deepEqual(
    offsets,
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
});

/** Lines of a streamed body, one at a time. */
function lineReader(body: ReadableStream<Uint8Array>): { next(): Promise<string> } {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  return {
    async next() {
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return line;
        }
        const { done, value } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += decoder.decode(value, { stream: true });
      }
    },
  };
}

test('server pings are answered over /emulation: http_stream (JSON, Protobuf) and sse outlive several pong timeouts', async (t) => {
  const n = await httpNode(t, { client: { ping_interval: '1s', pong_timeout: '500ms' } });
  const clients = [
    (await connectedEmuClient(t, n, 'http_stream', 'p1')).client,
    (await connectedEmuClient(t, n, 'http_stream', 'p2', { protobuf: true })).client,
    (await connectedEmuClient(t, n, 'sse', 'p3')).client,
  ];
  const drops = clients.map((c) => collect(c, 'connecting'));
  const pongs = n.sb.metrics.disconnects;
  const started = Date.now();
  await until('three ping intervals', 10_000, () => Date.now() - started > 3500, 100);
  assert.deepEqual(
    drops.map((d) => d.items.length),
    [0, 0, 0],
    'no 3012 no pong',
  );
  assert.equal((await pongs.get()).values.filter((v) => v.labels.code === '3012').length, 0);
  assert.deepEqual(
    clients.map((c) => c.state),
    ['connected', 'connected', 'connected'],
  );
});

test('sse also opens with a POST body (clients without EventSource), and its events are single data: lines', async (t) => {
  const n = await node();
  const token = await mintToken(n.secret, { sub: 'sse-post' });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${n.base}/connection/sse`, {
    method: 'POST',
    body: JSON.stringify({ id: 1, connect: { token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: 'feed:ssepost' } }),
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const lines = lineReader(res.body!);
  const events: unknown[] = [];
  while (events.length < 3) {
    const line = await lines.next();
    if (line === '') continue; // the blank line that ends each event
    assert.match(line, /^data: /);
    events.push(JSON.parse(line.slice('data: '.length)));
    if (events.length === 2) await n.sb.publish('feed:ssepost', { multi: 'line\nvalue' });
  }
  const [connect, subscribed, pub] = events as Array<Record<string, any>>;
  assert.equal(connect!.id, 1);
  assert.equal(subscribed!.id, 2);
  // a newline in the data is escaped in the JSON, so the event stays one data: line
  assert.deepEqual(pub!.push.pub.data, { multi: 'line\nvalue' });
});
