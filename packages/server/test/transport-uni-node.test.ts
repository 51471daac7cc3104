/**
 * The unidirectional transports on an embedded node (an app's own HTTP
 * server hands requests to `handleUniRequest`): server-side subscriptions
 * from onConnecting, one encoding per publication for all uni clients
 * whatever the transport, the slow-consumer rule, and the shutdown drain.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Switchboard } from '../src/node.js';
import type { TestContextLike } from './helpers/scope.js';
import { openSse, openUniWs, postStream } from './helpers/uni.js';
import { WebSocket } from 'ws';
import { encodesOf } from './helpers/embedded.js';
import { collect, until, waitFor } from './helpers/wait.js';

const UNI = { uni_websocket: { enabled: true }, uni_sse: { enabled: true }, uni_http_stream: { enabled: true } };

async function node(t: TestContextLike, config: Record<string, unknown>, hooks: ConstructorParameters<typeof Switchboard>[0] = {}) {
  const sb = new Switchboard({ ...hooks, config: { log: { level: 'error' }, ...UNI, ...config } });
  // An app's own server: the node serves its unidirectional paths, the app the rest.
  const server = createServer((req, res) => {
    if (sb.handleUniRequest(req, res)) return;
    res.writeHead(404).end();
  });
  await sb.start();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let down = false;
  const shutdown = async (): Promise<void> => {
    if (down) return;
    down = true;
    await sb.shutdown();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  t.after(shutdown);
  const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    sb,
    shutdown,
    stream: `http://${base}/connection/uni_http_stream`,
    sse: `http://${base}/connection/uni_sse`,
    ws: `ws://${base}/connection/uni_websocket`,
  };
}

test('onConnecting channels become server-side subscriptions; one encoding per publication for every uni client', async (t) => {
  const n = await node(t, {}, { hooks: { onConnecting: (ctx) => ({ user: 'hooked-' + String(ctx.data), channels: ['room'] }) } });
  const a = await postStream(t, n.stream, JSON.stringify({ data: 'a' }));
  const b = openSse(t, n.sse + '?cf_connect=' + encodeURIComponent(JSON.stringify({ data: 'b' })));
  const c = await openUniWs(t, n.ws, JSON.stringify({ data: 'c' }));
  for (const cl of [a.client, b.client, c.client]) {
    assert.deepEqual(Object.keys((await cl.next((p) => p.connect !== undefined)).connect.subs), ['room']);
  }
  const uniEncodes = (): Promise<number> => encodesOf(n.sb, 'uni_json');
  const before = await uniEncodes();
  for (let i = 0; i < 5; i++) await n.sb.publish('room', { i });
  for (const cl of [a.client, b.client, c.client])
    await until('five publications', 10_000, () => cl.pushes.filter((p) => p.pub).length === 5);
  assert.equal((await uniEncodes()) - before, 5, 'one unidirectional encoding per publication, shared by three transports');
});

test('a uni_http_stream client that stops reading is cut off as slow (3008) and counted; others keep receiving', async (t) => {
  const n = await node(
    t,
    { client: { queue_max_size: 2 * 1024 * 1024 } },
    { hooks: { onConnecting: () => ({ user: 'u', channels: ['flood'] }) } },
  );
  const drops0 = (await n.sb.metrics.queueDrops.get()).values[0]?.value ?? 0;
  // a reader that never reads: the response is paused as soon as headers arrive
  await new Promise<void>((resolve, reject) => {
    const req = request(n.stream, { method: 'POST' }, (res) => {
      res.pause();
      resolve();
    });
    t.after(() => req.destroy());
    req.on('error', reject);
    req.end('{}');
  });
  const healthy = await postStream(t, n.stream, '{}');
  await healthy.client.next((p) => p.connect !== undefined);
  const big = 'x'.repeat(64 * 1024);
  let sent = 0;
  await until('the stalled client to be dropped', 60_000, async () => {
    // a burst stays under the queue limit: only a reader that never drains passes it
    for (let i = 0; i < 4; i++, sent++) await n.sb.publish('flood', { big, i: sent });
    return ((await n.sb.metrics.queueDrops.get()).values[0]?.value ?? 0) > drops0;
  });
  await until('the stalled connection to leave the node', 10_000, () => n.sb.hub.clients.size === 1);
  await until('the healthy client to get every publication', 30_000, () => healthy.client.pushes.filter((p) => p.pub).length === sent);
  assert.equal((await n.sb.metrics.disconnects.get()).values.find((v) => v.labels.code === '3008')?.value, 1);
});

test('shutdown drains uni clients: each gets a disconnect push 3001 and its stream ends', async (t) => {
  const n = await node(t, { client: { allow_anonymous_connect_without_token: true } });
  const a = await postStream(t, n.stream, '{}');
  const b = openSse(t, n.sse);
  const c = await openUniWs(t, n.ws, '{}');
  for (const cl of [a.client, b.client, c.client]) await cl.next((p) => p.connect !== undefined);
  await n.shutdown();
  for (const cl of [a.client, b.client, c.client]) {
    assert.deepEqual((await cl.next((p) => p.disconnect !== undefined)).disconnect, { code: 3001, reason: 'shutdown' });
    await cl.ends();
  }
  assert.equal(c.client.closeCode, 3001);
});

test('pings: uni clients get {} and never pong; a uni_websocket that stops answering frame pings is closed (3012)', async (t) => {
  const n = await node(t, { client: { allow_anonymous_connect_without_token: true, ping_interval: '2s', pong_timeout: '1500ms' } });
  const stream = await postStream(t, n.stream, '{}');
  const answering = await openUniWs(t, n.ws, '{}');
  // a client whose WebSocket library does not answer ping frames
  const silent = new WebSocket(n.ws, { autoPong: false });
  t.after(() => silent.terminate());
  const silentClient = collect(silent, 'message');
  await once(silent, 'open');
  silent.send('{}');
  const code = await waitFor<number>(silent, 'close', { ms: 20_000 });
  assert.equal(code, 3012, 'no pong to the frame pings');
  assert.ok(silentClient.items.some((m) => String(m).includes('"connect"')));
  // the others saw pings ({}) for the same time and are still connected
  for (const c of [stream.client, answering.client]) {
    await c.next((p) => Object.keys(p).length === 0, 10_000);
    assert.equal(c.ended, false);
  }
  assert.equal(n.sb.hub.clients.size, 2);
});
