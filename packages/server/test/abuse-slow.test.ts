/**
 * Connections that misbehave at the transport level are cut off without
 * touching the others: a client that never answers pings (3012), a slow
 * consumer that never reads its socket (3008).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(S, {
    client: { ping_interval: '1s', pong_timeout: '500ms', queue_max_size: 65536 },
    channel: { without_namespace: { allow_subscribe_for_client: true } },
  });
});

test('a client that never answers pings is closed with 3012; the others stay', async (t) => {
  const sdk = await connectedClient(t, s, 'sdk');
  const sdkReconnects = collect(sdk, 'connecting');
  const polite = await RawClient.open(t, s, { answerPings: true });
  await polite.connect(await mintToken(s.secret, { sub: 'polite' }));
  const mute = await RawClient.open(t, s, { answerPings: false });
  const reply = await mute.connect(await mintToken(s.secret, { sub: 'mute' }));
  assert.equal(reply.ping, 1, 'ping interval announced in seconds');
  assert.equal(reply.pong, true, 'the client is told to answer');
  const pings = collect(mute, 'ping');
  const politePings = collect(polite, 'ping');

  const { code } = await mute.closedWithin(4000);
  assert.equal(code, 3012);
  assert.ok(pings.items.length >= 1, 'it was pinged before being closed');

  // The others were pinged too and are still here, one more ping later.
  await politePings.until(2, 4000);
  assert.equal(polite.closeCode, undefined);
  assert.equal(sdk.state, 'connected');
  assert.equal(sdkReconnects.items.length, 0);
  assert.ok((await s.metric('switchboard_disconnects_total', { code: '3012' })) >= 1);
});

test('a slow consumer is closed with 3008 while a fast one on the same channel gets every publication', async (t) => {
  // A server of its own with the default 25 s ping: on the shared one (1 s ping, 500 ms pong
  // timeout) a consumer that never reads also never answers a ping, and on a busy machine
  // the 3012 came before the queue filled, so the test flaked on "not dropped".
  const s = await startServer(t, {
    client: { queue_max_size: 65536 },
    channel: { without_namespace: { allow_subscribe_for_client: true } },
  });
  const ch = 'firehose';
  const fast = await connectedClient(t, s, 'fast');
  const sub = fast.newSubscription(ch);
  const got = collect(sub, 'publication');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const fastDrops = collect(fast, 'connecting');

  const slow = await RawClient.open(t, s);
  await slow.connect(await mintToken(s.secret, { sub: 'slow' }));
  assert.ok((await slow.command('subscribe', { channel: ch })).subscribe);
  // Never read again: the kernel buffers fill, then the server's queue. ws.pause() (not
  // _socket.pause(): ws resumes its socket whenever its receiver drains, which let the
  // "slow" client read on and made this test flaky).
  slow.ws.pause();

  const drops0 = await s.metric('switchboard_queue_drops_total');
  const slow0 = await s.metric('switchboard_disconnects_total', { code: '3008' });
  const payload = 'x'.repeat(30_000);
  let sent = 0;
  let dropped = false;
  // One publication per request, so a burst never passes the fast client's 64 KiB queue by itself.
  while (sent < 2000) {
    await s.call('publish', { channel: ch, data: { n: sent, payload } });
    sent++;
    if (sent % 25 === 0 && (await s.metric('switchboard_disconnects_total', { code: '3008' })) > slow0) {
      dropped = true;
      break;
    }
  }
  assert.ok(dropped, `slow consumer not dropped after ${sent} publications (${(sent * 30) / 1000} MB)`);
  // Life goes on for the fast one after the drop.
  for (let i = 0; i < 10; i++, sent++) await s.call('publish', { channel: ch, data: { n: sent, payload } });

  const all = await got.until(sent, 30_000);
  assert.equal(all.length, sent);
  all.forEach((p, i) => assert.equal(p.data.n, i, `publication ${i} in order`));
  assert.equal(fastDrops.items.length, 0, 'the fast client was never disconnected');
  assert.equal(fast.state, 'connected');
  assert.ok((await s.metric('switchboard_queue_drops_total')) >= drops0 + 1);
  assert.equal((await s.metric('switchboard_disconnects_total', { code: '3008' })) - slow0, 1, 'exactly one slow disconnect');
  const chans = (await s.call('channels', { pattern: ch })) as { result: { channels: Record<string, { num_clients: number }> } };
  assert.deepEqual(chans.result.channels, { [ch]: { num_clients: 1 } }, 'the slow one is gone from the channel');
  assert.match(s.stdout(), /slow consumer disconnected/);
});
