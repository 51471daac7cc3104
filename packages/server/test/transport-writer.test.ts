/**
 * The shared flush pass of the writers, over real sockets: a fan-out flush
 * that takes long yields to the event loop in slices, so that a connection
 * arriving meanwhile is accepted before the flush ends (libuv accepts one
 * connection per loop turn since 1.45), and every message still reaches
 * every client once, in order.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { Writer, type WriterOwner } from '../src/transport/writer.js';

const CLIENTS = 200;
const MESSAGES = 5;

type RawSocket = { write: (b: Buffer) => boolean };
/** The TCP socket under a ws connection (the writer writes frames to it directly). */
const rawSocket = (ws: WebSocket): RawSocket => (ws as unknown as { _socket: RawSocket })._socket;

function busyWait(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
}

test('a slow fan-out flush lets a new connection in before it ends, and loses nothing', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => wss.close());
  await once(wss, 'listening');
  const port = (wss.address() as AddressInfo).port;

  const serverSide: WebSocket[] = [];
  wss.on('connection', (ws) => serverSide.push(ws));
  const received: string[][] = [];
  const clients: WebSocket[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new WebSocket(`ws://127.0.0.1:${port}`);
    const got: string[] = [];
    received.push(got);
    c.on('message', (d) => got.push(...String(d).split('\n')));
    clients.push(c);
  }
  t.after(() => clients.forEach((c) => c.terminate()));
  await Promise.all(clients.map((c) => once(c, 'open')));
  while (serverSide.length < CLIENTS) await new Promise((r) => setImmediate(r));

  // Every socket write takes 100 µs more: one flush over all of them takes ≥ 20 ms.
  const overflowed: number[] = [];
  const writers = serverSide.map((ws, i) => {
    const sock = rawSocket(ws);
    const write = sock.write.bind(sock);
    sock.write = (b: Buffer) => {
      busyWait(100);
      return write(b);
    };
    const owner: WriterOwner = { onWriterOverflow: () => overflowed.push(i) };
    const w = new Writer(ws, 1 << 20);
    w.owner = owner;
    return w;
  });

  // A plain TCP server on the same loop tells when a connection made now is accepted.
  const probe = createServer((s) => s.destroy());
  t.after(() => probe.close());
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');

  const events: string[] = [];
  probe.once('connection', () => events.push('accepted'));
  // the flush ends when the last writer's last message is handed to the socket
  const lastSock = rawSocket(serverSide[CLIENTS - 1]!);
  const lastWrite = lastSock.write;
  lastSock.write = (b: Buffer) => {
    events.push('last writer flushed');
    return lastWrite(b);
  };

  for (let m = 1; m <= MESSAGES; m++) {
    for (const w of writers) w.enqueue(Buffer.from(`{"m":${m}}`));
  }
  // connected now (the kernel completes the handshake); accepted when the loop gets to it
  const conn = connect((probe.address() as AddressInfo).port, '127.0.0.1');
  conn.on('error', () => {});
  t.after(() => conn.destroy());

  const want = Array.from({ length: MESSAGES }, (_, i) => `{"m":${i + 1}}`);
  for (let spins = 0; received.some((r) => r.length < MESSAGES); spins++) {
    assert.ok(spins < 20_000, 'every client got its messages');
    await new Promise((r) => setTimeout(r, 5));
  }
  for (const r of received) assert.deepEqual(r, want, 'each client got every message once, in order');
  assert.deepEqual(overflowed, []);
  for (let spins = 0; !events.includes('accepted'); spins++) {
    assert.ok(spins < 1000, 'the probe connection was accepted at all');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(events[0], 'accepted', `the connection was accepted while the flush went on (${events.join(', ')})`);
});
