/**
 * The writer over a permessage-deflate connection. ws queues messages while
 * it deflates them (asynchronously, on the thread pool) and counts that
 * queue in `bufferedAmount`; the TCP socket under it may hold nothing. A
 * writer that then waited for the socket's 'drain' waited forever (a socket
 * only drains after a write it refused), its queue grew, and a healthy
 * client was dropped as slow (3008).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { within } from './helpers/client.js';
import { Flusher } from '../src/transport/flusher.js';
import { Writer, type WriterOwner } from '../src/transport/writer.js';

const HIGH_WATER = 256 * 1024;

test('a deflating connection whose socket never backs up still gets every message', async (t) => {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    perMessageDeflate: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 },
  });
  t.after(() => wss.close());
  await once(wss, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: true });
  t.after(() => client.terminate());
  const [serverWs] = (await once(wss, 'connection')) as [WebSocket];
  await once(client, 'open');
  assert.ok(client.extensions.includes('permessage-deflate'), 'compression was negotiated');

  let received = 0;
  let last = '';
  client.on('message', (d) => {
    for (const line of String(d).split('\n')) {
      received++;
      last = line;
    }
  });

  const overflows: string[] = [];
  const owner: WriterOwner = { onWriterOverflow: () => overflows.push('overflow') };
  const flusher = new Flusher();
  const writer = new Writer(serverWs, 64 << 20, flusher);
  writer.owner = owner;

  // 8 MB that deflates to almost nothing: ws holds it in its deflate queue, the socket stays empty.
  const chunk = Buffer.from(JSON.stringify({ data: 'x'.repeat(16 * 1024) }));
  const BURST = 512;
  for (let i = 0; i < BURST; i++) writer.enqueue(chunk);
  // Runs right after the flush pass that handed the burst to ws (same turn, queued after it).
  let bufferedAfterBurst = 0;
  let bufferedAtSecondFlush = 0;
  await new Promise<void>((resolve) =>
    setImmediate(() => {
      bufferedAfterBurst = serverWs.bufferedAmount;
      writer.enqueue(Buffer.from('{"last":true}'));
      // queued after the writer's next flush pass: sees what that pass saw, minus what ws finished since
      setImmediate(() => {
        bufferedAtSecondFlush = serverWs.bufferedAmount;
        resolve();
      });
    }),
  );
  assert.ok(bufferedAfterBurst > HIGH_WATER, `ws held the burst in its deflate queue (${bufferedAfterBurst} bytes)`);
  assert.ok(bufferedAtSecondFlush > HIGH_WATER, `the next flush saw more than the high-water mark (${bufferedAtSecondFlush} bytes)`);

  const done = new Promise<void>((resolve) => {
    const check = (): void => {
      if (last === '{"last":true}') resolve();
    };
    client.on('message', check);
  });
  await within(done, 10_000, 'the message queued behind the deflate backlog arrives');
  assert.equal(received, BURST + 1);
  assert.deepEqual(overflows, []);
  assert.equal(writer.pendingBytes, 0);
});
