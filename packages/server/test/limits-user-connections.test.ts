/**
 * client.user_connection_limit counts a user's connections through the
 * engine, so it holds on one node and across two nodes sharing Redis.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { makeClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

test('user_connection_limit: the third connection of a user gets 106, others are unaffected, a freed slot is reusable', async (t) => {
  const server = await startServer(t, { client: { user_connection_limit: 2 } });
  const token = await mintToken(server.secret, { sub: 'u1' });
  const a = makeClient(t, server, { token });
  const b = makeClient(t, server, { token });
  a.connect();
  b.connect();
  await Promise.all([a.ready(5000), b.ready(5000)]);
  const c = makeClient(t, server, { token });
  const refused = waitFor<{ code: number }>(c, 'disconnected');
  c.connect();
  assert.equal((await refused).code, 106);
  const other = makeClient(t, server, { token: await mintToken(server.secret, { sub: 'u2' }) });
  other.connect();
  await other.ready(5000);
  a.disconnect();
  // The slot frees when the server has seen the close; a new client retries until then.
  await until('the freed slot', 5000, async () => {
    const d = makeClient(t, server, { token });
    const outcome = Promise.race([waitFor(d, 'connected').then(() => true), waitFor(d, 'disconnected').then(() => false)]);
    d.connect();
    if (await outcome) return true;
    d.disconnect();
    return false;
  });
  assert.ok((await server.metric('switchboard_limit_hits_total', { limit: 'user_connection_limit' })) >= 1);
});

test('user_connection_limit holds across two nodes sharing Redis', async (t) => {
  const redis = { type: 'redis', redis: { address: SHARED_REDIS, prefix: uniquePrefix('ucl') } };
  const n1 = await startServer(t, { engine: redis, client: { user_connection_limit: 2 } });
  const n2 = await startServer(
    t,
    {
      engine: redis,
      client: { user_connection_limit: 2, token: { hmac_secret_key: n1.secret } },
    },
    { secret: n1.secret },
  );
  const token = await mintToken(n1.secret, { sub: 'multi' });
  const a = makeClient(t, n1, { token });
  const b = makeClient(t, n2, { token });
  a.connect();
  await a.ready(5000);
  b.connect();
  await b.ready(5000);
  for (const node of [n1, n2]) {
    const c = makeClient(t, node, { token });
    const refused = waitFor<{ code: number }>(c, 'disconnected');
    c.connect();
    assert.equal((await refused).code, 106, 'a third connection on either node is refused');
  }
});
