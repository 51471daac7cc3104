/**
 * The emulation endpoints under bad input and limits: oversize bodies (413),
 * unknown sessions (404), malformed bodies (400), wrong methods (405), a
 * malformed connect (3501 push), CORS for allowed and refused origins,
 * per-address connection limits, a slow stream reader (3008) beside a fast
 * one, and the shutdown drain (3001). Each refusal is a JSON error, counted
 * in metrics, and the connected clients carry on.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, test } from 'node:test';
import type { Switchboard } from '../src/node.js';
import { connectedEmuClient, httpNode, type HttpNode } from './helpers/emulation.js';
import { scope } from './helpers/scope.js';
import { subscribe } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { collect, until, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());

const ORIGIN = 'http://app.localhost:5173';

let nodePromise: Promise<HttpNode> | undefined;
function node(): Promise<HttpNode> {
  nodePromise ??= httpNode(S, {
    client: { allowed_origins: [ORIGIN] },
    channel: { without_namespace: { allow_subscribe_for_client: true } },
    http_stream: { max_request_body_size: 2048 },
    sse: { max_request_body_size: 2048 },
    emulation: { max_request_body_size: 1024 },
  });
  return nodePromise;
}

async function badInput(sb: Switchboard, kind: string): Promise<number> {
  const m = await sb.metrics.badInput.get();
  return m.values.filter((v) => v.labels.kind === kind).reduce((s, v) => s + v.value, 0);
}

async function jsonError(res: Response, status: number): Promise<string> {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as { error: { code: number; message: string } };
  assert.equal(body.error.code, status);
  assert.equal(typeof body.error.message, 'string');
  return body.error.message;
}

test('bad emulation and stream requests get JSON errors, are counted, and a connected client carries on', async (t) => {
  const n = await node();
  const { client } = await connectedEmuClient(t, n, 'http_stream', 'bystander');
  const { sub } = await subscribe(client, 'calm');
  const session = (client as unknown as { _session: string })._session;
  const post = (path: string, body: string | Blob, type = 'application/json') =>
    fetch(`${n.base}${path}`, { method: 'POST', headers: { 'content-type': type }, body });

  const before = {
    large: await badInput(n.sb, 'emulation_too_large'),
    unknown: await badInput(n.sb, 'emulation_unknown_session'),
    malformed: await badInput(n.sb, 'emulation_malformed'),
    streamLarge: await badInput(n.sb, 'stream_too_large'),
    noConnect: await badInput(n.sb, 'stream_no_connect'),
    method: await badInput(n.sb, 'emulation_method'),
  };
  // oversize: declared and streamed (chunked, no content-length)
  await jsonError(await post('/emulation', JSON.stringify({ session, node: n.sb.nodeId, data: 'x'.repeat(4096) })), 413);
  const chunked = new ReadableStream({
    start(c) {
      for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode('y'.repeat(512)));
      c.close();
    },
  });
  await jsonError(
    await fetch(`${n.base}/emulation`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit & { duplex: string }),
    413,
  );
  assert.match(
    await jsonError(await post('/emulation', JSON.stringify({ session: 'nope', node: n.sb.nodeId, data: '{}' })), 404),
    /session/,
  );
  assert.match(
    await jsonError(await post('/emulation', JSON.stringify({ session: 'nope', node: 'no-such-node', data: '{}' })), 404),
    /session/,
  );
  await jsonError(await post('/emulation', '{"session":'), 400);
  await jsonError(await post('/emulation', JSON.stringify({ session, node: n.sb.nodeId, data: { not: 'a string' } })), 400);
  await jsonError(
    await post('/emulation', new Blob([new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])]), 'application/octet-stream'),
    400,
  );
  await jsonError(await fetch(`${n.base}/emulation`), 405);
  await jsonError(await fetch(`${n.base}/connection/sse`), 400);
  await jsonError(await post('/connection/http_stream', 'z'.repeat(4096)), 413);
  await jsonError(await post('/connection/http_stream', ''), 400);

  await until('refusals counted', 5000, async () => {
    return (
      (await badInput(n.sb, 'emulation_too_large')) === before.large + 2 &&
      (await badInput(n.sb, 'emulation_unknown_session')) === before.unknown + 2 &&
      (await badInput(n.sb, 'emulation_malformed')) === before.malformed + 3 &&
      (await badInput(n.sb, 'stream_too_large')) === before.streamLarge + 1 &&
      (await badInput(n.sb, 'stream_no_connect')) === before.noConnect + 2 &&
      (await badInput(n.sb, 'emulation_method')) === before.method + 1
    );
  });

  // a malformed connect command: the stream opens, then says 3501 (bad request) and ends
  const res = await post('/connection/http_stream', '{"id":1,"connect":');
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.deepEqual(JSON.parse(text.trim()).push.disconnect.code, 3501);

  // the bystander still works both ways
  const got = waitFor(sub, 'publication');
  await n.sb.publish('calm', { still: 'here' });
  assert.deepEqual((await got).data, { still: 'here' });
  const rpcError = await client.rpc('x', {}).then(
    () => undefined,
    (e: { code: number }) => e.code,
  );
  assert.equal(rpcError, 108, 'a command round trip (no RPC handler: 108)');
  assert.equal(client.state, 'connected');
});

test('CORS: allowed origins get their origin back and preflights answered; others get 403 on every endpoint', async () => {
  const n = await node();
  for (const path of ['/emulation', '/connection/http_stream', '/connection/sse']) {
    const pre = await fetch(`${n.base}${path}`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(pre.status, 204, path);
    assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);

    const evil = await fetch(`${n.base}${path}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.localhost', 'access-control-request-method': 'POST' },
    });
    assert.equal(evil.status, 403, path);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
  }
  const before = await badInput(n.sb, 'origin');
  const token = await mintToken(n.secret, { sub: 'evil' });
  const cmd = JSON.stringify({ id: 1, connect: { token } });
  const evilStream = await fetch(`${n.base}/connection/http_stream`, {
    method: 'POST',
    headers: { origin: 'http://evil.localhost' },
    body: cmd,
  });
  await jsonError(evilStream, 403);
  const evilSse = await fetch(`${n.base}/connection/sse?cf_connect=${encodeURIComponent(cmd)}`, {
    headers: { origin: 'http://evil.localhost' },
  });
  await jsonError(evilSse, 403);
  assert.equal(await badInput(n.sb, 'origin'), before + 2);

  // an allowed origin's stream carries the CORS headers
  const ac = new AbortController();
  const ok = await fetch(`${n.base}/connection/sse?cf_connect=${encodeURIComponent(cmd)}`, {
    headers: { origin: ORIGIN },
    signal: ac.signal,
  });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
  assert.match(ok.headers.get('content-type') ?? '', /text\/event-stream/);
  ac.abort();
});

test('connection_limit_per_ip applies to streams as to WebSockets (429), and frees up when a stream ends', async (t) => {
  const n = await httpNode(t, { client: { connection_limit_per_ip: 1 } });
  const token = await mintToken(n.secret, { sub: 'limited' });
  const open = (signal?: AbortSignal) =>
    fetch(`${n.base}/connection/http_stream`, { method: 'POST', body: JSON.stringify({ id: 1, connect: { token } }), signal });
  const ac = new AbortController();
  const first = await open(ac.signal);
  assert.equal(first.status, 200);
  await jsonError(await open(), 429);
  ac.abort();
  await until('the first stream is gone', 5000, () => n.sb.hub.clients.size === 0);
  const again = new AbortController();
  t.after(() => again.abort());
  assert.equal((await open(again.signal)).status, 200);
});

test('shutdown drains emulation clients with 3001 and refuses new streams (503)', async (t) => {
  const n = await httpNode(t);
  const a = (await connectedEmuClient(t, n, 'http_stream', 'drain-a')).client;
  const b = (await connectedEmuClient(t, n, 'sse', 'drain-b')).client;
  const codes = Promise.all([a, b].map((c) => waitFor(c, 'connecting').then((ctx) => ctx.code)));
  const down = n.sb.shutdown();
  assert.deepEqual(await codes, [3001, 3001]);
  await down;
  const token = await mintToken(n.secret, { sub: 'late' });
  await jsonError(
    await fetch(`${n.base}/connection/http_stream`, { method: 'POST', body: JSON.stringify({ id: 1, connect: { token } }) }),
    503,
  );
});

test('a stream reader that stops reading is closed as slow (3008); a fast one on the channel gets every publication', async (t) => {
  const n = await httpNode(t, { client: { queue_max_size: 65536 }, channel: { without_namespace: { allow_subscribe_for_client: true } } });
  const ch = 'firehose';
  const fast = (await connectedEmuClient(t, n, 'http_stream', 'fast')).client;
  const { sub } = await subscribe(fast, ch);
  const got = collect(sub, 'publication');

  // a raw HTTP client: connect and subscribe in the opening request, read until subscribed, then never read again
  const token = await mintToken(n.secret, { sub: 'slow' });
  const body = JSON.stringify({ id: 1, connect: { token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: ch } });
  const port = Number(new URL(n.base).port);
  const sock = netConnect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  sock.write(
    `POST /connection/http_stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let seen = '';
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('"id":2')) {
        sock.off('data', onData);
        sock.pause();
        resolve();
      }
    };
    sock.on('data', onData);
  });
  assert.equal(n.sb.hub.clients.size, 2);

  const drops = (await n.sb.metrics.queueDrops.get()).values[0]?.value ?? 0;
  const big = 'x'.repeat(16 * 1024);
  let sent = 0;
  // publish until the slow reader is dropped (bounded: ~48 MB), at the fast reader's pace so only the slow one lags
  while (n.sb.hub.clients.size === 2 && sent < 3000) {
    for (let i = 0; i < 2; i++) await n.sb.publish(ch, { i: ++sent, big });
    await got.until(sent, 30_000);
  }
  await until('the slow reader is dropped', 10_000, () => n.sb.hub.clients.size === 1);
  assert.equal((await n.sb.metrics.queueDrops.get()).values[0]?.value ?? 0, drops + 1);
  await got.until(sent, 60_000);
  assert.equal(got.items.length, sent);
  assert.equal(fast.state, 'connected');
});
