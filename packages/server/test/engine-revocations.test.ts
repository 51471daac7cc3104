/**
 * Revocations through the whole node: the server API on one node, a
 * connect on a node started afterwards (they share Redis), and live
 * connections closed on every node.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { execute } from '../src/api/executor.js';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { createLogger } from '../src/observability/logger.js';
import { startServer, type StandaloneServer } from '../src/server.js';
import { RawClient } from './helpers/raw.js';
import { nodeConfig, SECRET, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { type TestContextLike } from './helpers/scope.js';
import { mintToken, nowSec } from './helpers/tokens.js';

async function node(t: TestContextLike, prefix: string): Promise<StandaloneServer & { ws: string }> {
  const config = loadConfig({ object: nodeConfig(SHARED_REDIS, prefix, { http_server: { port: 0, address: '127.0.0.1' } }) }).config;
  const server = await startServer({ resolvedConfig: config, logger: createLogger('error'), engine: new RedisEngine(config) });
  t.after(() => server.close());
  return Object.assign(server, { ws: `ws://127.0.0.1:${server.port}/connection/websocket` });
}

/** Sends connect; resolves with the client once it got a reply or was closed. */
async function connect(t: TestContextLike, ws: string, claims: Record<string, unknown>): Promise<RawClient> {
  const c = await RawClient.open(t, { ws });
  await Promise.race([c.command('connect', { token: await mintToken(SECRET, claims) }), c.closed]);
  return c;
}

test('a revocation made on one node holds on a node started later, and closes live connections on every node', async (t) => {
  const prefix = uniquePrefix('revoke-nodes');
  const a = await node(t, prefix);
  const iat = nowSec() - 10;
  const live = await connect(t, a.ws, { sub: 'ann', jti: 'tok-live', iat });
  assert.equal(live.closeCode, undefined);

  const expireAt = nowSec() + 600;
  assert.deepEqual(await execute(a.switchboard, 'revoke_token', { uid: 'tok-live', expire_at: expireAt }), { result: {} });
  assert.equal((await live.closedWithin(3000)).code, 3500, 'the live connection is closed');
  assert.deepEqual(
    await execute(a.switchboard, 'invalidate_user_tokens', { user: 'bob', issued_before: nowSec() - 5, expire_at: expireAt }),
    {
      result: {},
    },
  );

  const b = await node(t, prefix); // knows nothing of the calls above but what Redis keeps
  const revoked = await connect(t, b.ws, { sub: 'ann', jti: 'tok-live', iat });
  assert.equal((await revoked.closedWithin(3000)).code, 3500, 'a revoked token cannot connect on the new node');
  const oldBob = await connect(t, b.ws, { sub: 'bob', jti: 'bob-1', iat });
  assert.equal((await oldBob.closedWithin(3000)).code, 3500, 'issued before the invalidation');
  const newBob = await connect(t, b.ws, { sub: 'bob', jti: 'bob-2', iat: nowSec() });
  const other = await connect(t, b.ws, { sub: 'ann', jti: 'tok-other', iat });
  for (const c of [newBob, other]) {
    assert.ok(
      c.messages.some((m) => m.connect),
      `connected: ${JSON.stringify(c.messages)}`,
    );
    assert.equal(c.closeCode, undefined);
  }
});
