/**
 * The in-process API as docs/EMBEDDING.md shows it: `history` hands back
 * parsed data and takes the HTTP API's limits, `executeApiCommand` returns
 * plain JSON values, and `httpApiPlugin` mounted in an app of one's own
 * answers to a key the app can read (`sb.apiKey`), not 401 to everybody.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { createLogger } from '../src/observability/logger.js';
import { Switchboard, SwitchboardError, executeApiCommand, httpApiPlugin } from '../src/index.js';
import type { TestContextLike } from './helpers/scope.js';

const HISTORY = { channel: { namespaces: [{ name: 'chat', history_size: 10, history_ttl: '5m' }] }, log: { level: 'error' } };

async function node(t: TestContextLike, config: Record<string, unknown>, logger?: ReturnType<typeof createLogger>): Promise<Switchboard> {
  const sb = new Switchboard({ config, logger });
  await sb.start();
  t.after(() => sb.shutdown());
  return sb;
}

test('sb.history returns publication data parsed, as the HTTP API does; info too', async (t) => {
  const sb = await node(t, HISTORY);
  await sb.publish('chat:room', { text: 'hi', n: 1 });
  await sb.publish('chat:room', [1, 'two'], { info: { user: 'u1', client: 'c1', connInfo: '{"name":"Ann"}' } });
  const h = await sb.history('chat:room', { limit: 10 });
  assert.deepEqual(
    h.publications.map((p) => p.data),
    [{ text: 'hi', n: 1 }, [1, 'two']],
  );
  assert.deepEqual(h.publications[1]!.info, { user: 'u1', client: 'c1', connInfo: { name: 'Ann' } });
  assert.deepEqual(
    h.publications.map((p) => p.offset),
    [1, 2],
  );
  assert.equal(h.position.offset, 2);
});

test('sb.history: limit -1 is everything kept, 0 the position only, a bad limit is 107', async (t) => {
  const sb = await node(t, HISTORY);
  for (let i = 1; i <= 4; i++) await sb.publish('chat:room', { i });
  const all = await sb.history('chat:room', { limit: -1 });
  assert.deepEqual(
    all.publications.map((p) => p.data),
    [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }],
  );
  const none = await sb.history('chat:room', { limit: 0 });
  assert.equal(none.publications.length, 0);
  assert.equal(none.position.offset, 4);
  const reversed = await sb.history('chat:room', { limit: 2, reverse: true });
  assert.deepEqual(
    reversed.publications.map((p) => p.data),
    [{ i: 4 }, { i: 3 }],
  );
  for (const limit of [-2, 1.5, Number.NaN]) {
    await assert.rejects(
      sb.history('chat:room', { limit }),
      (e: unknown) => e instanceof SwitchboardError && e.error.code === 107 && /limit/.test(e.error.message),
      `limit ${limit}`,
    );
  }
});

test('executeApiCommand returns plain JSON values: history data is the value, not raw text', async (t) => {
  const sb = await node(t, HISTORY);
  await sb.publish('chat:room', { text: 'hi' });
  const r = await executeApiCommand(sb, 'history', { channel: 'chat:room', limit: -1 });
  assert.ok('result' in r, JSON.stringify(r));
  const result = r.result as { publications: Array<{ data: unknown; offset: number; time: number }>; offset: number; epoch: string };
  assert.equal(result.publications.length, 1);
  assert.deepEqual(result.publications[0]!.data, { text: 'hi' });
  assert.equal(result.publications[0]!.offset, 1);
  assert.equal(typeof result.publications[0]!.time, 'number');
  assert.equal(result.offset, 1);
  // The same shape an HTTP caller parses: a JSON round trip changes nothing.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  const bad = await executeApiCommand(sb, 'history', { channel: 'chat:room', limit: -2 });
  assert.ok('error' in bad);
});

async function mounted(t: TestContextLike, sb: Switchboard): Promise<string> {
  const app = Fastify();
  await app.register(httpApiPlugin(sb));
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const addr = app.server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api`;
}

test('embedded httpApiPlugin with no http_api.key: a key is generated at start and read as sb.apiKey', async (t) => {
  const sb = await node(t, { log: { level: 'error' } });
  assert.match(sb.apiKey, /^[\w-]{20,}$/);
  assert.equal(sb.config.http_api.key, sb.apiKey);
  const api = await mounted(t, sb);
  const ok = await fetch(`${api}/info`, { method: 'POST', headers: { 'x-api-key': sb.apiKey }, body: '{}' });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { result: { nodes: unknown[] } }).result.nodes.length, 1);
  const none = await fetch(`${api}/info`, { method: 'POST', body: '{}' });
  assert.equal(none.status, 401);
  const wrong = await fetch(`${api}/info`, { method: 'POST', headers: { 'x-api-key': 'guess' }, body: '{}' });
  assert.equal(wrong.status, 401);
  // Another node gets another key.
  const other = await node(t, { log: { level: 'error' } });
  assert.notEqual(other.apiKey, sb.apiKey);
});

test('embedded: a configured key is used as is; http_api.insecure needs none and generates none', async (t) => {
  const keyed = await node(t, { log: { level: 'error' }, http_api: { key: 'my-key' } });
  assert.equal(keyed.apiKey, 'my-key');
  const open = await node(t, { log: { level: 'error' }, http_api: { insecure: true } });
  assert.equal(open.apiKey, '');
  const api = await mounted(t, open);
  const r = await fetch(`${api}/info`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 200);
});

test('embedded: a proxy endpoint left switched off is logged as a warning naming the key', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('warn', { write: (s: string) => void lines.push(s) });
  await node(t, { client: { proxy: { connect: { endpoint: 'http://127.0.0.1:1/connect' } } } }, logger);
  const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
  assert.ok(
    warned.some((l) => l.msg.includes('client.proxy.connect.enabled')),
    JSON.stringify(warned),
  );
});

test('sb.presence returns conn_info and chan_info parsed, as the HTTP API does', async (t) => {
  const sb = await node(t, { channel: { namespaces: [{ name: 'room', presence: true }] }, log: { level: 'error' } });
  await sb.engine.presence.add('room:a', { user: 'u1', client: 'c1', connInfo: '{"name":"Ann"}', chanInfo: '[1,2]' });
  t.after(() => sb.engine.presence.remove('room:a', 'c1', 'u1'));
  const p = await sb.presence('room:a');
  assert.deepEqual(p.get('c1'), { user: 'u1', client: 'c1', connInfo: { name: 'Ann' }, chanInfo: [1, 2] });
  const api = await executeApiCommand(sb, 'presence', { channel: 'room:a' });
  assert.deepEqual((api as { result: { presence: Record<string, unknown> } }).result.presence.c1, {
    user: 'u1',
    client: 'c1',
    conn_info: { name: 'Ann' },
    chan_info: [1, 2],
  });
});
