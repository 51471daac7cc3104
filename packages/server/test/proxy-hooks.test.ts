/**
 * Backend hooks over HTTP (Centrifugo v6 proxy shapes) against a real local
 * backend: connect, refresh, subscribe, publish, sub_refresh and rpc;
 * per-namespace selection, header allow-list, custom errors and
 * disconnects, timeouts, bounded concurrency, and the circuit breaker.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { type Backend, type RecordedRequest, startBackend } from './helpers/backend.js';
import { RawClient } from './helpers/raw.js';
import { scope, type TestContextLike } from './helpers/scope.js';
import { makeClient, subscribe } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { collect, until, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());

let backend: Backend;
let s: RunningServer;
/** Requests held open by the backend (for the concurrency test), released by the test. */
const held: ServerResponse[] = [];

function answer(req: RecordedRequest, res: ServerResponse): unknown {
  const b = req.body as Record<string, any>;
  switch (req.path) {
    case '/connect': {
      const d = b.data ?? {};
      if (d.ban) return { disconnect: { code: 4501, reason: 'banned' } };
      if (d.deny) return { error: { code: 4000, message: 'who are you' } };
      if (d.nouser) return { result: {} };
      return {
        result: {
          user: d.user ?? 'proxied-user',
          info: { via: 'proxy' },
          data: { welcome: true },
          channels: d.channels,
          expire_at: d.ttl ? nowSec() + d.ttl : undefined,
        },
      };
    }
    case '/refresh':
      return { result: { expire_at: nowSec() + 60, info: { refreshed: true } } };
    case '/subscribe':
      if (String(b.channel).endsWith(':forbidden')) return { error: { code: 103, message: 'permission denied' } };
      return {
        result: {
          info: { tenant: req.headers['x-tenant'] ?? null },
          data: { joined: b.channel },
          expire_at: String(b.channel).includes(':short') ? nowSec() + 1 : undefined,
        },
      };
    case '/sub_refresh':
      if (String(b.channel).endsWith('-end')) return { result: { expired: true } };
      return { result: { expire_at: nowSec() + 60 } };
    case '/publish':
      if (b.data?.bad) return { error: { code: 1003, message: 'rejected by backend' } };
      return { result: { data: { ...b.data, checked: true } } };
    case '/rpc':
      switch (b.method) {
        case 'slow':
          return undefined; // never answered: the server's timeout must fire
        case 'hold':
          held.push(res);
          return undefined;
        case 'fail':
          return { error: { code: 1001, message: 'nope' } };
        case 'kick':
          return { disconnect: { code: 4502, reason: 'kicked by rpc' } };
        default:
          return { result: { data: { method: b.method, echo: b.data ?? null, user: b.user } } };
      }
  }
  res.writeHead(404).end();
  return undefined;
}

before(async () => {
  backend = await startBackend(S, answer);
  const ep = (path: string, extra: Record<string, unknown> = {}) => ({
    enabled: true,
    endpoint: backend.url + path,
    timeout: '2s', // generous: CI runs two test files at once on two cores
    ...extra,
  });
  s = await startServer(S, {
    client: {
      proxy: { connect: ep('/connect', { http_headers: ['X-Tenant', 'Cookie'] }), refresh: ep('/refresh') },
      expired_close_delay: '200ms',
    },
    channel: {
      proxy: { subscribe: ep('/subscribe', { http_headers: ['x-tenant'] }), publish: ep('/publish'), sub_refresh: ep('/sub_refresh') },
      namespaces: [
        { name: 'px', subscribe_proxy_enabled: true, publish_proxy_enabled: true, sub_refresh_proxy_enabled: true },
        { name: 'local', allow_subscribe_for_client: true, allow_publish_for_client: true },
      ],
    },
    rpc: {
      proxy: ep('/rpc', { max_concurrency: 2 }),
      without_namespace: { proxy_enabled: true },
      namespaces: [
        { name: 'px', proxy_enabled: true },
        { name: 'off', proxy_enabled: false },
      ],
    },
  });
});

const requests = (path: string) => backend.requests.filter((r) => r.path === path);

/** A centrifuge client authenticated by the connect proxy (no token), with `data` in the connect command. */
async function proxied(t: TestContextLike, data: Record<string, unknown> = {}): Promise<Centrifuge> {
  const c = makeClient(t, s, { data });
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  return c;
}

test('connect proxy: the backend names the user; reply data and info come from it; allow-listed headers only are forwarded', async (t) => {
  const raw = await RawClient.open(t, s, { headers: { 'X-Tenant': 'acme', Cookie: 'sid=abc', Authorization: 'Bearer do-not-forward' } });
  const n = requests('/connect').length;
  const r = await raw.command('connect', { data: { user: 'ann' } });
  assert.deepEqual(r.connect.data, { welcome: true });
  const req = requests('/connect')[n]!;
  assert.equal(req.body.client, r.connect.client);
  assert.deepEqual(req.body.data, { user: 'ann' });
  assert.equal(req.body.transport, 'websocket');
  assert.equal(req.body.protocol, 'json');
  assert.equal(req.headers['x-tenant'], 'acme');
  assert.equal(req.headers.cookie, 'sid=abc');
  assert.equal(req.headers.authorization, undefined, 'headers off the allow-list stay home');
  // The user the backend named is the connection's user (presence / API by user).
  const gone = raw.closedWithin(5000);
  await s.call('disconnect', { user: 'ann' });
  assert.equal((await gone).code, 3503);
});

test('connect proxy: custom error reaches the client as that code; disconnect as that close code; no user is 101', async (t) => {
  const deny = await RawClient.open(t, s);
  const r = await deny.command('connect', { data: { deny: true } });
  assert.deepEqual(r.error, { code: 4000, message: 'who are you' });
  const ban = await RawClient.open(t, s);
  ban.send(JSON.stringify({ id: 1, connect: { data: { ban: true } } }));
  assert.deepEqual(await ban.closedWithin(), { code: 4501, reason: 'banned' });
  const nouser = await RawClient.open(t, s);
  assert.equal((await nouser.command('connect', { data: { nouser: true } })).error.code, 101);
});

test('a client with a token skips the connect proxy', async (t) => {
  const n = requests('/connect').length;
  const raw = await RawClient.open(t, s);
  await raw.connect(await mintToken(s.secret, { sub: 'token-user' }));
  assert.equal(requests('/connect').length, n);
});

test('refresh proxy: a proxied connection near expiry is refreshed by the backend, not closed', async (t) => {
  const c = makeClient(t, s, { data: { user: 'short-lived', ttl: 1 } });
  const connected = waitFor<{ client: string }>(c, 'connected');
  const t0 = Date.now();
  c.connect();
  const { client } = await connected;
  const drops = collect(c, 'connecting');
  // The backend is asked to refresh this very connection (by its client id) when its 1 s expiry comes.
  await until('refresh proxy called for this connection', 5000, () =>
    requests('/refresh').some((r) => r.body.user === 'short-lived' && r.body.client === client),
  );
  // Unrefreshed it would be closed with 3005 at expiry + expired_close_delay (1 s + 200 ms); a close that
  // does not come can only be seen by waiting past when it would have come.
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1800 - Date.now())));
  assert.deepEqual(
    drops.items.map((d: { code: number }) => d.code),
    [],
    'never disconnected',
  );
  assert.equal(c.state, 'connected');
  const { ctx } = await subscribe(c, 'local:after-refresh');
  assert.equal(ctx.channel, 'local:after-refresh', 'and still serving');
});

test('subscribe proxy only for namespaces that enable it; info from the backend; backend errors reach the client', async (t) => {
  const c = await proxied(t, { user: 'sub-user' });
  const n = requests('/subscribe').length;
  const sub = c.newSubscription('px:room');
  const ok = waitFor<{ data: unknown }>(sub, 'subscribed');
  sub.subscribe();
  assert.deepEqual((await ok).data, { joined: 'px:room' });
  assert.equal(requests('/subscribe').length, n + 1);
  assert.equal(requests('/subscribe')[n]!.body.user, 'sub-user');
  // Namespace without the proxy flag: decided locally, the backend is not asked.
  const local = c.newSubscription('local:room');
  const ok2 = waitFor(local, 'subscribed');
  local.subscribe();
  await ok2;
  assert.equal(requests('/subscribe').length, n + 1);
  // The backend refuses.
  const bad = c.newSubscription('px:forbidden');
  // A non-temporary error: the SDK gives the subscription up with that code.
  const gaveUp = waitFor<{ code: number }>(bad, 'unsubscribed');
  bad.subscribe();
  assert.equal((await gaveUp).code, 103);
});

test('publish proxy: the backend may rewrite or refuse a publication; namespaces without it are untouched', async (t) => {
  const c = await proxied(t, { user: 'pub-user' });
  const sub = c.newSubscription('px:feed');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const got = waitFor<{ data: unknown }>(sub, 'publication');
  await c.publish('px:feed', { text: 'hi' });
  assert.deepEqual((await got).data, { text: 'hi', checked: true });
  await assert.rejects(
    c.publish('px:feed', { bad: true }),
    (e: { code: number; message: string }) => e.code === 1003 && e.message === 'rejected by backend',
  );
  const n = requests('/publish').length;
  await c.publish('local:feed', { plain: true });
  assert.equal(requests('/publish').length, n);
});

test('sub_refresh proxy: a short subscription is extended by the backend, or ended when it says expired', async (t) => {
  const c = await proxied(t, { user: 'subref-user' });
  const keep = c.newSubscription('px:short-keep');
  const end = c.newSubscription('px:short-end');
  for (const sub of [keep, end]) {
    const ok = waitFor(sub, 'subscribed');
    sub.subscribe();
    await ok;
  }
  // Expired (2501) is a resubscribe code: the SDK subscribes again, through the subscribe proxy.
  const resubscribing = await waitFor<{ code: number }>(end, 'subscribing', { ms: 8000 });
  assert.equal(resubscribing.code, 2501, 'the backend said expired');
  assert.ok(requests('/sub_refresh').some((r) => r.body.channel === 'px:short-end'));
  await until('sub_refresh for the kept channel', 5000, () => requests('/sub_refresh').some((r) => r.body.channel === 'px:short-keep'));
  assert.equal(keep.state, 'subscribed');
  const got = waitFor<{ data: unknown }>(keep, 'publication');
  await s.call('publish', { channel: 'px:short-keep', data: { still: 'here' } });
  assert.deepEqual((await got).data, { still: 'here' });
});

test('rpc proxy by namespace: proxied methods answer from the backend, others are 104; backend errors and disconnects pass through', async (t) => {
  const c = await proxied(t, { user: 'rpc-user' });
  assert.deepEqual((await c.rpc('px:getQuote', { sym: 'ACME' })).data, { method: 'px:getQuote', echo: { sym: 'ACME' }, user: 'rpc-user' });
  assert.deepEqual((await c.rpc('echo', { a: 1 })).data, { method: 'echo', echo: { a: 1 }, user: 'rpc-user' });
  const n = requests('/rpc').length;
  await assert.rejects(c.rpc('off:thing', {}), (e: { code: number }) => e.code === 104);
  assert.equal(requests('/rpc').length, n, 'a namespace without proxy_enabled never reaches the backend');
  await assert.rejects(c.rpc('fail', {}), (e: { code: number; message: string }) => e.code === 1001 && e.message === 'nope');
  const raw = await RawClient.open(t, s);
  await raw.command('connect', { data: { user: 'kicked' } });
  raw.send(JSON.stringify({ id: 9, rpc: { method: 'kick' } }));
  assert.deepEqual(await raw.closedWithin(), { code: 4502, reason: 'kicked by rpc' });
});

test('a backend that never answers: the client gets a temporary 100 after the timeout, never a hang', async (t) => {
  const raw = await RawClient.open(t, s);
  await raw.command('connect', { data: { user: 'patient' } });
  const r = await raw.command('rpc', { method: 'slow' }, 5000);
  assert.equal(r.error.code, 100);
  assert.equal(r.error.temporary, true);
  // The connection is still usable.
  assert.deepEqual((await raw.command('rpc', { method: 'echo', data: 1 })).rpc.data.echo, 1);
  for (const p of backend.pending) p.destroy();
});

test('bounded concurrency: past max_concurrency calls in flight, further calls get 111 at once', async (t) => {
  const clients = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const raw = await RawClient.open(t, s);
      await raw.command('connect', { data: { user: `conc${i}` } });
      return raw;
    }),
  );
  const first = [clients[0]!.command('rpc', { method: 'hold' }, 8000), clients[1]!.command('rpc', { method: 'hold' }, 8000)];
  await until('two calls held at the backend', 5000, () => held.length === 2);
  const third = await clients[2]!.command('rpc', { method: 'hold' });
  assert.equal(third.error.code, 111);
  for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{"data":"released"}}');
  for (const r of await Promise.all(first)) assert.equal(r.rpc.data, 'released');
  assert.ok((await s.metric('switchboard_limit_hits_total', { limit: 'proxy_rpc_concurrency' })) >= 1);
});

test('backend down: calls fail with a temporary 100, then the circuit opens and they fail fast without reaching the backend; it closes again', async (t) => {
  // A server of its own, so the breaker state does not leak into the other tests.
  const down = await startBackend(t, (req) => ({ result: { data: { up: true, method: req.body.method } } }));
  const port = down.port;
  await down.close();
  const srv = await startServer(t, {
    client: { allow_anonymous_connect_without_token: true },
    rpc: {
      proxy: { enabled: true, endpoint: `http://127.0.0.1:${port}/rpc`, timeout: '400ms' },
      without_namespace: { proxy_enabled: true },
    },
  });
  const raw = await RawClient.open(t, srv);
  await raw.command('connect', {});
  for (let i = 0; i < 8; i++) {
    const r = await raw.command('rpc', { method: 'x' });
    assert.equal(r.error.code, 100);
    assert.equal(r.error.temporary, true);
  }
  assert.ok(
    (await srv.metric('switchboard_limit_hits_total', { limit: 'proxy_rpc_circuit_open' })) >= 3,
    'later calls refused by the open circuit',
  );
  assert.match(srv.stdout(), /proxy circuit open/);
  // The backend comes back on the same port: after the cooldown a probe goes through and the circuit closes.
  const up = await startBackend(t, (req) => ({ result: { data: { up: true, method: req.body.method } } }), port);
  await until('rpc through the closed circuit', 12_000, async () => !!(await raw.command('rpc', { method: 'y' })).rpc, 250);
  assert.ok(up.requests.length >= 1);
  assert.ok(srv.alive());
});
