/**
 * Delta compression, tags filters and channel compaction (built for
 * WebSocket) over the emulation transports, with the real SDK: http_stream
 * JSON and Protobuf, sse JSON. A subscription that asks for all three gets
 * only the matching publications, each rebuilt exactly from its deltas.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { after, test } from 'node:test';
import type { Subscription } from 'centrifuge';
import { deltaComputations } from '../src/hub/hub.js';
import { connectedEmuClient, httpNode, type EmulationKind, type HttpNode } from './helpers/emulation.js';
import { scope } from './helpers/scope.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());

let nodePromise: Promise<HttpNode> | undefined;
function node(): Promise<HttpNode> {
  nodePromise ??= httpNode(S, {
    channel: {
      namespaces: [
        {
          name: 'doc',
          history_size: 100,
          history_ttl: '300s',
          allow_recovery: true,
          allow_subscribe_for_client: true,
          allowed_delta_types: ['fossil'],
          delta_publish: true,
          allow_tags_filter: true,
          allow_channel_compaction: true,
        },
      ],
    },
  });
  return nodePromise;
}

/** A ~10 KB document; version `v` changes one field. */
function document(v: number): Record<string, unknown> {
  const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `row-${i}`, note: 'lorem ipsum dolor sit amet' }));
  return { v, rows };
}

const VARIANTS: Array<{ kind: EmulationKind; protobuf: boolean; label: string }> = [
  { kind: 'http_stream', protobuf: false, label: 'http_stream JSON' },
  { kind: 'http_stream', protobuf: true, label: 'http_stream Protobuf' },
  { kind: 'sse', protobuf: false, label: 'sse JSON' },
];

async function subscribed(sub: Subscription, got: unknown[], protobuf: boolean): Promise<void> {
  sub.on('publication', (ctx) => got.push(protobuf ? JSON.parse(Buffer.from(ctx.data as Uint8Array).toString('utf8')) : ctx.data));
  const ok = waitFor(sub, 'subscribed', { ms: 30_000, failOn: 'error' });
  sub.subscribe();
  await ok;
}

for (const v of VARIANTS) {
  test(`${v.label}: a delta subscription and a tags-filtered one (both compacted where JSON) get exactly their publications`, async (t) => {
    const n = await node();
    const { client } = await connectedEmuClient(t, n, v.kind, 'u-' + v.label, { protobuf: v.protobuf });
    const base = `doc:${v.kind}-${v.protobuf ? 'pb' : 'json'}`;
    const deltas: unknown[] = [];
    const filtered: unknown[] = [];
    await subscribed(client.newSubscription(base + '-d', { delta: 'fossil' }), deltas, v.protobuf);
    await subscribed(client.newSubscription(base + '-t', { tagsFilter: { key: 'k', cmp: 'eq', val: 'yes' } }), filtered, v.protobuf);
    const slot = v.protobuf ? 1 : 0;
    const c0 = deltaComputations[slot]!;
    const versions = [0, 1, 2, 3, 4, 5, 6, 7];
    for (const i of versions) {
      await n.sb.publish(base + '-d', document(i));
      await n.sb.publish(base + '-t', { i }, { tags: { k: i % 3 === 0 ? 'no' : 'yes' } });
    }
    const wantFiltered = versions.filter((i) => i % 3 !== 0).map((i) => ({ i }));
    await until('publications arrive', 30_000, () => deltas.length >= versions.length && filtered.length >= wantFiltered.length);
    assert.deepEqual(deltas, versions.map(document), 'every document rebuilt from its delta');
    assert.deepEqual(filtered, wantFiltered, 'only publications the filter keeps');
    assert.equal(deltaComputations[slot]! - c0, versions.length - 1, 'a delta for every publication after the first');
    assert.equal(client.state, 'connected');
  });
}

test('http_stream: connection_limit_per_ip holds for streams whose connect body arrives late (the check is made with the body, as the stream opens)', async (t) => {
  const n = await httpNode(t, { client: { connection_limit_per_ip: 1 } });
  const body = JSON.stringify({ id: 1, connect: { token: await mintToken(n.secret, { sub: 'late' }) } });
  const seen: Promise<unknown>[] = [once(n.server, 'request'), once(n.server, 'request').then(() => once(n.server, 'request'))];
  const reqs = [0, 1].map(() => {
    const req = request(n.base + '/connection/http_stream', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.flushHeaders();
    t.after(() => req.destroy());
    return { req, res: once(req, 'response').then(([r]) => r as IncomingMessage) };
  });
  // both requests are in (the server's handler runs before this listener) before either body is sent
  await Promise.all(seen);
  for (const r of reqs) r.req.end(body);
  const statuses = (await Promise.all(reqs.map((r) => r.res))).map((r) => r.statusCode).sort();
  assert.deepEqual(statuses, [200, 429], 'one stream per address');
});
