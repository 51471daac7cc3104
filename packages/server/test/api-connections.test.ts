/**
 * The `connections` API method (Centrifugo PRO's shape) with real
 * `centrifuge` clients: on the memory engine, in-process
 * (`switchboard.connections`), and across two `switchboard serve` nodes on
 * Redis, where the asking node gathers the other node's answer over the
 * engine's control channel (and names a node that does not answer).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { embedded, SECRET as EMBEDDED_SECRET } from './helpers/embedded.js';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { connectedClient, subscribe } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

interface Conn {
  user: string;
  transport: string;
  protocol: string;
  app_name?: string;
  app_version?: string;
  connected_at_ms: number;
  state: { channels: Record<string, object> };
  conn_info?: unknown;
  session: string;
  node: string;
  ip: string;
}

/** The client id the server gave the SDK client in its connect reply. */
const idOf = (c: unknown): string => (c as { _client: string })._client;

const channelOpts = { channel: { without_namespace: { allow_subscribe_for_client: true, presence: true } } };

test('memory: a user’s, a channel’s and all connections, with their info', async (t) => {
  const s = await startServer(t, { ...channelOpts, log: { level: 'warn' } }, { timeoutMs: 60_000 });
  const a1 = await connectedClient(t, s, 'alice', { info: { role: 'agent' } }, { name: 'quoting-web', version: '1.2.3' });
  const a2 = await connectedClient(t, s, 'alice');
  await connectedClient(t, s, 'bob');
  await subscribe(a1, 'news');

  const mine = (await s.call('connections', { user: 'alice' })).result.connections as Record<string, Conn>;
  assert.equal(Object.keys(mine).length, 2, JSON.stringify(mine));
  const first = mine[idOf(a1)]!;
  assert.ok(first, 'the client id is the key');
  assert.equal(first.user, 'alice');
  assert.equal(first.transport, 'websocket');
  assert.equal(first.protocol, 'json');
  assert.equal(first.app_name, 'quoting-web');
  assert.equal(first.app_version, '1.2.3');
  assert.deepEqual(first.conn_info, { role: 'agent' });
  assert.deepEqual(first.state.channels, { news: {} });
  assert.equal(first.ip, '127.0.0.1');
  assert.ok(first.connected_at_ms > Date.now() - 600_000 && first.connected_at_ms <= Date.now());
  const second = mine[idOf(a2)]!;
  assert.deepEqual(second.state.channels, {});
  assert.notEqual(first.session, second.session);

  const news = (await s.call('connections', { channel: 'news' })).result.connections as Record<string, Conn>;
  assert.deepEqual(Object.keys(news), [idOf(a1)]);
  const all = (await s.call('connections', {})).result.connections as Record<string, Conn>;
  assert.deepEqual(
    Object.values(all)
      .map((c) => c.user)
      .sort(),
    ['alice', 'alice', 'bob'],
  );
  assert.equal(Object.keys((await s.call('connections', { limit: 1 })).result.connections).length, 1);
  assert.deepEqual((await s.call('connections', { user: 'nobody' })).result, { connections: {} });

  // A session id from the answer is a disconnect target.
  const gone = new Promise<number>((r) => a2.once('disconnected', (ctx) => r(ctx.code)));
  await s.call('disconnect', { user: 'alice', session: second.session });
  assert.equal(await gone, 3503);
  assert.equal(Object.keys((await s.call('connections', { user: 'alice' })).result.connections).length, 1);

  // Bad params: a clear 107, counted.
  assert.equal((await s.call('connections', { limit: 0 })).error.code, 107);
  assert.equal((await s.call('connections', { channel: '' })).error.code, 107);
  assert.equal((await s.call('connections', { user: 5 })).error.code, 107);
  assert.ok((await s.metric('switchboard_api_commands_total', { method: 'connections', result: '107' })) >= 3);
});

test('in-process: switchboard.connections() answers the same descriptions', async (t) => {
  const n = await embedded(t, channelOpts);
  const c = await connectedClient(t, { ws: n.ws, secret: EMBEDDED_SECRET }, 'carol');
  await subscribe(c, 'room');
  const r = await n.sb.connections({ channel: 'room' });
  assert.deepEqual(r.missing, []);
  assert.equal(r.connections.length, 1);
  const d = r.connections[0]!;
  assert.equal(d.user, 'carol');
  assert.equal(d.node, n.sb.nodeId);
  assert.deepEqual(d.channels, ['room']);
  assert.deepEqual((await n.sb.connections({ user: 'dave' })).connections, []);
});

test('redis: connections on both nodes, asked of either node; a dead node is named, not waited for forever', async (t) => {
  const prefix = uniquePrefix('connections');
  // node_info_ttl long enough that the killed node is still listed when we ask.
  const cfg = nodeConfig(SHARED_REDIS, prefix, { engine: { redis: { node_info_ttl: '60s' } } });
  const [a, b] = await Promise.all([
    startServer(t, cfg, { raw: true, timeoutMs: 60_000 }),
    startServer(t, cfg, { raw: true, timeoutMs: 60_000 }),
  ]);
  const onA = await connectedClient(t, a, 'erin');
  const onB = await connectedClient(t, b, 'erin');
  await connectedClient(t, b, 'frank');
  await subscribe(onB, 'lobby');
  await until('both nodes in the registry', 10_000, async () => (await a.call('info')).result.nodes.length === 2);
  const nodes = (await a.call('info')).result.nodes as Array<{ uid: string; name: string }>;
  const uidOf = async (s: typeof a) => ((await s.call('info')).result.nodes as Array<{ uid: string }>)[0]!.uid; // a node lists itself first
  const [uidA, uidB] = [await uidOf(a), await uidOf(b)];
  assert.deepEqual(nodes.map((n) => n.uid).sort(), [uidA, uidB].sort());

  for (const asked of [a, b]) {
    const erin = (await asked.call('connections', { user: 'erin' })).result as {
      connections: Record<string, Conn>;
      missing_nodes?: string[];
    };
    assert.equal(erin.missing_nodes, undefined);
    const byClient = erin.connections;
    assert.equal(Object.keys(byClient).length, 2, JSON.stringify(erin));
    assert.equal(byClient[idOf(onA)]?.node, uidA);
    assert.equal(byClient[idOf(onB)]?.node, uidB);
    const lobby = (await asked.call('connections', { channel: 'lobby' })).result.connections as Record<string, Conn>;
    assert.deepEqual(Object.keys(lobby), [idOf(onB)]);
    const all = (await asked.call('connections')).result.connections as Record<string, Conn>;
    assert.deepEqual(
      Object.values(all)
        .map((c) => c.user)
        .sort(),
      ['erin', 'erin', 'frank'],
    );
  }

  // B dies without leaving the registry: A answers with its own connections after the timeout and names B.
  b.kill('SIGKILL');
  await b.exited;
  const r = (await a.call('connections', { user: 'erin' })).result as { connections: Record<string, Conn>; missing_nodes?: string[] };
  assert.deepEqual(r.missing_nodes, [uidB]);
  assert.deepEqual(Object.keys(r.connections), [idOf(onA)]);
});
