/**
 * Channel compaction (namespace `allow_channel_compaction`; the SDK sets
 * subscription flag 1 on every subscribe): the subscribe reply carries a
 * numeric channel id and publication/join/leave pushes are routed by it
 * instead of the channel name. The id is one per channel per node, so
 * every compacted subscriber shares the same push bytes. Checked on the
 * wire and with the real SDK (JSON); the Protobuf build of the SDK 5.7.4
 * cannot match int64 ids (Long objects), so Protobuf connections keep
 * channel names, and still get everything.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import type WebSocket from 'ws';
import { embedded, encodesOf, SECRET, type EmbeddedNode } from './helpers/embedded.js';
import { RawClient } from './helpers/raw.js';
import type { TestContextLike } from './helpers/scope.js';
import { BrowserLikeWebSocket } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const LONG = 'compact:a-rather-long-channel-name-with-a-project-and-quote-id-0000000042';

async function node(t: TestContextLike): Promise<EmbeddedNode> {
  return embedded(t, {
    channel: {
      namespaces: [
        {
          name: 'compact',
          allow_subscribe_for_client: true,
          allow_channel_compaction: true,
          join_leave: true,
          force_push_join_leave: true,
        },
        { name: 'named', allow_subscribe_for_client: true },
      ],
    },
  });
}

/** A JSON SDK client whose socket records every text frame it receives. */
async function recordingClient(t: TestContextLike, n: EmbeddedNode, user: string) {
  const frames: string[] = [];
  class Recording extends BrowserLikeWebSocket {
    constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      super(address, protocols, options);
      this.on('message', (d: Buffer) => frames.push(d.toString('utf8')));
    }
  }
  const c = new Centrifuge(n.ws, { websocket: Recording, token: await mintToken(SECRET, { sub: user }), timeout: 5000 });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  const messages = () =>
    frames.flatMap((f) =>
      f
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l)),
    );
  return { c, frames, messages };
}

async function subscribed(c: Centrifuge, channel: string) {
  const sub = c.newSubscription(channel);
  const pubs = collect<{ channel: string; data: unknown }>(sub, 'publication');
  const joins = collect<{ channel: string; info: { user: string } }>(sub, 'join');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  return { sub, pubs, joins };
}

test('JSON: pushes are routed by the channel id from the subscribe reply; the SDK gets them on the right subscription', async (t) => {
  const n = await node(t);
  const a = await recordingClient(t, n, 'a');
  const b = await recordingClient(t, n, 'b');
  const sa = await subscribed(a.c, LONG);
  const sb = await subscribed(b.c, LONG);
  const other = await subscribed(a.c, 'named:x');
  const replyId = (m: ReturnType<typeof a.messages>) => m.find((x) => x.subscribe && x.subscribe.id !== undefined)?.subscribe.id as number;
  const id = replyId(a.messages());
  assert.ok(Number.isInteger(id) && id > 0, 'the reply carries an id');
  assert.equal(replyId(b.messages()), id, 'one id per channel per node');
  assert.equal(
    a.messages().filter((x) => x.subscribe && x.subscribe.id !== undefined).length,
    1,
    'no id where the namespace does not allow compaction',
  );

  const encodes = await encodesOf(n.sb, 'json');
  await n.sb.publish(LONG, { n: 1 });
  await n.sb.publish('named:x', { n: 2 });
  const [pa] = await sa.pubs.until(1);
  const [pb] = await sb.pubs.until(1);
  const [po] = await other.pubs.until(1);
  assert.equal(pa!.channel, LONG, 'the SDK maps the id back to its subscription');
  assert.deepEqual([pa!.data, pb!.data, po!.data], [{ n: 1 }, { n: 1 }, { n: 2 }]);
  assert.equal((await encodesOf(n.sb, 'json')) - encodes, 2, 'one encoding per publication: both compacted subscribers share the bytes');

  const pushes = a.messages().filter((x) => x.push?.pub);
  const compact = pushes.find((x) => x.push.id === id);
  assert.ok(compact, 'a push routed by id');
  assert.equal(compact.push.channel, undefined, 'without the channel name');
  assert.ok(
    pushes.some((x) => x.push.channel === 'named:x'),
    'other channels keep their name',
  );
  const joinPushes = b.messages().filter((x) => x.push?.join);
  assert.ok(joinPushes.length === 0 || joinPushes.every((x) => x.push.id === id), 'join pushes are routed by id as well');
  const frameOf = (m: unknown) => JSON.stringify(m).length;
  assert.ok(frameOf(compact) + LONG.length - 4 <= frameOf({ push: { channel: LONG, pub: compact.push.pub } }));
});

test('JSON: join and leave pushes are routed by id and reach the SDK', async (t) => {
  const n = await node(t);
  const a = await recordingClient(t, n, 'a');
  const sa = await subscribed(a.c, LONG);
  const b = await recordingClient(t, n, 'b');
  const joined = waitFor<{ info: { user: string } }>(sa.sub, 'join', { filter: (j) => j.info.user === 'b' });
  const sb = await subscribed(b.c, LONG);
  await joined;
  const leave = waitFor<{ info: { user: string } }>(sa.sub, 'leave');
  sb.sub.unsubscribe();
  assert.equal((await leave).info.user, 'b');
  const pushes = a.messages().filter((x) => x.push?.join || x.push?.leave);
  assert.ok(pushes.length >= 2 && pushes.every((x) => typeof x.push.id === 'number' && x.push.channel === undefined));
});

test('Protobuf: no id (the SDK could not match it), channel names stay, publications arrive', async (t) => {
  const n = await node(t);
  const token = await mintToken(SECRET, { sub: 'p' });
  const c = new ProtobufCentrifuge(n.ws, { websocket: BrowserLikeWebSocket, token, timeout: 5000 });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  const { pubs } = await subscribed(c as unknown as Centrifuge, LONG);
  await n.sb.publish(LONG, { n: 1 });
  const [p] = await pubs.until(1);
  assert.equal(p!.channel, LONG);
  assert.deepEqual(JSON.parse(Buffer.from(p!.data as Uint8Array).toString('utf8')), { n: 1 });
});

test('a raw client that sets no flag, or junk flags, gets channel names or a 107', async (t) => {
  const n = await node(t);
  const c = await RawClient.open(t, n);
  await c.connect(await mintToken(SECRET, { sub: 'raw' }));
  const plain = await c.command('subscribe', { channel: 'compact:x' });
  assert.equal(plain.subscribe.id, undefined, 'no flag, no id');
  const flagged = await c.command('subscribe', { channel: 'compact:y', flag: 3 });
  assert.ok(flagged.subscribe.id > 0);
  for (const flag of [-1, 1.5, 'x', {}, 2 ** 60]) {
    const r = await c.command('subscribe', { channel: `compact:bad${String(flag)}`, flag });
    assert.equal(r.error?.code, 107, `flag ${JSON.stringify(flag)}`);
  }
  assert.equal(c.closeCode, undefined);
});
