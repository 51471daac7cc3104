/**
 * The embedded example (examples/fastify-app) started as a user would
 * (`node examples/fastify-app/server.mjs`), driven by the real `centrifuge`
 * client: header auth through onConnecting, server-side rooms, typed events
 * published by the app's routes, in-process RPC.
 */
import { once as onceEmitter, type EventEmitter } from 'node:events';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { freePort } from './helpers/net.js';
import { cleanEnv, launch } from './helpers/server.js';
import { until } from './helpers/wait.js';

/** centrifuge's emitter typings are not node's; the objects are EventEmitters. */
const once = (e: unknown, ev: string): Promise<unknown[]> => onceEmitter(e as EventEmitter, ev);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

function wsWithSession(session: string): typeof WebSocket {
  // Browsers send the app's cookie with the upgrade; in Node we set a header.
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { 'x-session': session } });
    }
  } as unknown as typeof WebSocket;
}

test('example app: header auth, server-side rooms, typed events, rpc', async (t) => {
  const port = await freePort();
  const app = await launch(t, [resolve(ROOT, 'examples/fastify-app/server.mjs')], {
    env: { ...cleanEnv(), PORT: String(port) },
    what: '"example app on" on stdout',
    ready: async (p) => p.stdout().includes('example app on'),
  });
  const base = `http://127.0.0.1:${port}`;
  const url = `ws://127.0.0.1:${port}/connection/websocket`;

  // Without the app's session the connection is refused (101 → client disconnected, no reconnect).
  const anon = new Centrifuge(url, { websocket: WebSocket as never });
  const refused = once(anon, 'disconnected');
  anon.connect();
  const [ctx] = (await refused) as [{ code: number }];
  assert.equal(ctx.code, 101);

  const alice = new Centrifuge(url, { websocket: wsWithSession('alice-session') as never });
  t.after(() => alice.disconnect());
  const received = new Map<string, unknown[]>();
  alice.on('publication', (p) => {
    if (!received.has(p.channel)) received.set(p.channel, []);
    received.get(p.channel)!.push(p.data);
  });
  const subscribed = new Set<string>();
  alice.on('subscribed', (s) => subscribed.add(s.channel));
  alice.connect();
  await alice.ready(5000);
  while (!(subscribed.has('global') && subscribed.has('user:#alice') && subscribed.has('project:p1'))) await once(alice, 'subscribed');

  const agent = alice.newSubscription('agent:a7');
  const agentPubs: unknown[] = [];
  agent.on('publication', (p) => agentPubs.push(p.data));
  agent.subscribe();
  await agent.ready(5000);

  const post = (path: string, body: unknown) =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) =>
      r.json(),
    );
  await post('/quotes/ACME', { price: 123.5 });
  await post('/projects/p1', { name: 'Apollo', by: 'bob' });
  await post('/projects/p2', { name: 'Hidden', by: 'bob' }); // alice is not in p2
  await post('/users/alice/notify', { title: 'hello' });
  await post('/agents/a7/status', { status: 'done', progress: 1 });

  const want = (ch: string, n: number) => (received.get(ch)?.length ?? 0) >= n;
  // (the agent's publication comes on its subscription, the others as client-level events: four sources, so poll)
  await until(
    'the four publications',
    5000,
    () => want('global', 1) && want('project:p1', 1) && want('user:#alice', 1) && agentPubs.length >= 1,
    10,
  );
  assert.deepEqual((received.get('global')![0] as { type: string; price: number }).price, 123.5);
  assert.equal((received.get('project:p1')![0] as { name: string }).name, 'Apollo');
  assert.equal(received.has('project:p2'), false);
  assert.equal((received.get('user:#alice')![0] as { type: string }).type, 'notification.created');
  assert.deepEqual(agentPubs[0], { type: 'agent.status', agentId: 'a7', status: 'done', progress: 1 });

  // Alice may not subscribe to bob's personal room.
  const bobRoom = alice.newSubscription('user:#bob');
  const denied = once(bobRoom, 'unsubscribed');
  bobRoom.subscribe();
  const [u] = (await denied) as [{ code: number }];
  assert.equal(u.code, 103);

  const rpc = await alice.rpc('quote.get', { symbol: 'ACME' });
  assert.deepEqual(rpc.data, { symbol: 'ACME', price: 123.5, currency: 'EUR' });
  await assert.rejects(alice.rpc('nope', {}), (e: { code: number }) => e.code === 104);
  await post('/analytics/latency', { value: 42 });
  assert.deepEqual((await alice.rpc('analytics.query', { metric: 'latency' })).data, { metric: 'latency', points: [42] });
  const list = (await alice.rpc('notification.list', {})).data as { items: Array<{ title: string }> };
  assert.deepEqual(
    list.items.map((n) => n.title),
    ['hello'],
  );
  // Only admins may kick; bob is one, alice is not.
  await assert.rejects(alice.rpc('admin.kick', { user: 'bob' }), (e: { code: number }) => e.code === 103);
  const bob = new Centrifuge(url, { websocket: wsWithSession('bob-session') as never });
  t.after(() => bob.disconnect());
  bob.connect();
  await bob.ready(5000);
  const kicked = once(alice, 'disconnected');
  assert.deepEqual((await bob.rpc('admin.kick', { user: 'alice' })).data, { kicked: 'alice' });
  const [k] = (await kicked) as [{ code: number }];
  assert.equal(k.code, 3503);

  app.kill('SIGTERM');
  assert.deepEqual(await app.exited, { code: 0, signal: null });
});
