/**
 * Emulation across two `switchboard serve` nodes on Redis with no sticky
 * sessions: the SDK's stream is on node A while every `/emulation` POST goes
 * to node B (its `emulationEndpoint`), which forwards the commands to A
 * through the engine's control channel. http_stream (JSON, Protobuf) and sse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectedEmuClient, type EmulationKind } from './helpers/emulation.js';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { collect, waitFor } from './helpers/wait.js';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (u8: Uint8Array) => JSON.parse(Buffer.from(u8).toString('utf8'));

async function nodeId(s: RunningServer): Promise<string> {
  return ((await s.call('info')).result.nodes as Array<{ uid: string }>)[0]!.uid;
}

test('two nodes on Redis: the stream on A, every emulation request posted to B and forwarded to A', async (t) => {
  const cfg = nodeConfig(SHARED_REDIS, uniquePrefix('emu'), {
    http_stream: { enabled: true },
    sse: { enabled: true },
    client: { allowed_origins: ['*'] },
  });
  const [a, b] = await Promise.all([startServer(t, cfg, { raw: true }), startServer(t, cfg, { raw: true })]);
  const [idA, idB] = await Promise.all([nodeId(a), nodeId(b)]);
  assert.notEqual(idA, idB);

  const variants: Array<{ kind: EmulationKind; protobuf: boolean }> = [
    { kind: 'http_stream', protobuf: false },
    { kind: 'http_stream', protobuf: true },
    { kind: 'sse', protobuf: false },
  ];
  for (const v of variants) {
    const target = { base: a.http, secret: a.secret, emulationBase: b.http };
    const user = `x-${v.kind}-${v.protobuf}`;
    const { client, ctx } = await connectedEmuClient(t, target, v.kind, user, { protobuf: v.protobuf });
    assert.equal(ctx.transport, v.kind);
    assert.equal((client as unknown as { _node: string })._node, idA, 'the stream is held by A');

    // subscribe, publish and presence all travel B → A
    const ch = `cross-${v.kind}-${v.protobuf}`;
    const sub = client.newSubscription(ch);
    const subscribed = waitFor(sub, 'subscribed', { ms: 10_000 });
    sub.subscribe();
    await subscribed;
    const got = collect(sub, 'publication');
    await b.call('publish', { channel: ch, data: { via: 'api on B' } });
    await sub.publish(v.protobuf ? enc({ via: 'client' }) : { via: 'client' });
    await got.until(2, 10_000);
    const datas = got.items.map((p) => (v.protobuf ? dec(p.data) : p.data));
    assert.deepEqual(datas.map((d) => d.via).sort(), ['api on B', 'client']);
    const presence = await sub.presence();
    assert.deepEqual(
      Object.values(presence.clients).map((c) => c.user),
      [user],
    );

    // an API disconnect on B reaches the stream on A with its code
    const gone = waitFor(client, 'disconnected', { ms: 10_000 });
    await b.call('disconnect', { user });
    assert.equal((await gone).code, 3503);
  }

  // B forwards what it does not hold and answers with what A found: an unknown session is a 404 from B,
  // a node nobody answers for a 504; both counted on B
  const post = (node: string) =>
    fetch(`${b.http}/emulation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session: 'no-such-session', node, data: '{}' }),
    });
  const unknown = await b.metric('switchboard_bad_input_total', { kind: 'emulation_unknown_session' });
  const res = await post(idA);
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /session not found/);
  assert.equal(await b.metric('switchboard_bad_input_total', { kind: 'emulation_unknown_session' }), unknown + 1);
  const lost = await post('no-such-node');
  assert.equal(lost.status, 504);
  assert.equal(await b.metric('switchboard_bad_input_total', { kind: 'emulation_unknown_node' }), 1);
  assert.equal(await b.metric('switchboard_connections'), 0, 'B never held a connection');
});
