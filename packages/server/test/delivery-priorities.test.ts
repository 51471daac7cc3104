/**
 * Priority classes (namespace `priority`): when a connection's queue is
 * backed up, a higher class leaves first, and order within a channel never
 * changes. The slow reader is real: a raw `ws` client that stops reading its
 * socket (ws.pause()) until the server's own queue holds a backlog.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RawClient } from './helpers/raw.js';
import { scope, tempDir } from './helpers/scope.js';
import { type RunningServer, runCli, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(S, {
    // Room for a large backlog: this test is about order, not about dropping slow consumers.
    client: { queue_max_size: 64 * 1024 * 1024 },
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [
        { name: 'alerts', priority: 'high', allow_subscribe_for_client: true },
        { name: 'analytics', priority: 'low', allow_subscribe_for_client: true },
      ],
    },
  });
});

/** Publication pushes a raw client got, in arrival order: channel and data. */
function pushes(c: RawClient): Array<{ channel: string; data: { n: number } }> {
  return c.messages.filter((m) => m?.push?.pub).map((m) => ({ channel: m.push.channel, data: m.push.pub.data }));
}

/** Publishes into `channel` until the server's connection queues hold more than `bytes` (the reader is paused). */
async function saturate(channel: string, bytes: number, payload: string): Promise<number> {
  let n = 0;
  for (; n < 1500; n++) {
    await s.call('publish', { channel, data: { n, payload } });
    if (n >= 8 && (await s.metric('switchboard_queue_pending_bytes')) > bytes) return n + 1;
  }
  assert.fail(`no backlog in the server's queue after ${n} publications of ${payload.length} bytes`);
}

test('a high-class channel overtakes a saturated low-class stream; normal sits between; order within each channel is kept', async (t) => {
  const slow = await RawClient.open(t, s);
  await slow.connect(await mintToken(s.secret, { sub: 'slow' }));
  for (const channel of ['analytics:feed', 'news', 'alerts:ops']) {
    assert.ok((await slow.command('subscribe', { channel })).subscribe, `subscribed to ${channel}`);
  }
  const high0 = await s.metric('switchboard_queue_messages_sent_total', { class: 'high' });
  const low0 = await s.metric('switchboard_queue_messages_sent_total', { class: 'low' });
  const slow0 = await s.metric('switchboard_disconnects_total', { code: '3008' });
  slow.ws.pause();

  // Kernel buffers fill first, then the server's queue: wait for a real backlog there.
  const bulk = await saturate('analytics:feed', 1024 * 1024, 'x'.repeat(64 * 1024));
  for (let n = 0; n < 3; n++) await s.call('publish', { channel: 'news', data: { n } });
  for (let n = 0; n < 3; n++) await s.call('publish', { channel: 'alerts:ops', data: { n } });
  await s.call('publish', { channel: 'analytics:feed', data: { n: bulk, payload: '' } });
  const total = bulk + 1 + 3 + 3;

  const done = waitFor(slow, 'message', { ms: 60_000, filter: () => pushes(slow).length >= total, failOn: 'closed' });
  slow.ws.resume();
  await done;

  const got = pushes(slow);
  assert.equal(got.length, total, 'every publication arrived once');
  const seq = (ch: string) => got.filter((p) => p.channel === ch).map((p) => p.data.n);
  const upTo = (k: number) => Array.from({ length: k }, (_, i) => i);
  assert.deepEqual(seq('analytics:feed'), upTo(bulk + 1), 'bulk stream complete and in order');
  assert.deepEqual(seq('news'), upTo(3), 'normal channel complete and in order');
  assert.deepEqual(seq('alerts:ops'), upTo(3), 'urgent channel complete and in order');

  const at = (ch: string, n: number) => got.findIndex((p) => p.channel === ch && p.data.n === n);
  // The last bulk publication sent before the urgent ones was still queued when they came: they went first.
  assert.ok(at('alerts:ops', 2) < at('analytics:feed', bulk - 1), 'urgent overtook the queued bulk stream');
  assert.ok(at('news', 2) < at('analytics:feed', bulk - 1), 'normal overtook the queued bulk stream');
  assert.ok(at('alerts:ops', 2) < at('news', 0), 'urgent overtook normal published before it');

  assert.equal(slow.closeCode, undefined, 'still connected');
  assert.equal(await s.metric('switchboard_disconnects_total', { code: '3008' }), slow0, 'nobody dropped');
  assert.ok((await s.metric('switchboard_queue_messages_sent_total', { class: 'high' })) >= high0 + 3, 'high class counted');
  assert.ok((await s.metric('switchboard_queue_messages_sent_total', { class: 'low' })) >= low0 + bulk + 1, 'low class counted');
});

test('a subscribe reply stays ahead of its channel: a low-class resubscribe after queued publications of the old subscription', async (t) => {
  // The reply goes in the channel's class, so the old subscription's queued publications
  // (same class, same FIFO) arrive before it and the new subscription's after it.
  const c = await RawClient.open(t, s);
  await c.connect(await mintToken(s.secret, { sub: 'resub' }));
  assert.ok((await c.command('subscribe', { channel: 'analytics:r' })).subscribe);
  c.ws.pause();
  const bulk = await saturate('analytics:r', 512 * 1024, 'y'.repeat(32 * 1024));
  // A paused client still writes: the server reads these commands while its queue to the client is backed up.
  const unsub = c.command('unsubscribe', { channel: 'analytics:r' }, 60_000);
  const resub = c.command('subscribe', { channel: 'analytics:r' }, 60_000);
  c.ws.resume();
  await unsub;
  const reply = await resub;
  assert.ok(reply.subscribe, 'resubscribed');
  const fresh = waitFor(c, 'message', { ms: 30_000, filter: (m: any) => m?.push?.pub?.data?.n === bulk, failOn: 'closed' });
  await s.call('publish', { channel: 'analytics:r', data: { n: bulk } });
  await fresh;
  const replyAt = c.messages.indexOf(reply);
  const pubsAt = c.messages
    .map((m, i) => (m?.push?.pub ? { i, n: m.push.pub.data.n as number } : undefined))
    .filter((x) => x !== undefined);
  const afterReply = pubsAt.filter((p) => p.i > replyAt).map((p) => p.n);
  assert.deepEqual(afterReply, [bulk], 'only the new subscription’s publication follows its subscribe reply');
});

test('an unknown priority class is a config error that names the classes', async (t) => {
  const file = join(tempDir(t), 'bad.json');
  writeFileSync(file, JSON.stringify({ channel: { namespaces: [{ name: 'alerts', priority: 'urgent' }] } }));
  const r = await runCli(['check-config', '--config', file]);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /priority: expected one of "high", "normal", "low" \(got "urgent"\)/);
});
