/**
 * What the writer relies on in `ws` beyond its public API (see
 * src/transport/ws-internals.ts). If a `ws` upgrade changes any of this,
 * these tests fail before the writer silently falls back or misframes.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { directSocket } from '../src/transport/ws-internals.js';
import { Flusher } from '../src/transport/flusher.js';
import { Writer } from '../src/transport/writer.js';

async function pair(
  t: { after(f: () => unknown): void },
  deflate: boolean,
): Promise<{ server: WebSocket; client: WebSocket; req: IncomingMessage }> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: deflate ? { threshold: 0 } : false });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, { perMessageDeflate: deflate });
  const [server, req] = (await once(wss, 'connection')) as [WebSocket, IncomingMessage];
  await once(client, 'open');
  t.after(() => {
    client.terminate();
    wss.close();
    http.closeAllConnections();
    http.close();
  });
  return { server, client, req };
}

test('ws: `_socket` is the upgrade socket and `_extensions` is empty without extensions', async (t) => {
  const { server, req } = await pair(t, false);
  const internal = server as unknown as { _socket: unknown; _extensions: unknown };
  assert.ok(internal._socket instanceof Socket, '_socket is a net.Socket');
  assert.equal(internal._socket, req.socket, '_socket is the socket the upgrade came on');
  assert.deepEqual(internal._extensions, {}, '_extensions is an empty object');
  assert.equal(directSocket(server), req.socket);
  // bufferedAmount is the socket's writableLength when nothing is queued in ws (the writer reads the latter directly)
  assert.equal(server.bufferedAmount, req.socket.writableLength);
});

test('ws: `_extensions` names permessage-deflate when it is negotiated, so the writer leaves framing to ws', async (t) => {
  const { server, req } = await pair(t, true);
  const internal = server as unknown as { _socket: unknown; _extensions: Record<string, unknown> };
  assert.equal(internal._socket, req.socket);
  assert.deepEqual(Object.keys(internal._extensions), ['permessage-deflate']);
  assert.equal(directSocket(server), undefined);
});

test('ws: a whole frame written to `_socket` arrives in order with frames ws sends itself', async (t) => {
  const { server, client } = await pair(t, false);
  const got: string[] = [];
  const all = new Promise<void>((resolve) =>
    client.on('message', (d) => {
      got.push(String(d));
      if (got.length === 4) resolve();
    }),
  );
  const w = new Writer(server, 1 << 20, new Flusher());
  server.send('one');
  w.enqueue(Buffer.from('two'));
  w.flush();
  server.send('three');
  w.enqueue(Buffer.from('four'));
  w.enqueue(Buffer.from('five'));
  w.flush();
  await all;
  assert.deepEqual(got, ['one', 'two', 'three', 'four\nfive']);
});

test('ws: with deflate, bufferedAmount counts the deflate queue and each send callback runs once it is written', async (t) => {
  const { server } = await pair(t, true);
  const big = Buffer.alloc(512 * 1024, 'a');
  let called = 0;
  const sent = new Promise<void>((resolve) =>
    server.send(big, { binary: false }, (err) => {
      assert.equal(err ?? undefined, undefined);
      called++;
      resolve();
    }),
  );
  assert.ok(server.bufferedAmount >= big.length, `bufferedAmount includes the message being deflated (${server.bufferedAmount})`);
  assert.equal(called, 0, 'the callback waits for the deflate and the write');
  await sent;
  assert.equal(called, 1);
});
