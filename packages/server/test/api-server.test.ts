/**
 * The HTTP server API with the real `cent.js` client (and plain fetch for
 * what cent.js does not expose): actions that reach connected clients,
 * info/channels, auth and body errors, the newline-delimited pipeline.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CentClient, CentException } from 'cent.js';
import { scope } from './helpers/scope.js';
import { connectedClient, makeClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;
let cent: CentClient;

before(async () => {
  s = await startServer(S, {
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [{ name: 'feed', history_size: 50, history_ttl: '60s', force_recovery: true, allow_subscribe_for_client: true }],
    },
  });
  cent = new CentClient({ url: s.api, apiKey: s.apiKey });
});

test('API disconnect reaches the user\u2019s connections: 3503 by default, a custom code when given', async (t) => {
  const a = await connectedClient(t, s, 'dis-1');
  const a2 = await connectedClient(t, s, 'dis-1');
  const other = await connectedClient(t, s, 'dis-2');
  const da = waitFor(a, 'disconnected');
  const da2 = waitFor(a2, 'disconnected');
  assert.deepEqual(await cent.disconnect({ user: 'dis-1' }), {});
  assert.equal((await da).code, 3503);
  assert.equal((await da2).code, 3503);
  assert.equal(other.state, 'connected');

  // A reconnect code: the SDK goes to connecting with it and comes back.
  const reconnecting = waitFor(other, 'connecting');
  const back = waitFor(other, 'connected', { ms: 5000 });
  const r = await s.call('disconnect', { user: 'dis-2', disconnect: { code: 4000, reason: 'go away for a bit' } });
  assert.deepEqual(r, { result: {} });
  const ctx = await reconnecting;
  assert.equal(ctx.code, 4000);
  assert.equal(ctx.reason, 'go away for a bit');
  await back;
});

test('API disconnect of one client by id leaves the user\u2019s other connection', async (t) => {
  const a = await connectedClient(t, s, 'dis-3');
  const b = await connectedClient(t, s, 'dis-3');
  const clientId = (a as unknown as { _client: string })._client;
  assert.equal(typeof clientId, 'string');
  const da = waitFor(a, 'disconnected');
  await cent.disconnect({ user: 'dis-3', client: clientId });
  assert.equal((await da).code, 3503);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(b.state, 'connected');
});

test('API unsubscribe reaches a client-side subscription (2000) and a server-side one', async (t) => {
  const token = await mintToken(s.secret, { sub: 'uns-1', channels: ['server-made'] });
  const c = makeClient(t, s, { token });
  const serverSubs = collect(c, 'subscribed');
  const serverUnsubs = collect(c, 'unsubscribed');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  await serverSubs.until(1);
  const sub = c.newSubscription('client-made');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;

  const unsub = waitFor(sub, 'unsubscribed');
  assert.deepEqual(await cent.unsubscribe({ user: 'uns-1', channel: 'client-made' }), {});
  const ctx = await unsub;
  assert.equal(ctx.code, 2000);
  assert.equal(sub.state, 'unsubscribed');

  await cent.unsubscribe({ user: 'uns-1', channel: 'server-made' });
  const [u] = await serverUnsubs.until(1);
  assert.equal(u.channel, 'server-made');
  // Nothing is delivered on either channel afterwards.
  const pubs = collect(c, 'publication');
  const subPubs = collect(sub, 'publication');
  await cent.publish({ channel: 'server-made', data: { late: 1 } });
  await cent.publish({ channel: 'client-made', data: { late: 2 } });
  const chans = await cent.getChannels({ pattern: '*-made' });
  assert.deepEqual(chans.channels, {});
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(pubs.items.length + subPubs.items.length, 0);
});

test('API subscribe puts a connected user on a channel: subscribe push, then publications', async (t) => {
  const c = await connectedClient(t, s, 'sub-1');
  const subscribed = waitFor(c, 'subscribed');
  const pubs = collect(c, 'publication');
  assert.deepEqual(await cent.subscribe({ user: 'sub-1', channel: 'feed:pushed' }), {});
  const ctx = await subscribed;
  assert.equal(ctx.channel, 'feed:pushed');
  assert.equal(ctx.recoverable, true);
  await cent.publish({ channel: 'feed:pushed', data: { n: 1 } });
  await cent.publish({ channel: 'feed:pushed', data: { n: 2 } });
  await pubs.until(2);
  assert.deepEqual(
    pubs.items.map((p) => [p.channel, p.data.n, p.offset]),
    [
      ['feed:pushed', 1, 1],
      ['feed:pushed', 2, 2],
    ],
  );
});

test('info and channels', async (t) => {
  const a = await connectedClient(t, s, 'info-1');
  const b = await connectedClient(t, s, 'info-2');
  for (const [c, ch] of [
    [a, 'statsone'],
    [b, 'statsone'],
    [b, 'statstwo'],
  ] as const) {
    const sub = c.newSubscription(ch);
    const ok = waitFor(sub, 'subscribed');
    sub.subscribe();
    await ok;
  }
  const info = await cent.getInfo();
  assert.equal(info.nodes.length, 1);
  const n = info.nodes[0]!;
  assert.equal(typeof n.uid, 'string');
  assert.equal(typeof n.name, 'string');
  assert.equal(typeof n.version, 'string');
  assert.ok(n.num_clients >= 2, `num_clients ${n.num_clients}`);
  assert.ok(n.num_users >= 2);
  assert.ok(n.num_channels >= 2);
  assert.ok((n as unknown as { num_subs: number }).num_subs >= 3);

  const all = await cent.getChannels({ pattern: 'stats*' });
  assert.deepEqual(all.channels, { statsone: { num_clients: 2 }, statstwo: { num_clients: 1 } });
  const one = await cent.getChannels({ pattern: 'statso*' });
  assert.deepEqual(Object.keys(one.channels), ['statsone']);
});

test('publish with idempotency_key, tags and skip_history; broadcast', async (t) => {
  const c = await connectedClient(t, s, 'pub-1');
  const sub = c.newSubscription('feed:opts');
  const pubs = collect(sub, 'publication');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const r1 = await s.call('publish', { channel: 'feed:opts', data: { a: 1 }, idempotency_key: 'k1', tags: { kind: 'x' } });
  const r2 = await s.call('publish', { channel: 'feed:opts', data: { a: 1 }, idempotency_key: 'k1' });
  assert.deepEqual(r2, r1, 'the same result for the same idempotency key');
  const r3 = await s.call('publish', { channel: 'feed:opts', data: { a: 2 }, skip_history: true });
  assert.deepEqual(r3, { result: {} });
  await pubs.until(2);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(pubs.items.length, 2, 'the duplicate is not delivered');
  assert.deepEqual(pubs.items[0].tags, { kind: 'x' });
  const h = await cent.getHistory({ channel: 'feed:opts', limit: 10 });
  assert.deepEqual(
    h.publications.map((p) => p.data),
    [{ a: 1 }],
    'skip_history kept it out',
  );

  const b = await cent.broadcast({ channels: ['feed:b1', 'feed:b2', 'nope:x'], data: { all: true } });
  const responses = (b as unknown as { responses: Array<{ result?: { offset: number }; error?: { code: number } }> }).responses;
  assert.equal(responses.length, 3);
  assert.equal(responses[0]!.result!.offset, 1);
  assert.equal(responses[1]!.result!.offset, 1);
  assert.equal(responses[2]!.error!.code, 102);
});

test('a wrong or missing API key is 401 with a JSON body; Authorization: apikey works', async () => {
  for (const headers of [{ 'x-api-key': 'wrong' }, {}, { authorization: 'apikey wrong' }] as Array<Record<string, string>>) {
    const r = await fetch(`${s.api}/info`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const body = (await r.json()) as { error: { code: number; message: string } };
    assert.equal(body.error.code, 101);
    assert.equal(typeof body.error.message, 'string');
  }
  const ok = await fetch(`${s.api}/info`, { method: 'POST', headers: { authorization: `apikey ${s.apiKey}` }, body: '{}' });
  assert.equal(ok.status, 200);
  const bad = new CentClient({ url: s.api, apiKey: 'wrong' });
  await assert.rejects(bad.getInfo(), CentException);
});

test('a body that is not JSON, or not an object, is 400 with a JSON error', async () => {
  for (const body of ['{not json', '[1,2]', '"str"', '{"channel":']) {
    const r = await fetch(`${s.api}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': s.apiKey },
      body,
    });
    assert.equal(r.status, 400, body);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const j = (await r.json()) as { error: { code: number; message: string } };
    assert.equal(j.error.code, 107, body);
  }
  // A well-formed body with bad params: 200 with the protocol error in `error`.
  const p = await s.call('publish', { channel: 'x' });
  assert.equal((p.error as { code: number }).code, 107);
  const u = await fetch(`${s.api}/no_such_method`, { method: 'POST', headers: { 'x-api-key': s.apiKey }, body: '{}' });
  assert.equal(u.status, 404);
  assert.equal(((await u.json()) as { error: { code: number } }).error.code, 104);
  // The server is fine afterwards.
  assert.ok((await cent.getInfo()).nodes.length === 1);
});

test('cent.js pipeline: newline-delimited commands on POST /api, results in order', async () => {
  const results = await cent.pipeline([
    { method: 'publish', params: { channel: 'feed:pipe', data: { n: 1 } } },
    { method: 'publish', params: { channel: 'feed:pipe', data: { n: 2 } } },
    { method: 'history', params: { channel: 'feed:pipe', limit: 10 } },
    { method: 'info', params: {} },
  ] as never);
  assert.equal(results.length, 4);
  const [p1, p2, h, info] = results as unknown as [
    { offset: number },
    { offset: number },
    { publications: Array<{ data: { n: number } }> },
    { nodes: unknown[] },
  ];
  assert.equal(p1.offset, 1);
  assert.equal(p2.offset, 2);
  assert.deepEqual(
    h.publications.map((p) => p.data.n),
    [1, 2],
  );
  assert.equal(info.nodes.length, 1);
});

test('batch runs several commands in one request', async () => {
  const r = await s.call('batch', {
    commands: [
      { publish: { channel: 'feed:batch', data: { n: 1 } } },
      { history: { channel: 'feed:batch', limit: 5 } },
      { publish: { channel: 'nope:x', data: {} } },
    ],
  });
  // Centrifugo's batch answer has `replies` at the top level.
  const replies = (r as unknown as { replies: Array<Record<string, any>> }).replies;
  assert.equal(replies.length, 3);
  assert.equal(replies[0]!.publish.offset, 1);
  assert.equal(replies[1]!.history.publications.length, 1);
  assert.equal(replies[2]!.error.code, 102);
});

test('API refresh with expired: true closes the user\u2019s connections with 3005 (the SDK reconnects)', async (t) => {
  const c = await connectedClient(t, s, 'ref-1');
  const other = await connectedClient(t, s, 'ref-2');
  const reconnecting = waitFor(c, 'connecting');
  assert.deepEqual(await s.call('refresh', { user: 'ref-1', expired: true }), { result: {} });
  const ctx = await reconnecting;
  assert.equal(ctx.code, 3005);
  assert.equal(other.state, 'connected');
});

test('a pipeline with a bad line is 400 and runs none of its commands', async () => {
  const body = [JSON.stringify({ method: 'publish', params: { channel: 'feed:atomic', data: { n: 1 } } }), 'not json'].join('\n');
  const r = await fetch(s.api, { method: 'POST', headers: { 'x-api-key': s.apiKey, 'content-type': 'application/json' }, body });
  assert.equal(r.status, 400);
  assert.equal(((await r.json()) as { error: { code: number } }).error.code, 107);
  const h = await cent.getHistory({ channel: 'feed:atomic', limit: 10 });
  assert.equal(h.publications.length, 0, 'the good first line was not run');
  assert.equal(h.offset, 0);
});
