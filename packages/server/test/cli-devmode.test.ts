/**
 * Zero-config dev mode, as the README's quick start runs it: `serve` with
 * no config file prints a token and an API key, and bare channels are open
 * to connected clients, so the real client can subscribe right away.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from './helpers/net.js';
import { makeClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const TOKEN = /token for user "dev" \(24h\): (\S+)\n/;
const API_KEY = /http_api\.key = (\S+)/;

test('serve without a config: printed token connects, bare channels work end to end', async (t) => {
  const port = await freePort();
  // The banner comes after the server listens: wait for it as well as for /health.
  const s = await startServer(t, {}, { noConfig: true, port, args: ['--port', String(port)], output: TOKEN });
  const out = s.stdout();
  assert.match(out, /bare channels open to connected clients/);
  const token = TOKEN.exec(out)![1]!;
  const apiKey = API_KEY.exec(out)![1]!;
  const c = makeClient(t, s, { token });
  const sub = c.newSubscription('room');
  const pub = waitFor<{ data: unknown; offset: number }>(sub, 'publication');
  sub.subscribe();
  c.connect();
  await sub.ready(5000);
  const r = await fetch(`${s.api}/publish`, {
    method: 'POST',
    headers: { 'X-API-Key': apiKey },
    body: JSON.stringify({ channel: 'room', data: { hello: 'dev' } }),
  }).then((x) => x.json());
  assert.equal((r as { result: { offset: number } }).result.offset, 1);
  const got = await pub;
  assert.deepEqual(got.data, { hello: 'dev' });
  assert.equal(got.offset, 1);
  await sub.publish({ from: 'client' });
  const presence = await sub.presenceStats();
  assert.equal(presence.numClients, 1);
});
