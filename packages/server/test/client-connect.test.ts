/**
 * Connection life cycle with the real `centrifuge` SDK: connect, token
 * refresh through getToken, connection expiry, refused tokens (3500).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { makeClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken, nowSec, unsignedToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(S, {
    client: { expired_close_delay: '300ms' },
    channel: { without_namespace: { allow_subscribe_for_client: true } },
  });
});

test('connects with a valid HS256 token and gets a client id', async (t) => {
  const token = await mintToken(s.secret, { sub: '42', info: { name: 'Ann' } });
  const c = makeClient(t, s, { token });
  const connected = waitFor(c, 'connected');
  c.connect();
  const ctx = await connected;
  assert.equal(typeof ctx.client, 'string');
  assert.ok(ctx.client.length > 0);
  assert.equal(ctx.transport, 'websocket');
  const info = await s.call('info');
  const nodes = (info.result as { nodes: Array<{ num_clients: number; num_users: number }> }).nodes;
  assert.equal(nodes.length, 1);
  assert.ok(nodes[0]!.num_clients >= 1);
});

test('an already-expired token gets 109, the SDK calls getToken and connects', async (t) => {
  const expired = await mintToken(s.secret, { sub: '42', exp: nowSec() - 10 });
  let calls = 0;
  const c = makeClient(t, s, {
    token: expired,
    getToken: async () => {
      calls++;
      return mintToken(s.secret, { sub: '42', exp: nowSec() + 3600 });
    },
  });
  const errors = collect(c, 'error');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  assert.equal(calls, 1);
  const connectErrors = errors.items.filter((e) => e.type === 'connect');
  assert.equal(connectErrors.length, 1);
  assert.equal(connectErrors[0].error.code, 109);
});

test('a short-lived token is refreshed through getToken before it expires; the connection stays', async (t) => {
  // exp 2 s ahead: the connect reply says expires/ttl, the SDK refreshes after ttl.
  const first = await mintToken(s.secret, { sub: '7', exp: nowSec() + 2 });
  let calls = 0;
  const c = makeClient(t, s, {
    token: first,
    getToken: async () => {
      calls++;
      return mintToken(s.secret, { sub: '7', exp: nowSec() + 3600 });
    },
  });
  const disconnects = collect(c, 'connecting');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  const sub = c.newSubscription('after-refresh');
  const subscribed = waitFor(sub, 'subscribed');
  sub.subscribe();
  await subscribed;
  // Wait past the first token's expiry plus the close delay.
  await new Promise((r) => setTimeout(r, 3300));
  assert.equal(calls, 1, 'getToken called once for the refresh');
  assert.equal(c.state, 'connected');
  // connecting is emitted once for the initial connect() and never again.
  assert.equal(disconnects.items.length, 1);
  const got = waitFor(sub, 'publication');
  const r = await s.call('publish', { channel: 'after-refresh', data: { still: 'here' } });
  assert.deepEqual(r, { result: {} });
  assert.deepEqual((await got).data, { still: 'here' });
});

test('a connection whose token expires without refresh is closed with 3005', async (t) => {
  // The SDK refreshes by itself, so a raw client shows the server side of expiry.
  const raw = await RawClient.open(t, s);
  const res = await raw.connect(await mintToken(s.secret, { sub: '9', exp: nowSec() + 1 }));
  assert.equal(res.expires, true);
  assert.equal(res.ttl, 1);
  const { code } = await raw.closedWithin(4000);
  assert.equal(code, 3005);
});

test('a token with a bad signature is refused with 3500 and the SDK does not reconnect', async (t) => {
  const forged = await mintToken('not-the-secret', { sub: '42' });
  const c = makeClient(t, s, { token: forged });
  const disconnected = waitFor(c, 'disconnected');
  const connecting = collect(c, 'connecting');
  c.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3500);
  assert.equal(c.state, 'disconnected');
  assert.equal(connecting.items.length, 1, 'only the initial connecting, no reconnect');
});

test('an alg:none token is refused with 3500', async (t) => {
  const c = makeClient(t, s, { token: unsignedToken({ sub: '42' }) });
  const disconnected = waitFor(c, 'disconnected');
  c.connect();
  assert.equal((await disconnected).code, 3500);

  // The same seen on the wire.
  const raw = await RawClient.open(t, s);
  raw.send(JSON.stringify({ id: 1, connect: { token: unsignedToken({ sub: '42' }) } }));
  assert.equal((await raw.closedWithin()).code, 3500);
});

test('an HS256 token signed with the wrong algorithm family or garbage is refused with 3500', async (t) => {
  // HS512 with the right secret is fine (allow-list has it)...
  const hs512 = await new SignJWT({ sub: '1' }).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(s.secret));
  const ok = await RawClient.open(t, s);
  const res = await ok.connect(hs512);
  assert.equal(typeof res.client, 'string');
  // ...an RS256 header with no RSA key configured, and a non-JWT, are not.
  for (const token of [
    `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"sub":"1"}').toString('base64url')}.AAAA`,
    'not-a-jwt',
  ]) {
    const raw = await RawClient.open(t, s);
    raw.send(JSON.stringify({ id: 1, connect: { token } }));
    assert.equal((await raw.closedWithin()).code, 3500, token);
  }
});

test('no token and anonymous not allowed: 101 unauthorized, the SDK stops', async (t) => {
  const c = makeClient(t, s, {});
  const disconnected = waitFor(c, 'disconnected');
  c.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 101);
});

test('several commands in one frame (newline-delimited) are answered in order', async (t) => {
  const raw = await RawClient.open(t, s);
  const token = await mintToken(s.secret, { sub: 'batch' });
  raw.send(
    [
      JSON.stringify({ id: 1, connect: { token } }),
      JSON.stringify({ id: 2, subscribe: { channel: 'multi-a' } }),
      JSON.stringify({ id: 3, subscribe: { channel: 'multi-b' } }),
      JSON.stringify({ id: 4, subscribe: { channel: 'multi-a' } }),
    ].join('\n'),
  );
  const r4 = await raw.reply(4);
  assert.equal(r4.error.code, 105, 'already subscribed');
  const replies = raw.messages.filter((m) => typeof m.id === 'number');
  assert.deepEqual(
    replies.map((m) => m.id),
    [1, 2, 3, 4],
  );
  assert.equal(typeof replies[0].connect.client, 'string');
  assert.deepEqual(replies[1].subscribe, {});
  assert.deepEqual(replies[2].subscribe, {});
});

test('expire_at sets the connection expiry apart from exp; expire_at 0 means never', async (t) => {
  const raw = await RawClient.open(t, s);
  const res = await raw.connect(await mintToken(s.secret, { sub: 'ea', exp: nowSec() + 3600, expire_at: nowSec() + 1 }));
  assert.equal(res.expires, true);
  assert.equal(res.ttl, 1);
  assert.equal((await raw.closedWithin(4000)).code, 3005);

  const forever = await RawClient.open(t, s);
  const r2 = await forever.connect(await mintToken(s.secret, { sub: 'ea', exp: nowSec() + 3600, expire_at: 0 }));
  assert.equal(r2.expires, undefined);
  assert.equal(r2.ttl, undefined);
});

test('metrics: commands by method and result, and bytes received, as /metrics shows them (counted in plain numbers, added when read)', async (t) => {
  const before = {
    ok: await s.metric('switchboard_commands_total', { method: 'connect', result: 'ok' }),
    sub: await s.metric('switchboard_commands_total', { method: 'subscribe', result: 'ok' }),
    denied: await s.metric('switchboard_commands_total', { method: 'subscribe', result: '103' }),
    bytes: await s.metric('switchboard_transport_bytes_in_total'),
  };
  const c = await RawClient.open(t, s);
  const token = await mintToken(s.secret, { sub: 'metrics-user' });
  await c.connect(token);
  await c.command('subscribe', { channel: 'm1' });
  await c.command('subscribe', { channel: 'm2' });
  // a namespace that does not exist: 102, not counted as ok
  await c.command('subscribe', { channel: 'nope:x' });
  // the frames as RawClient sent them (ids 1–4)
  const sent = [
    { id: 1, connect: { token } },
    { id: 2, subscribe: { channel: 'm1' } },
    { id: 3, subscribe: { channel: 'm2' } },
    { id: 4, subscribe: { channel: 'nope:x' } },
  ].reduce((n, f) => n + JSON.stringify(f).length, 0);
  assert.equal(await s.metric('switchboard_commands_total', { method: 'connect', result: 'ok' }), before.ok + 1);
  assert.equal(await s.metric('switchboard_commands_total', { method: 'subscribe', result: 'ok' }), before.sub + 2);
  assert.equal((await s.metric('switchboard_commands_total', { method: 'subscribe', result: '102' })) >= 1, true);
  assert.equal(await s.metric('switchboard_commands_total', { method: 'subscribe', result: '103' }), before.denied);
  // every frame's bytes (other clients of this file may have ponged meanwhile: at least)
  assert.ok((await s.metric('switchboard_transport_bytes_in_total')) - before.bytes >= sent, 'bytes in counted');
  // read twice: nothing is added again
  const once = await s.metric('switchboard_commands_total', { method: 'subscribe', result: 'ok' });
  assert.equal(await s.metric('switchboard_commands_total', { method: 'subscribe', result: 'ok' }), once);
});

test('client.stale_close_delay: a connection that sends no connect is closed with 3502 in its turn; one that connects in time stays', async (t) => {
  const own = await startServer(t, { client: { stale_close_delay: '400ms' } });
  const opened = Date.now();
  const a = await RawClient.open(t, own);
  await new Promise((r) => setTimeout(r, 200));
  const b = await RawClient.open(t, own);
  const late = await RawClient.open(t, own);
  await new Promise((r) => setTimeout(r, 150));
  // connects 350 ms after its upgrade, inside the delay: its deadline is dropped
  await late.connect(await mintToken(own.secret, { sub: 'late' }));
  const closedA = await a.closedWithin(3000);
  const atA = Date.now() - opened;
  assert.deepEqual(closedA, { code: 3502, reason: 'stale' });
  assert.ok(atA >= 380, `A closed after its delay, not before (${atA} ms)`);
  const closedB = await b.closedWithin(3000);
  const atB = Date.now() - opened;
  assert.equal(closedB.code, 3502);
  assert.ok(atB >= 580, `B closed after its own delay (${atB} ms)`);
  await new Promise((r) => setTimeout(r, 400));
  const r = await late.command('presence_stats', { channel: 'x' });
  assert.ok(r.id > 0 && late.closeCode === undefined, 'the connection that connected in time is open');
});
