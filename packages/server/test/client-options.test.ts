/**
 * client.insecure and client.concurrency (Centrifugo v6 names), with the
 * real SDK: an insecure server takes connections without a token and opens
 * every channel; with concurrency > 1 a slow RPC does not hold up a fast
 * command of the same connection, and by default commands stay in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SECRET, embedded } from './helpers/embedded.js';
import { RawClient } from './helpers/raw.js';
import { makeClient, subscribe } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor, within } from './helpers/wait.js';

test('client.insecure: the SDK connects without a token and every channel is open; a loud warning at start', async (t) => {
  const s = await startServer(t, {
    client: { insecure: true },
    // No allow_* flag anywhere: only client.insecure opens the channels.
    channel: { without_namespace: { presence: true, history_size: 10, history_ttl: '60s' } },
  });
  assert.match(s.stdout() + s.stderr(), /INSECURE: client\.insecure is on/);

  const c = makeClient(t, s);
  const connected = waitFor<{ client: string }>(c, 'connected');
  c.connect();
  assert.equal(typeof (await connected).client, 'string');

  for (const channel of ['room', '$private', 'dialog#42,43']) {
    const { sub } = await subscribe(c, channel);
    const pub = waitFor<{ data: unknown }>(sub, 'publication');
    await sub.publish({ from: 'client', channel });
    assert.deepEqual((await pub).data, { from: 'client', channel });
    const history = await sub.history({ limit: 10 });
    assert.deepEqual(
      history.publications.map((p) => p.data),
      [{ from: 'client', channel }],
    );
    assert.equal((await sub.presenceStats()).numClients, 1);
    assert.equal(Object.keys((await sub.presence()).clients).length, 1);
  }
  // The backend's publications reach it too.
  const room = c.getSubscription('room')!;
  const fromApi = waitFor<{ data: unknown }>(room, 'publication');
  assert.deepEqual((await s.call('publish', { channel: 'room', data: { from: 'api' } })).result, {
    offset: 2,
    epoch: (await room.history({ limit: 0 })).epoch,
  });
  assert.deepEqual((await fromApi).data, { from: 'api' });
});

test('without client.insecure the same channels are closed to a tokenless connection', async (t) => {
  const node = await embedded(t, { channel: { without_namespace: { presence: true, history_size: 10, history_ttl: '60s' } } });
  const raw = await RawClient.open(t, node);
  assert.equal((await raw.command('connect', {})).error?.code, 101, 'no token: unauthorized');

  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: 'u' }));
  assert.equal((await c.command('subscribe', { channel: 'room' })).error?.code, 103);
  assert.equal((await c.command('publish', { channel: 'room', data: {} })).error?.code, 103);
  assert.equal((await c.command('history', { channel: 'room' })).error?.code, 103);
  assert.equal((await c.command('presence', { channel: 'room' })).error?.code, 103);
});

/** An RPC hook where `slow` waits until `fast` has run: only concurrent handling answers both. */
function slowFastHooks(): { onRpc: (ctx: { method: string }) => Promise<{ method: string }>; slowEntered: Promise<void> } {
  let fastRan!: () => void;
  const fastDone = new Promise<void>((r) => (fastRan = r));
  let entered!: () => void;
  const slowEntered = new Promise<void>((r) => (entered = r));
  return {
    slowEntered,
    onRpc: async ({ method }) => {
      if (method === 'slow') {
        entered();
        await fastDone;
      } else fastRan();
      return { method };
    },
  };
}

test('client.concurrency > 1: a slow RPC does not hold up a fast command on the same connection; replies match by id', async (t) => {
  const hooks = slowFastHooks();
  const node = await embedded(t, { client: { concurrency: 4 } }, { hooks: { onRpc: hooks.onRpc } });
  const c = makeClient(t, { ws: node.ws }, { token: await mintToken(SECRET, { sub: 'u' }) });
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  const order: string[] = [];
  const slow = c.rpc('slow', {}).then((r) => (order.push('slow'), r));
  await within(hooks.slowEntered, 10_000, 'the slow RPC reaches its hook');
  // Handled one after another this would wait for the slow RPC, which waits for it: the SDK's timeout would fail it.
  const fast = await within(
    c.rpc('fast', {}).then((r) => (order.push('fast'), r)),
    10_000,
    'the fast RPC answered while the slow one is in flight',
  );
  assert.deepEqual(fast.data, { method: 'fast' });
  assert.deepEqual((await slow).data, { method: 'slow' });
  assert.deepEqual(order, ['fast', 'slow'], 'the reply of the later command came first');
});

test('client.concurrency > 1: connect runs alone, so commands pipelined behind it in one frame see the connection', async (t) => {
  const node = await embedded(t, {
    client: { concurrency: 8 },
    channel: { without_namespace: { allow_subscribe_for_client: true, allow_publish_for_subscriber: true } },
  });
  const raw = await RawClient.open(t, node);
  const token = await mintToken(SECRET, { sub: 'u' });
  const frame = [
    { id: 1, connect: { token } },
    { id: 2, subscribe: { channel: 'a' } },
    { id: 3, subscribe: { channel: 'b' } },
    { id: 4, publish: { channel: 'a', data: { x: 1 } } },
  ];
  raw.send(frame.map((f) => JSON.stringify(f)).join('\n'));
  const replies = await Promise.all([1, 2, 3].map((id) => raw.reply(id, 10_000)));
  assert.ok(replies[0].connect, JSON.stringify(replies[0]));
  assert.ok(replies[1].subscribe, JSON.stringify(replies[1]));
  assert.ok(replies[2].subscribe, JSON.stringify(replies[2]));
  // The publish ran alongside the subscribes: allowed once `a` is subscribed, refused (103) if it overtook it.
  const pub = await raw.reply(4, 10_000);
  assert.ok(pub.publish !== undefined || pub.error?.code === 103, JSON.stringify(pub));
  assert.equal(raw.closeCode, undefined);
});

test('default (client.concurrency 0): the commands of a connection are handled one after another, replies in order', async (t) => {
  const log: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let entered!: () => void;
  const slowEntered = new Promise<void>((r) => (entered = r));
  const node = await embedded(
    t,
    {},
    {
      hooks: {
        onRpc: async ({ method }) => {
          log.push(`${method}:start`);
          if (method === 'slow') {
            entered();
            await gate;
          }
          log.push(`${method}:end`);
          return { method };
        },
      },
    },
  );
  const raw = await RawClient.open(t, node);
  await raw.connect(await mintToken(SECRET, { sub: 'u' }));
  // Both in one frame: the server has the fast command before the slow one is released.
  raw.send(
    [
      { id: 10, rpc: { method: 'slow' } },
      { id: 11, rpc: { method: 'fast' } },
    ]
      .map((c) => JSON.stringify(c))
      .join('\n'),
  );
  await within(slowEntered, 10_000, 'the slow RPC reaches its hook');
  open();
  await raw.reply(11, 10_000);
  assert.deepEqual(log, ['slow:start', 'slow:end', 'fast:start', 'fast:end'], 'the fast command waited for the slow one');
  const ids = raw.messages.filter((m) => m.id === 10 || m.id === 11).map((m) => m.id);
  assert.deepEqual(ids, [10, 11]);
});
