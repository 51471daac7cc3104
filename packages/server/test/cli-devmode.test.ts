/**
 * Zero-config dev mode, as the README's quick start runs it: `serve` with
 * no config file prints a token and an API key, and bare channels are open
 * to connected clients, so the real client can subscribe right away.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { makeClient, waitFor } from './helpers/client.js';
import { CLI, cleanEnv, freePort } from './helpers/server.js';

test('serve without a config: printed token connects, bare channels work end to end', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-dev-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(port)], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!/token for user "dev" \(24h\): (\S+)/.test(out) || !/http_api\.key = (\S+)/.test(out)) {
    assert.ok(Date.now() < deadline && proc.exitCode === null, 'dev banner printed: ' + out);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(out, /bare channels open to connected clients/);
  const token = /token for user "dev" \(24h\): (\S+)/.exec(out)![1]!;
  const apiKey = /http_api\.key = (\S+)/.exec(out)![1]!;
  const server = { ws: `ws://127.0.0.1:${port}/connection/websocket` };
  const c = makeClient({ after }, server, { token });
  const sub = c.newSubscription('room');
  const pub = waitFor<{ data: unknown; offset: number }>(sub, 'publication');
  sub.subscribe();
  c.connect();
  await sub.ready(5000);
  const r = await fetch(`http://127.0.0.1:${port}/api/publish`, {
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
