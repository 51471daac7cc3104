/**
 * The bidirectional emulation transports with the real `centrifuge` SDK in
 * Node: http_stream (JSON and the Protobuf build) and sse (JSON; the SDK's
 * SSE transport is JSON only), commands POSTed to /emulation. Connect,
 * subscribe, publish, presence, history, recovery, RPC, refresh, server-side
 * subscriptions, disconnect codes, the drain, and the fallback from a
 * refused WebSocket. Publications from the hub are shared bytes: one
 * encoding per publication per encoding whatever the transport mix.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Centrifuge, Subscription } from 'centrifuge';
import { publicationEncodes } from '../src/hub/hub.js';
import { connectedEmuClient, emuClient, emulationOptions, httpNode, type EmulationKind, type HttpNode } from './helpers/emulation.js';
import { scope } from './helpers/scope.js';
import { BrowserLikeWebSocket, connectedClient, subscribe } from './helpers/sdk.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { collect, until, waitFor } from './helpers/wait.js';
import { Centrifuge as JsonCentrifuge } from 'centrifuge';

const S = scope();
after(() => S.close());

const feed = {
  name: 'feed',
  history_size: 100,
  history_ttl: '300s',
  force_recovery: true,
  allow_subscribe_for_client: true,
  allow_publish_for_subscriber: true,
  allow_history_for_subscriber: true,
  allow_presence_for_subscriber: true,
  presence: true,
  join_leave: true,
  force_push_join_leave: true,
};

let nodePromise: Promise<HttpNode> | undefined;
function node(): Promise<HttpNode> {
  nodePromise ??= httpNode(
    S,
    { channel: { without_namespace: { allow_subscribe_for_client: true }, namespaces: [feed] } },
    { hooks: { onRpc: (ctx) => ({ echo: ctx.data ?? null, method: ctx.method }) } },
  );
  return nodePromise;
}

const VARIANTS: Array<{ kind: EmulationKind; protobuf: boolean; label: string }> = [
  { kind: 'http_stream', protobuf: false, label: 'http_stream JSON' },
  { kind: 'http_stream', protobuf: true, label: 'http_stream Protobuf' },
  { kind: 'sse', protobuf: false, label: 'sse JSON' },
];

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = (u8: Uint8Array) => JSON.parse(Buffer.from(u8).toString('utf8'));
/** Data as the build delivers it: JSON values, or bytes (Protobuf) parsed as JSON text. */
const dataOf = (protobuf: boolean, d: unknown) => (protobuf ? dec(d as Uint8Array) : d);
const payload = (protobuf: boolean, v: unknown) => (protobuf ? enc(v) : v);

async function subscribed(c: Centrifuge, channel: string, opts: Record<string, unknown> = {}): Promise<{ sub: Subscription; ctx: any }> {
  const sub = c.newSubscription(channel, opts);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  return { sub, ctx: await ok };
}

for (const v of VARIANTS) {
  test(`${v.label}: connect reports the transport, session and node; subscribe, API and client publications, presence, history, RPC`, async (t) => {
    const n = await node();
    const { client, ctx } = await connectedEmuClient(t, n, v.kind, `u-${v.kind}-${v.protobuf}`, { protobuf: v.protobuf });
    assert.equal(ctx.transport, v.kind);
    // the SDK keeps what it sends back with each emulation request
    const internals = client as unknown as { _session: string; _node: string };
    assert.ok(internals._session.length > 0, 'session id in the connect reply');
    assert.equal(internals._node, n.sb.nodeId);

    const ch = `feed:${v.kind}-${v.protobuf}`;
    const { sub } = await subscribed(client, ch);
    const got = collect(sub, 'publication');
    await n.sb.publish(ch, { from: 'api' });
    await sub.publish(payload(v.protobuf, { from: 'client' }));
    const pubs = await got.until(2);
    assert.deepEqual(
      pubs.map((p) => dataOf(v.protobuf, p.data)),
      [{ from: 'api' }, { from: 'client' }],
    );

    const presence = await sub.presence();
    assert.deepEqual(Object.keys(presence.clients), [client.state === 'connected' ? Object.keys(presence.clients)[0]! : '']);
    assert.equal(Object.values(presence.clients)[0]!.user, `u-${v.kind}-${v.protobuf}`);
    const history = await sub.history({ limit: 10 });
    assert.deepEqual(
      history.publications.map((p) => dataOf(v.protobuf, p.data)),
      [{ from: 'api' }, { from: 'client' }],
    );

    const r = await client.rpc('sum', payload(v.protobuf, { a: 1 }));
    assert.deepEqual(dataOf(v.protobuf, r.data), { echo: { a: 1 }, method: 'sum' });
  });
}
