/**
 * examples/config/switchboard.example.json: the app's rooms (global,
 * user:<id>, inbox:#<id>, project:<id>, agent:<id>) as namespaces plus
 * server-side subscriptions. Started as it is (secrets and port from the
 * environment) and checked with the real `centrifuge` client.
 */
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { upgradeStatus } from './helpers/net.js';
import { scope } from './helpers/scope.js';
import { connectedClient, makeClient } from './helpers/sdk.js';
import { runCli, type RunningServer, startServer } from './helpers/server.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../examples/config/switchboard.example.json');
const SECRET = 'example-test-secret-0123456789';
const API_KEY = 'example-test-api-key';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(
    S,
    {},
    {
      configFile: EXAMPLE,
      secret: SECRET,
      apiKey: API_KEY,
      env: { SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY: SECRET, SWITCHBOARD_HTTP_API_KEY: API_KEY },
    },
  );
});

test('check-config accepts the example without warnings', async () => {
  const r = await runCli(['check-config', '--config', EXAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /is valid/);
  assert.equal(r.stderr, '');
  assert.doesNotMatch(s.stdout(), /unknown config key/);
});

test('a user lands in global, user:<id>, inbox:#<id> and the projects/agents of its token', async (t) => {
  const token = await mintToken(SECRET, { sub: '42', channels: ['project:7', 'agent:a1'], exp: nowSec() + 600 });
  const c = makeClient(t, s, { token });
  const subscribed = collect(c, 'subscribed');
  const pubs = collect(c, 'publication');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  const rooms = ['agent:a1', 'global', 'inbox:#42', 'project:7', 'user:42'];
  await subscribed.until(rooms.length);
  assert.deepEqual(subscribed.items.map((x) => x.channel).sort(), rooms);
  assert.ok(
    subscribed.items.every((x) => x.recoverable === true),
    'every room keeps history for recovery',
  );

  for (const [i, channel] of rooms.entries()) {
    const r = await s.call('publish', { channel, data: { event: 'e', i } });
    assert.equal((r.result as { offset: number }).offset, 1, channel);
  }
  await pubs.until(rooms.length);
  assert.deepEqual(
    pubs.items.map((p) => p.channel),
    rooms,
  );

  // Project rooms have presence.
  const p = await s.call('presence_stats', { channel: 'project:7' });
  assert.deepEqual(p.result, { num_clients: 1, num_users: 1 });
});

test('nobody subscribes themselves to another user\u2019s room or a project they are not in', async (t) => {
  const c = await connectedClient(t, { ws: s.ws, secret: SECRET }, '42');
  for (const channel of ['user:43', 'inbox:#43', 'project:8', 'agent:zz']) {
    const sub = c.newSubscription(channel);
    const unsub = waitFor(sub, 'unsubscribed');
    sub.subscribe();
    assert.equal((await unsub).code, 103, channel);
    c.removeSubscription(sub);
  }
  const bare = c.newSubscription('random');
  const unsub = waitFor(bare, 'unsubscribed');
  bare.subscribe();
  assert.equal((await unsub).code, 107, 'only "global" is a valid bare channel');
});

test('an agent room through a subscription token from getToken', async (t) => {
  const c = await connectedClient(t, { ws: s.ws, secret: SECRET }, '42');
  const sub = c.newSubscription('agent:helper', {
    getToken: async (ctx) => mintToken(SECRET, { sub: '42', channel: ctx.channel, exp: nowSec() + 600 }),
  });
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const got = waitFor(sub, 'publication');
  await s.call('publish', { channel: 'agent:helper', data: { step: 'thinking' } });
  assert.deepEqual((await got).data, { step: 'thinking' });
  const h = await sub.history({ limit: 10 });
  assert.equal(h.publications.length, 1);
});

test('the origin allow-list of the example is enforced', async () => {
  assert.equal(await upgradeStatus(s.ws, { Origin: 'http://localhost:3000' }), 101);
  assert.equal(await upgradeStatus(s.ws, { Origin: 'http://evil.example' }), 403);
});
