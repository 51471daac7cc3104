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
import { RawClient } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { within } from './helpers/wait.js';
import { SECRET, embedded } from './helpers/embedded.js';
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

test('a node with websocket.compression delivers bursts to a deflating client in order, without dropping it', async (t) => {
  const node = await embedded(t, {
    websocket: { compression: true, compression_min_size: 0 },
    client: { queue_max_size: 16 << 20 },
    channel: { without_namespace: { allow_subscribe_for_client: true, history_size: 1000, history_ttl: '60s' } },
  });
  const c = await RawClient.open(t, node);
  assert.ok(c.ws.extensions.includes('permessage-deflate'), 'compression was negotiated');
  await c.connect(await mintToken(SECRET, { sub: 'u' }));
  assert.ok((await c.command('subscribe', { channel: 'feed' })).subscribe);
  const text = 'z'.repeat(16 * 1024);
  const PER_BURST = 200;
  const BURSTS = 3;
  for (let b = 0; b < BURSTS; b++) {
    // one burst per turn of the event loop: the next one meets the deflate backlog of the previous
    for (let i = 0; i < PER_BURST; i++) void node.sb.publish('feed', { text, n: b * PER_BURST + i });
    await new Promise((r) => setImmediate(r));
  }
  const pubs = (): any[] => c.messages.filter((m: any) => m.push?.pub);
  await within(
    new Promise<void>((resolve) => {
      const check = (): void => (pubs().length >= PER_BURST * BURSTS ? resolve() : void c.once('message', check));
      check();
    }),
    20_000,
    'every publication arrives',
  );
  assert.deepEqual(
    pubs().map((m: any) => m.push.pub.offset),
    Array.from({ length: PER_BURST * BURSTS }, (_, i) => i + 1),
  );
  assert.equal(c.closeCode, undefined, 'the client was not dropped');
});
