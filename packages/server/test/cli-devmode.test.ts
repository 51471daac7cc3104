/**
 * Zero-config dev mode, as the README's quick start runs it: `serve` with
 * no config file prints a token and an API key, and bare channels are open
 * to connected clients, so the real client can subscribe right away.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, upgradeStatus } from './helpers/net.js';
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

test('serve without a config lets pages of other localhost ports connect; a config file keeps the same-origin default', async (t) => {
  const port = await freePort();
  const dev = await startServer(t, {}, { noConfig: true, port, args: ['--port', String(port)], output: TOKEN });
  // The banner says so, and names the key that allows other origins.
  assert.match(
    dev.stdout(),
    /Dev mode \(no config file\): WebSocket pages from http:\/\/localhost:\*, http:\/\/127\.0\.0\.1:\*, http:\/\/\[::1\]:\*/,
  );
  assert.match(dev.stdout(), /set client\.allowed_origins/);
  // A Vite/webpack dev server's page on another port.
  for (const origin of [
    'http://localhost:5173',
    'http://127.0.0.1:3000',
    'http://[::1]:8080',
    'http://localhost',
    `http://localhost:${port}`,
  ])
    assert.equal(await upgradeStatus(dev.ws, { Origin: origin }), 101, origin);
  // Anything else is still refused, lookalikes included.
  for (const origin of [
    'https://evil.example',
    'http://localhost.evil.example:5173',
    'http://localhost:5173.evil.example',
    'http://evil.example/http://localhost:5173',
    'https://localhost:5173',
    'null',
  ])
    assert.equal(await upgradeStatus(dev.ws, { Origin: origin }), 403, origin);

  // With a config file (no allowed_origins in it) only the same host passes.
  const strict = await startServer(t, { client: { allowed_origins: [] } });
  assert.equal(await upgradeStatus(strict.ws, { Origin: 'http://localhost:5173' }), 403);
  assert.equal(await upgradeStatus(strict.ws, { Origin: `http://127.0.0.1:${strict.port}` }), 101);
  assert.doesNotMatch(strict.stdout(), /Dev mode/);
});

test('dev mode: an explicit client.allowed_origins (env) replaces the localhost default', async (t) => {
  const port = await freePort();
  const s = await startServer(
    t,
    {},
    {
      noConfig: true,
      port,
      args: ['--port', String(port)],
      output: TOKEN,
      env: { SWITCHBOARD_CLIENT_ALLOWED_ORIGINS: '["https://app.example.com"]' },
    },
  );
  assert.doesNotMatch(s.stdout(), /Dev mode/);
  assert.equal(await upgradeStatus(s.ws, { Origin: 'https://app.example.com' }), 101);
  assert.equal(await upgradeStatus(s.ws, { Origin: 'http://localhost:5173' }), 403);
});
