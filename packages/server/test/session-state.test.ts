/**
 * The session state machine where races hide: a connection that closes
 * while connect or subscribe awaits a hook, params of the wrong type, the
 * session id, and the recovery merge. A Session is driven through a small
 * in-test ClientConnection over real buffers (frames in, encoded replies
 * out) inside a real, started Switchboard: real hub, engine and hooks.
 */
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { test } from 'node:test';
import { Subscriber, type HubClient } from '../src/hub/hub.js';
import { Switchboard } from '../src/node.js';
import { createLogger } from '../src/observability/logger.js';
import { jsonCodec } from '../src/protocol/json.js';
import type { Publication } from '../src/protocol/types.js';
import { userConnectionsKey } from '../src/session/connect.js';
import type { SessionContext } from '../src/session/context.js';
import type { Hooks } from '../src/session/hooks.js';
import type { CommandInbox } from '../src/session/inbox.js';
import { Session } from '../src/session/session.js';
import { mergeBuffered } from '../src/session/subscriptions.js';
import type { ClientConnection, ConnectionHandler, OutboundQueue } from '../src/transport/connection.js';
import type { TestContextLike } from './helpers/scope.js';

/** A ClientConnection over buffers: what the session writes is kept, decoded, in `messages()`. */
class TestConnection implements ClientConnection {
  readonly codec = jsonCodec;
  readonly ip = '127.0.0.1';
  readonly request = new IncomingMessage(new Socket());
  readonly out: Buffer[] = [];
  closedWith: { code: number; reason: string } | undefined;
  private handler: ConnectionHandler | undefined;
  readonly writer: OutboundQueue;

  constructor(readonly transport = 'websocket') {
    const out = this.out;
    const conn = this as TestConnection;
    this.writer = {
      get closed() {
        return conn.closedWith !== undefined;
      },
      pendingBytes: 0,
      enqueue: (b) => {
        if (conn.closedWith === undefined) out.push(b);
      },
      discard: () => void out.splice(0),
      close: (code, reason) => {
        conn.closedWith ??= { code, reason };
      },
    };
  }

  bind(h: ConnectionHandler): void {
    this.handler = h;
  }

  send(cmd: unknown): void {
    this.handler!.onFrame(Buffer.from(JSON.stringify(cmd)), false);
  }

  /** The peer went away. */
  drop(): void {
    this.handler!.onClosed();
  }

  messages(): any[] {
    return this.out.flatMap((b) =>
      b
        .toString()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as unknown),
    );
  }

  reply(id: number): { error?: { code: number }; [k: string]: unknown } | undefined {
    return this.messages().find((m: { id?: number }) => m.id === id);
  }
}

/** A gate a hook waits on, and a promise that says the hook is waiting. */
function gate(): { wait: () => Promise<void>; entered: Promise<void>; open: () => void } {
  let open!: () => void;
  let entered!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const enteredP = new Promise<void>((r) => (entered = r));
  return {
    wait: () => {
      entered();
      return opened;
    },
    entered: enteredP,
    open,
  };
}

async function node(t: TestContextLike, hooks: Hooks = {}, config: Record<string, unknown> = {}): Promise<Switchboard> {
  const sb = new Switchboard({ config, hooks, logger: createLogger('silent') });
  await sb.start();
  t.after(() => sb.shutdown());
  return sb;
}

function open(sb: Switchboard, transport = 'websocket'): { s: Session; conn: TestConnection } {
  const conn = new TestConnection(transport);
  // The node's own context: the session sees exactly what a WebSocket session sees.
  const s = new Session((sb as unknown as { ctx: SessionContext }).ctx, conn);
  return { s, conn };
}

/** Resolves when every frame the session received has been processed. */
const settled = (s: Session): Promise<void> => (s as unknown as { inbox: CommandInbox }).inbox.idle();

test('closed while connect awaits the onConnecting hook: no user entry, no index entry, no onDisconnect', async (t) => {
  const g = gate();
  let disconnects = 0;
  const sb = await node(
    t,
    {
      onConnecting: async () => {
        await g.wait();
        return { user: 'alice' };
      },
      onDisconnect: () => void disconnects++,
    },
    { client: { user_connection_limit: 3 } },
  );
  const { s, conn } = open(sb);
  conn.send({ id: 1, connect: {} });
  await g.entered;
  conn.drop();
  g.open();
  await settled(s);
  assert.equal(s.state, 'closed');
  assert.equal(conn.reply(1)?.connect, undefined, 'no connect reply to a closed connection');
  assert.equal(sb.hub.clients.size, 0);
  assert.equal((await sb.engine.presence.stats(userConnectionsKey('alice'))).numClients, 0, 'no user-connection entry');
  assert.equal(disconnects, 0, 'onDisconnect is for connections that were connected');
});

test('closed while subscribe awaits the onSubscribe hook: no hub entry, no presence', async (t) => {
  const g = gate();
  const sb = await node(
    t,
    {
      onConnecting: () => ({ user: 'bob' }),
      onSubscribe: async () => {
        await g.wait();
        return {};
      },
    },
    { channel: { without_namespace: { presence: true, join_leave: true } } },
  );
  const { s, conn } = open(sb);
  conn.send({ id: 1, connect: {} });
  await settled(s);
  assert.ok(conn.reply(1)?.connect);
  conn.send({ id: 2, subscribe: { channel: 'room' } });
  await g.entered;
  conn.drop();
  g.open();
  await settled(s);
  assert.equal(sb.hub.hasSubscribers('room'), false, 'nothing in the hub');
  assert.equal((await sb.engine.presence.stats('room')).numClients, 0, 'no presence entry');
  assert.equal(s.numSubscriptions, 0);
});

test('unsubscribed while subscribe awaits: the late subscription is not added', async (t) => {
  const g = gate();
  const sb = await node(
    t,
    {
      onConnecting: () => ({ user: 'carol' }),
      onSubscribe: async () => {
        await g.wait();
        return {};
      },
    },
    { channel: { without_namespace: { presence: true } } },
  );
  const { s, conn } = open(sb);
  conn.send({ id: 1, connect: {} });
  await settled(s);
  conn.send({ id: 2, subscribe: { channel: 'room' } });
  await g.entered;
  s.disconnect({ code: 3001, reason: 'shutdown' });
  g.open();
  await settled(s);
  assert.deepEqual(conn.closedWith, { code: 3001, reason: 'shutdown' });
  assert.equal(sb.hub.hasSubscribers('room'), false);
  assert.equal((await sb.engine.presence.stats('room')).numClients, 0);
});

test('params of the wrong type answer that command with 107 and keep the connection', async (t) => {
  const sb = await node(
    t,
    { onConnecting: () => ({ user: 'dave' }) },
    { channel: { without_namespace: { presence: true, allow_subscribe_for_client: true } } },
  );
  const refused = open(sb);
  refused.conn.send({ id: 1, connect: { token: 5 } });
  await settled(refused.s);
  assert.equal(refused.conn.reply(1)?.error?.code, 107, 'connect with a numeric token');
  assert.equal(refused.conn.closedWith?.code, 3000, 'a client gives up on a connect error that is not temporary: the socket is freed');
  const { s, conn } = open(sb);
  conn.send({ id: 2, connect: { name: 'js', subs: { news: { recover: false, offset: 'x' } } } });
  await settled(s);
  assert.ok(conn.reply(2)?.connect, 'fields read only when recovering are not checked otherwise');
  const bad: Array<[string, Record<string, unknown>]> = [
    ['subscribe', { channel: 7 }],
    ['subscribe', { channel: '' }],
    ['subscribe', { channel: 'a', recover: 'yes' }],
    ['subscribe', { channel: 'a', recover: true, offset: -1 }],
    ['subscribe', { channel: 'a', recover: true, epoch: 3 }],
    ['publish', { channel: 'a' }],
    ['history', { channel: 'a', limit: 1.5 }],
    ['history', { channel: 'a', limit: -2 }],
    ['history', { channel: 'a', since: [] }],
    ['history', { channel: 'a', since: { offset: 'x' } }],
    ['history', { channel: 'a', reverse: 1 }],
    ['presence', {}],
    ['presence_stats', { channel: null }],
    ['rpc', { method: 1 }],
    ['refresh', { token: '' }],
    ['sub_refresh', { channel: 'a' }],
    ['unsubscribe', { channel: {} }],
  ];
  let id = 10;
  for (const [method, params] of bad) {
    conn.send({ id: ++id, [method]: params });
    await settled(s);
    assert.equal(conn.reply(id)?.error?.code, 107, `${method} ${JSON.stringify(params)}`);
  }
  assert.equal(conn.closedWith, undefined, 'a bad request is answered, not disconnected');
  conn.send({ id: 99, subscribe: { channel: 'ok', recover: null, positioned: null, token: null } });
  await settled(s);
  assert.ok(conn.reply(99)?.subscribe, 'null stands for an absent field');
});

test('a session id distinct from the client id on every transport, reported in the connect reply by emulation transports only', async (t) => {
  const sb = await node(t, { onConnecting: () => ({ user: 'erin' }) });
  const ws = open(sb, 'websocket');
  ws.conn.send({ id: 1, connect: {} });
  await settled(ws.s);
  assert.match(ws.s.session, /^[0-9a-f-]{36}$/);
  assert.notEqual(ws.s.session, ws.s.id);
  assert.equal((ws.conn.reply(1)?.connect as { session?: string }).session, undefined);

  const emu = open(sb, 'http_stream');
  emu.conn.send({ id: 1, connect: {} });
  await settled(emu.s);
  assert.match(emu.s.session, /^[0-9a-f-]{36}$/);
  assert.notEqual(emu.s.session, emu.s.id);
  assert.equal((emu.conn.reply(1)?.connect as { session?: string }).session, emu.s.session);
});

test('recovery merge: buffered live publications follow the recovered set without duplicates, a gap is insufficient state', () => {
  const conn = new TestConnection();
  const gaps: string[] = [];
  const client: HubClient = {
    id: 'c',
    user: 'u',
    session: '',
    writer: conn.writer,
    codec: jsonCodec,
    insufficientState: (ch) => void gaps.push(ch),
  };
  const pub = (offset: number): Publication => ({ offset, data: JSON.stringify({ n: offset }) }) as Publication;
  const sub = new Subscriber(client, 'ch');
  sub.positioned = true;
  sub.buffer = [];
  // Live publications 3..6 arrive while history is read; the recovered set ends at 4.
  for (const o of [3, 4, 5, 6]) sub.buffer.push(pub(o));
  sub.offset = 4;
  mergeBuffered(sub);
  assert.equal(sub.buffer, null, 'live from now on');
  const offsets = (): number[] => conn.messages().map((m: { push: { pub: { offset: number } } }) => m.push.pub.offset);
  assert.deepEqual(offsets(), [5, 6], 'only what the recovered set did not hold, in order');
  sub.deliver(pub(6), Buffer.from('dup'));
  assert.deepEqual(offsets(), [5, 6], 'a duplicate is dropped');
  sub.deliver(pub(8), Buffer.from('gap'));
  assert.deepEqual(gaps, ['ch'], 'a gap asks for a resubscribe');
  mergeBuffered(sub);
  assert.deepEqual(offsets(), [5, 6], 'merging twice does nothing');
});
