/**
 * The per-connection inbox: frames are processed in order on one promise
 * chain (or overlapping, with client.concurrency). A failure outside any command's handling (here: a transport whose
 * queue throws while an unknown command is answered) must end that session
 * with 3004, not become an unhandled rejection that takes the process down.
 */
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { test } from 'node:test';
import { Switchboard } from '../src/node.js';
import { createLogger } from '../src/observability/logger.js';
import { jsonCodec } from '../src/protocol/json.js';
import type { SessionContext } from '../src/session/context.js';
import type { CommandInbox } from '../src/session/inbox.js';
import { Session } from '../src/session/session.js';
import type { ClientConnection, ConnectionHandler, OutboundQueue } from '../src/transport/connection.js';

/** A connection whose outbound queue breaks after `okWrites` messages, as a buggy transport might. */
class BrokenConnection implements ClientConnection {
  readonly transport = 'websocket';
  readonly codec = jsonCodec;
  readonly ip = '127.0.0.1';
  readonly request = new IncomingMessage(new Socket());
  handler: ConnectionHandler | undefined;
  closedWith: number | undefined;
  readonly writer: OutboundQueue;

  constructor(okWrites: number) {
    let writes = 0;
    const conn = this as BrokenConnection;
    this.writer = {
      get closed() {
        return conn.closedWith !== undefined;
      },
      pendingBytes: 0,
      enqueue: () => {
        if (++writes > okWrites) throw new Error('transport queue broken');
      },
      discard: () => undefined,
      close: (code) => {
        conn.closedWith ??= code;
      },
    };
  }

  bind(h: ConnectionHandler): void {
    this.handler = h;
  }
}

for (const concurrency of [0, 4])
  test(`a failure outside command handling ends the session with 3004 instead of an unhandled rejection (client.concurrency ${concurrency})`, async (t) => {
    const sb = new Switchboard({
      config: { client: { concurrency } },
      hooks: { onConnecting: () => ({ user: 'u' }) },
      logger: createLogger('silent'),
    });
    await sb.start();
    t.after(() => sb.shutdown());
    const rejections: unknown[] = [];
    const onRejection = (e: unknown): void => void rejections.push(e);
    process.on('unhandledRejection', onRejection);
    t.after(() => process.off('unhandledRejection', onRejection));

    const conn = new BrokenConnection(1);
    const s = new Session((sb as unknown as { ctx: SessionContext }).ctx, conn);
    conn.handler!.onFrame(Buffer.from('{"id":1,"connect":{}}'), false);
    // The connect reply is the one good write; the answer to an unknown method breaks the queue.
    conn.handler!.onFrame(Buffer.from('{"id":2,"nope":{}}'), false);
    await (s as unknown as { inbox: CommandInbox }).inbox.idle();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(rejections, [], 'no unhandled rejection');
    assert.equal(conn.closedWith, 3004, 'the session that failed is closed as a server error');
    assert.equal(s.state, 'closed');
    assert.equal(sb.hub.clients.size, 0);
  });
