/**
 * A connection that closes at any moment leaves nothing behind (DESIGN.md,
 * "Guarantees"): no user-connection entry, no channel presence entry, no
 * half-connected session. Each case drives a real server process over real
 * sockets; the Redis faults are real (an ACL that forbids a command).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient, WebSocket } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { OwnRedis, SHARED_REDIS, redisCommand, uniquePrefix } from './helpers/redis.js';
import { startServer, type RunningServer } from './helpers/server.js';
import type { TestContextLike } from './helpers/scope.js';

const LIMIT = 3;

/** Opens a socket, sends connect, and resets the socket at a random moment while connect is in flight. */
function resetMidConnect(server: RunningServer, token: string): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(server.ws);
    ws.on('error', () => undefined);
    ws.on('close', () => resolve());
    ws.on('open', () => {
      ws.send(JSON.stringify({ id: 1, connect: { token } }));
      // 0–3 ms: before, during and after the token check, the limit lookup and the engine's add.
      const delay = Math.random() * 3;
      if (delay < 0.3) ws.terminate();
      else setTimeout(() => ws.terminate(), delay);
    });
  });
}

/** Tries to hold LIMIT connections of the user at once, retrying while closes are still being processed. */
async function canOpenLimit(t: TestContextLike, server: RunningServer, token: string, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let best = 0;
  for (;;) {
    const clients: RawClient[] = [];
    let ok = 0;
    for (let i = 0; i < LIMIT; i++) {
      const c = await RawClient.open(t, server);
      clients.push(c);
      const r = await c.command('connect', { token });
      if (r.connect) ok++;
    }
    for (const c of clients) c.ws.terminate();
    best = Math.max(best, ok);
    if (ok === LIMIT || Date.now() > deadline) return best;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function ghostStorm(t: TestContextLike, server: RunningServer): Promise<void> {
  const token = await mintToken(server.secret, { sub: 'storm' });
  for (let round = 0; round < 15; round++) {
    await Promise.all(Array.from({ length: 20 }, () => resetMidConnect(server, token)));
  }
  const opened = await canOpenLimit(t, server, token, 4000);
  assert.equal(opened, LIMIT, `after the resets the user could open ${opened} of ${LIMIT} connections`);
}

test('connections reset mid-connect leave no user-connection entries (memory engine)', async (t) => {
  const server = await startServer(t, { client: { user_connection_limit: LIMIT } });
  await ghostStorm(t, server);
});

test('connections reset mid-connect leave no user-connection entries (redis engine)', async (t) => {
  const server = await startServer(t, {
    engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix: uniquePrefix('ghost') } },
    client: { user_connection_limit: LIMIT },
  });
  await ghostStorm(t, server);
});

test('a subscribe whose join publish fails leaves no presence entry', async (t) => {
  const redis = await OwnRedis.start(t);
  const server = await startServer(t, {
    engine: { type: 'redis', redis: { address: redis.url, prefix: uniquePrefix('joinfail') } },
    channel: { without_namespace: { presence: true, join_leave: true, allow_subscribe_for_client: true } },
  });
  const c = await RawClient.open(t, server);
  await c.connect(await mintToken(server.secret, { sub: 'alice' }));
  // Joins go out with PUBLISH; presence is a script. Forbid only PUBLISH.
  assert.equal(await redisCommand(redis.port, 'ACL', 'SETUSER', 'default', '-publish'), '+OK');
  const r = await c.command('subscribe', { channel: 'room' });
  assert.ok(r.error, 'the subscribe fails when the join cannot be published');
  await redisCommand(redis.port, 'ACL', 'SETUSER', 'default', '+publish');
  const p = (await server.call('presence', { channel: 'room' })) as { result?: { presence?: Record<string, unknown> } };
  assert.deepEqual(Object.keys(p.result?.presence ?? {}), [], 'no presence entry for a subscription that does not exist');
});

test('a connect whose server-side subscription fails ends with a server-error disconnect', async (t) => {
  const redis = await OwnRedis.start(t);
  const server = await startServer(t, {
    engine: { type: 'redis', redis: { address: redis.url, prefix: uniquePrefix('sssfail') } },
  });
  const token = await mintToken(server.secret, { sub: 'bob', channels: ['news'] });
  assert.equal(await redisCommand(redis.port, 'ACL', 'SETUSER', 'default', '-subscribe', '-ssubscribe'), '+OK');
  const c = await RawClient.open(t, server);
  c.send(JSON.stringify({ id: 1, connect: { token } }));
  const closed = await c.closedWithin(3000);
  assert.ok(!c.messages.some((m) => m.id === 1 && m.connect), 'no connect reply for a connection that is not whole');
  assert.equal(closed.code, 3004, 'the half-connected session is ended as the reference server does (DisconnectServerError)');
  await redisCommand(redis.port, 'ACL', 'SETUSER', 'default', '+subscribe', '+ssubscribe');
  const info = (await server.call('info')) as { result?: { nodes?: Array<{ num_clients?: number }> } };
  assert.equal(info.result?.nodes?.[0]?.num_clients ?? 0, 0, 'nothing of the session is left in the hub');
});
