/**
 * The upgrade gate of an embedded node, over real sockets: per-address
 * connection counts (client.connection_limit_per_ip) that follow
 * connections closing, and the node-wide connection rate
 * (client.connection_rate_limit), refused with HTTP 429 before the handshake.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { RawClient } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { SECRET, embedded } from './helpers/embedded.js';

/** Opens a WebSocket; resolves with it when open, or with the HTTP status that refused the upgrade. */
function attempt(url: string, t: { after(f: () => unknown): void }): Promise<WebSocket | number> {
  const ws = new WebSocket(url);
  t.after(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (e) => reject(e));
  });
}

test('connections per address are counted from open to close', async (t) => {
  const node = await embedded(t, { client: { connection_limit_per_ip: 2 } });
  const a = await RawClient.open(t, node);
  await a.connect(await mintToken(SECRET, { sub: 'u' }));
  const b = await attempt(node.ws, t);
  assert.ok(b instanceof WebSocket, 'the second connection from the address is accepted');
  assert.equal(await attempt(node.ws, t), 429, 'the third is refused');
  // closed by the server (synchronously, with the memory engine): its place is free when the call returns
  await node.sb.disconnect({ user: 'u' });
  assert.equal((await a.closedWithin()).code, 3503);
  const next = await attempt(node.ws, t);
  assert.ok(next instanceof WebSocket, 'a closed connection frees its place');
  const hits = (await node.sb.metrics.limits.get()).values.filter((v) => v.labels.limit === 'connection_limit_per_ip');
  assert.equal(hits[0]?.value, 1, 'the refusal is counted');
});

test('the node-wide connection rate refuses what passes it within a second', async (t) => {
  const LIMIT = 3;
  const node = await embedded(t, { client: { connection_rate_limit: LIMIT } });
  for (let round = 0; ; round++) {
    assert.ok(round < 5, 'a burst fitted in one second');
    // start just after a second boundary so the burst does not straddle two windows
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    const second = Math.floor(Date.now() / 1000);
    const results = await Promise.all(Array.from({ length: LIMIT * 2 }, () => attempt(node.ws, t)));
    if (Math.floor(Date.now() / 1000) !== second) continue;
    const accepted = results.filter((r) => r instanceof WebSocket).length;
    const refused = results.filter((r) => r === 429).length;
    assert.equal(accepted, LIMIT);
    assert.equal(refused, LIMIT);
    break;
  }
});
