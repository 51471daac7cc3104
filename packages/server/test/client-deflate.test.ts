/**
 * permessage-deflate (websocket.compression) with the real SDK over `ws`,
 * which offers the extension by default: JSON and Protobuf clients
 * negotiate it, get every publication intact and in order, and the bytes
 * on their TCP sockets are a fraction of what the server wrote before
 * deflating. Without the option nothing is negotiated.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import type { Centrifuge } from 'centrifuge';
import { SECRET, embedded, type EmbeddedNode } from './helpers/embedded.js';
import { BrowserLikeWebSocket, makeClient } from './helpers/sdk.js';
import type { TestContextLike } from './helpers/scope.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

/** The SDK's socket, remembering its TCP socket (from the upgrade response) to count wire bytes. */
class CountedWebSocket extends BrowserLikeWebSocket {
  static last: CountedWebSocket | undefined;
  tcp: Socket | undefined;
  constructor(address: string | URL, protocols?: string | string[], options?: ConstructorParameters<typeof BrowserLikeWebSocket>[2]) {
    super(address, protocols, options);
    CountedWebSocket.last = this;
    this.once('upgrade', (res: IncomingMessage) => (this.tcp = res.socket as Socket));
  }
}

const N = 60;
/** An app event of about 2 KB with the repetition real JSON has (keys, similar values). */
const event = (i: number): Record<string, unknown> => ({
  type: 'quote.updated',
  seq: i,
  items: Array.from({ length: 20 }, (_, k) => ({ field: `coverage_${k}`, value: k * 100 + i, status: 'pending', locked: false })),
});

async function node(t: TestContextLike, compression: boolean): Promise<EmbeddedNode> {
  return embedded(t, {
    websocket: { compression },
    channel: { without_namespace: { allow_subscribe_for_client: true, history_size: 100, history_ttl: '60s' } },
  });
}

async function sdkClient(t: TestContextLike, n: EmbeddedNode, protobuf: boolean): Promise<{ c: Centrifuge; ws: CountedWebSocket }> {
  const token = await mintToken(SECRET, { sub: protobuf ? 'pb' : 'json' });
  const opts = { token, websocket: CountedWebSocket, minReconnectDelay: 50, maxReconnectDelay: 300, timeout: 5000 };
  const c = protobuf ? (new ProtobufCentrifuge(n.ws, opts) as unknown as Centrifuge) : makeClient(t, n, opts);
  if (protobuf) t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  return { c, ws: CountedWebSocket.last! };
}

/** Subscribes, publishes N events through the node, waits for all; returns wire bytes and the server's bytes before deflate. */
async function exchange(
  n: EmbeddedNode,
  c: Centrifuge,
  ws: CountedWebSocket,
  protobuf: boolean,
): Promise<{ wire: number; written: number; data: unknown[]; offsets: number[] }> {
  const sub = c.newSubscription('events');
  const ready = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ready;
  const pubs = collect<{ data: unknown; offset: number }>(sub, 'publication');
  n.sb.collectMetrics();
  const written0 = (await n.sb.metrics.bytesOut.get()).values[0]?.value ?? 0;
  const wire0 = ws.tcp!.bytesRead;
  for (let i = 0; i < N; i++) await n.sb.publish('events', event(i));
  const got = await pubs.until(N, 20_000);
  n.sb.collectMetrics();
  const written = ((await n.sb.metrics.bytesOut.get()).values[0]?.value ?? 0) - written0;
  const decode = (d: unknown): unknown => (protobuf ? JSON.parse(Buffer.from(d as Uint8Array).toString()) : d);
  return {
    wire: ws.tcp!.bytesRead - wire0,
    written,
    data: got.map((p) => decode(p.data)),
    // the Protobuf SDK gives 64-bit offsets as Long where the `long` package is installed
    offsets: got.map((p) => Number(String(p.offset))),
  };
}

for (const protobuf of [false, true]) {
  const name = protobuf ? 'Protobuf' : 'JSON';
  test(`websocket.compression: the ${name} SDK negotiates permessage-deflate, gets every publication, and the wire carries a fraction`, async (t) => {
    const n = await node(t, true);
    const { c, ws } = await sdkClient(t, n, protobuf);
    assert.match(ws.extensions, /permessage-deflate/, 'negotiated');
    if (protobuf) assert.equal(ws.protocol, 'centrifuge-protobuf');
    const r = await exchange(n, c, ws, protobuf);
    assert.deepEqual(
      r.offsets,
      Array.from({ length: N }, (_, i) => i + 1),
    );
    assert.deepEqual(
      r.data,
      Array.from({ length: N }, (_, i) => event(i)),
    );
    assert.ok(r.written > N * 1000, `the server wrote ${r.written} bytes before deflate`);
    assert.ok(r.wire * 3 < r.written, `wire bytes ${r.wire} are under a third of the ${r.written} written`);
  });

  test(`without websocket.compression the ${name} SDK's offer is declined and the wire carries every byte`, async (t) => {
    const n = await node(t, false);
    const { c, ws } = await sdkClient(t, n, protobuf);
    assert.equal(ws.extensions, '', 'nothing negotiated');
    const r = await exchange(n, c, ws, protobuf);
    assert.deepEqual(
      r.data,
      Array.from({ length: N }, (_, i) => event(i)),
    );
    assert.ok(r.wire >= r.written, `wire bytes ${r.wire} ≥ the ${r.written} written (frame headers on top)`);
  });
}
