/**
 * The target of the server API's per-connection actions (disconnect,
 * unsubscribe, subscribe, refresh): `user`, `client` and `session` narrow it
 * together, as in centrifuge's hub (a connection matches when each given
 * field matches). A client-only target finds that connection whoever its
 * user is; a session target hits that connection only, not all of the user's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';
import { SECRET, embedded, type EmbeddedNode } from './helpers/embedded.js';
import type { TestContextLike } from './helpers/scope.js';

const CONFIG = { client: { allow_anonymous_connect_without_token: true } };

interface Conn {
  readonly raw: RawClient;
  readonly client: string;
  readonly session: string;
}

async function open(t: TestContextLike, node: EmbeddedNode, user: string | undefined): Promise<Conn> {
  const raw = await RawClient.open(t, node);
  const reply = user === undefined ? (await raw.command('connect', {})).connect : await raw.connect(await mintToken(SECRET, { sub: user }));
  assert.ok(reply, 'connected');
  const client = reply.client as string;
  // The per-connection session id, distinct from the client id (not sent to the client, as in centrifuge).
  const hubClient = node.sb.hub.clients.get(client) as unknown as { session?: string } | undefined;
  assert.ok(hubClient, 'the connection is in the hub');
  return { raw, client, session: hubClient.session ?? 'no-session-id' };
}

/** A command round trip: the connection is still open and served. */
async function alive(c: Conn): Promise<void> {
  const r = await c.raw.command('presence', { channel: 'nope' });
  assert.ok(r.error, 'a reply came back');
  assert.equal(c.raw.closeCode, undefined);
}

test('a session target disconnects that connection only, not all of the user', async (t) => {
  const node = await embedded(t, CONFIG);
  const a1 = await open(t, node, 'alice');
  const a2 = await open(t, node, 'alice');
  assert.notEqual(a1.session, a1.client, 'the session id is not the client id');
  await node.sb.disconnect({ user: 'alice', session: a1.session }, { code: 4001, reason: 'bye' });
  assert.equal((await a1.raw.closedWithin()).code, 4001);
  await alive(a2);
});

test('a session target refreshes (expires) that connection only', async (t) => {
  const node = await embedded(t, CONFIG);
  const a1 = await open(t, node, 'alice');
  const a2 = await open(t, node, 'alice');
  await node.sb.refresh({ user: 'alice', session: a2.session }, { expired: true });
  assert.equal((await a2.raw.closedWithin()).code, 3005);
  await alive(a1);
});

test('a session target subscribes and unsubscribes that connection only', async (t) => {
  const node = await embedded(t, CONFIG);
  const a1 = await open(t, node, 'alice');
  const a2 = await open(t, node, 'alice');
  const pushed = waitFor(a1.raw, 'message', { ms: 5000, filter: (m: any) => m.push?.subscribe !== undefined });
  await node.sb.subscribe({ user: 'alice', session: a1.session }, 'news');
  assert.equal((await pushed).push.channel, 'news');
  await alive(a2);
  assert.equal(node.sb.hub.numSubscribers('news'), 1, 'only the targeted connection subscribed');
  // the other connection of the user is subscribed too now; a session unsubscribe takes only it
  await node.sb.subscribe({ user: 'alice', client: a2.client }, 'news');
  await waitFor(a2.raw, 'message', { ms: 5000, filter: (m: any) => m.push?.subscribe !== undefined });
  const unsub = waitFor(a2.raw, 'message', { ms: 5000, filter: (m: any) => m.push?.unsubscribe !== undefined });
  await node.sb.unsubscribe({ user: 'alice', session: a2.session }, 'news');
  assert.equal((await unsub).push.channel, 'news');
  await alive(a1);
  assert.equal(node.sb.hub.numSubscribers('news'), 1, 'the other connection kept its subscription');
  assert.ok(!a1.raw.messages.some((m: any) => m.push?.unsubscribe), 'the other connection was not told to unsubscribe');
});

test('a client-only target finds that client whoever its user is, and nobody else', async (t) => {
  const node = await embedded(t, CONFIG);
  const bob = await open(t, node, 'bob');
  const anon = await open(t, node, undefined);
  const pushed = waitFor(bob.raw, 'message', { ms: 5000, filter: (m: any) => m.push?.subscribe !== undefined });
  await node.sb.subscribe({ user: '', client: bob.client }, 'news');
  assert.equal((await pushed).push.channel, 'news');
  await alive(anon);
  assert.ok(!anon.raw.messages.some((m: any) => m.push), 'the anonymous connection got nothing');
  await node.sb.disconnect({ user: '', client: anon.client }, { code: 4002, reason: 'anon' });
  assert.equal((await anon.raw.closedWithin()).code, 4002, 'a client-only target still finds an anonymous client');
  await alive(bob);
});

test('a target whose fields disagree matches nothing', async (t) => {
  const node = await embedded(t, CONFIG);
  const bob = await open(t, node, 'bob');
  const carol = await open(t, node, 'carol');
  await node.sb.disconnect({ user: 'carol', client: bob.client }, { code: 4003, reason: 'x' });
  await node.sb.disconnect({ user: 'bob', session: carol.session }, { code: 4003, reason: 'x' });
  await alive(bob);
  await alive(carol);
});

test('the HTTP API executor passes the session target through', async (t) => {
  const node = await embedded(t, CONFIG);
  const a1 = await open(t, node, 'alice');
  const a2 = await open(t, node, 'alice');
  const { executeApiCommand } = await import('../src/index.js');
  const r = await executeApiCommand(node.sb, 'disconnect', { user: 'alice', session: a2.session, disconnect: { code: 4004, reason: 'x' } });
  assert.deepEqual(r, { result: {} });
  assert.equal((await a2.raw.closedWithin()).code, 4004);
  await alive(a1);
});
