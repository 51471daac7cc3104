/**
 * What reaches the wire, seen with raw `ws` clients against a real server:
 * write coalescing (messages queued in one turn leave in one frame,
 * newline-joined) and permessage-deflate (negotiated with a real client,
 * fewer bytes on the wire for a repetitive payload, same messages).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let plain: RunningServer;
let deflate: RunningServer;

const open = { allow_subscribe_for_client: true, history_size: 100, history_ttl: '60s' };

before(async () => {
  [plain, deflate] = await Promise.all([
    startServer(S, { channel: { without_namespace: open } }),
    startServer(S, { channel: { without_namespace: open }, websocket: { compression: true } }),
  ]);
});

async function subscribedRaw(
  t: Parameters<typeof RawClient.open>[0],
  s: RunningServer,
  channel: string,
  perMessageDeflate: boolean,
): Promise<RawClient> {
  const raw = await RawClient.open(t, s, { ws: { perMessageDeflate } });
  await raw.connect(await mintToken(s.secret, { sub: 'wire' }));
  assert.deepEqual((await raw.command('subscribe', { channel })).subscribe, {});
  return raw;
}

/** Bytes the client's TCP socket has read so far (frames as sent, compressed or not). */
const bytesIn = (raw: RawClient): number => (raw.ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead;

test('write coalescing: publications queued in one turn leave in ONE frame, newline-joined, in order', async (t) => {
  const raw = await subscribedRaw(t, plain, 'co', false);
  const framesBefore = raw.frames.length;
  // One API batch: the server publishes all five in one turn, so the writer gets them before it flushes.
  const r = await plain.call('batch', { commands: [1, 2, 3, 4, 5].map((n) => ({ publish: { channel: 'co', data: { n } } })) });
  assert.equal(r.replies.length, 5);
  await until('five publications', 5000, () => raw.messages.filter((m) => m.push?.pub).length === 5);
  const frames = raw.frames.slice(framesBefore);
  assert.equal(frames.length, 1, `one frame, got ${frames.length}: ${JSON.stringify(frames)}`);
  const lines = frames[0]!.split('\n');
  assert.equal(lines.length, 5, 'five messages, newline-joined');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).push.pub.data.n),
    [1, 2, 3, 4, 5],
  );
});

test('write coalescing: replies to commands sent in one frame come back in one frame', async (t) => {
  const raw = await subscribedRaw(t, plain, 'co2', false);
  const framesBefore = raw.frames.length;
  raw.send([10, 11, 12, 13].map((id) => JSON.stringify({ id, history: { channel: 'co2', limit: 0 } })).join('\n'));
  await raw.reply(13);
  const frames = raw.frames.slice(framesBefore);
  assert.equal(frames.length, 1, `one frame, got ${frames.length}: ${JSON.stringify(frames)}`);
  assert.deepEqual(
    frames[0]!.split('\n').map((l) => JSON.parse(l).id),
    [10, 11, 12, 13],
  );
});

test('permessage-deflate: negotiated with a real ws client; a repetitive payload costs far fewer bytes on the wire', async (t) => {
  const N = 20;
  const payload = { text: 'the quick brown fox jumps over the lazy dog '.repeat(100) }; // ~4.4 KB, very repetitive
  const compressed = await subscribedRaw(t, deflate, 'z', true);
  const uncompressed = await subscribedRaw(t, deflate, 'z', false);
  assert.match(compressed.ws.extensions, /permessage-deflate/, 'the server accepted the extension');
  assert.equal(uncompressed.ws.extensions, '', 'a client that does not offer it gets plain frames');
  const before = [bytesIn(compressed), bytesIn(uncompressed)];
  const got = [compressed, uncompressed].map((c) =>
    waitFor(c, 'message', { ms: 10_000, filter: () => c.messages.filter((m) => m.push?.pub).length === N }),
  );
  for (let i = 0; i < N; i++) await deflate.call('publish', { channel: 'z', data: { i, ...payload } });
  await Promise.all(got);
  for (const c of [compressed, uncompressed])
    assert.deepEqual(
      c.messages.filter((m) => m.push?.pub).map((m) => m.push.pub.data.i),
      Array.from({ length: N }, (_, i) => i),
    );
  const zBytes = bytesIn(compressed) - before[0]!;
  const rawBytes = bytesIn(uncompressed) - before[1]!;
  t.diagnostic(`${N} publications of ~4.4 KB: ${zBytes} bytes with deflate, ${rawBytes} without`);
  assert.ok(rawBytes > N * 4000, `uncompressed carries the payload (${rawBytes} bytes)`);
  assert.ok(zBytes * 10 < rawBytes, `deflate should cut a repetitive payload by 10x or more (${zBytes} vs ${rawBytes})`);
});

/**
 * Publishes 10 API batches of 60 × 8 KB (480 KB each: past the writer's 256 KB
 * high-water mark, under the 1 MB queue limit) to a client that reads all
 * the time, each batch once the previous one arrived (so the backlog never
 * legitimately passes the limit); resolves when all 600 arrived. A writer
 * that waits for a socket 'drain' that never comes stalls on the first batch.
 */
async function sustained(t: Parameters<typeof RawClient.open>[0], s: RunningServer, perMessageDeflate: boolean): Promise<RawClient> {
  const channel = `sustained-${perMessageDeflate}`;
  const c = await subscribedRaw(t, s, channel, perMessageDeflate);
  const BATCHES = 10;
  const PER = 60;
  const data = 'x'.repeat(8000);
  const received = (): number => c.messages.filter((m) => m.push?.pub).length;
  for (let b = 0; b < BATCHES; b++) {
    const got = waitFor(c, 'message', { ms: 30_000, filter: () => received() === (b + 1) * PER, failOn: 'closed' });
    await s.call('batch', { commands: Array.from({ length: PER }, (_, i) => ({ publish: { channel, data: { i: b * PER + i, data } } })) });
    await got;
  }
  assert.equal(c.closeCode, undefined);
  return c;
}

test('a sustained stream to a client that reads is delivered in full (plain frames: the control for the deflate case)', async (t) => {
  await sustained(t, plain, false);
});

test('permessage-deflate: a sustained stream to a client that reads is delivered in full, never dropped as slow (3008)', async (t) => {
  await sustained(t, deflate, true);
});
