/**
 * Node-wide connection limits (client.connection_limit: connections on this
 * node; client.connection_rate_limit: new connections per second on this
 * node), against a real server with raw and SDK clients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tryUpgrade, upgradeStatus } from './helpers/net.js';
import { RawClient } from './helpers/raw.js';
import { connectedClient, makeClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

test('connection_limit: past N connections on the node a connect is closed with 3504 (no reconnect); a freed slot is reusable', async (t) => {
  const s = await startServer(t, { client: { connection_limit: 2 } });
  const a = await connectedClient(t, s, 'a');
  await connectedClient(t, s, 'b');
  // A different user, so it is the node-wide limit and not the per-user one.
  const c = makeClient(t, s, { token: await mintToken(s.secret, { sub: 'c' }) });
  const refused = waitFor<{ code: number; reason: string }>(c, 'disconnected');
  c.connect();
  const ctx = await refused;
  assert.equal(ctx.code, 3504);
  assert.equal(c.state, 'disconnected', 'a terminal code: the SDK does not retry');
  assert.equal(await s.metric('switchboard_limit_hits_total', { limit: 'connection_limit' }), 1);

  // One leaves; the server sees the close, then a new connection fits.
  a.disconnect();
  await until('the freed slot', 5000, async () => {
    const raw = await RawClient.open(t, s);
    const r = await raw.command('connect', { token: await mintToken(s.secret, { sub: 'd' }) }).catch(() => undefined);
    return typeof r?.connect?.client === 'string';
  });
});

test('connection_rate_limit: upgrades past N per second on the node get HTTP 429; the next second admits again', async (t) => {
  const s = await startServer(t, { client: { connection_rate_limit: 3 } });
  // Line up at the start of a second so the burst falls in one window.
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
  const outcomes = await Promise.all(Array.from({ length: 10 }, () => tryUpgrade(s.ws)));
  const opened = outcomes.filter((o) => o.ok);
  const refused = outcomes.filter((o): o is { ok: false; status: number; body: string } => !o.ok);
  for (const o of opened) if (o.ok) o.ws.terminate();
  assert.ok(opened.length >= 1 && opened.length <= 3 * 2, `${opened.length} opened (3 per second, the burst may straddle two)`);
  assert.equal(refused.length, 10 - opened.length);
  for (const r of refused) {
    assert.equal(r.status, 429);
    assert.match(r.body, /too many connection attempts/);
  }
  assert.equal(await s.metric('switchboard_limit_hits_total', { limit: 'connection_rate_limit' }), refused.length);
  // Node-wide, not per address: it is the same loopback address for the per-IP limits, which are off here.
  await until('a new second admits again', 3000, async () => (await upgradeStatus(s.ws)) === 101, 100);
});
