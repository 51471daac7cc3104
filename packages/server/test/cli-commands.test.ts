/**
 * The `switchboard` CLI as users run it: token, --version, --help, unknown
 * commands, and the SIGTERM drain of `serve`.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { RawClient } from './helpers/raw.js';
import { tempDir } from './helpers/scope.js';
import { makeClient } from './helpers/sdk.js';
import { baseConfig, runCli, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const PKG = JSON.parse(readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../package.json'), 'utf8')) as { version: string };

test('switchboard token --user 42 --ttl 1h prints a token the server accepts', async (t) => {
  const cfg = baseConfig({ channel: { without_namespace: { allow_subscribe_for_client: true } } });
  const s = await startServer(t, cfg, { raw: true });
  const r = await runCli(['token', '--config', s.configFile, '--user', '42', '--ttl', '1h', '--channels', 'news,alerts']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, 'only the token on stdout');
  const token = lines[0]!;
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const claims = decodeJwt(token);
  assert.equal(claims.sub, '42');
  assert.equal(claims.exp! - claims.iat!, 3600);
  assert.deepEqual(claims.channels, ['news', 'alerts']);

  const c = makeClient(t, s, { token });
  const subscribed = collect(c, 'subscribed');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  await subscribed.until(2);
  assert.deepEqual(subscribed.items.map((x) => x.channel).sort(), ['alerts', 'news']);
  const info = (await s.call('info')) as { result: { nodes: Array<{ num_users: number }> } };
  assert.equal(info.result.nodes[0]!.num_users, 1);
});

test('switchboard token: secret from the environment, no --user is an error, no secret is an error', async (t) => {
  const dir = tempDir(t);
  const ok = await runCli(['token', '--user', 'u1'], { cwd: dir, env: { SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY: 'from-env' } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(decodeJwt(ok.stdout.trim()).sub, 'u1');
  const noUser = await runCli(['token'], { cwd: dir, env: { SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY: 'from-env' } });
  assert.equal(noUser.code, 1);
  assert.match(noUser.stderr, /--user/);
  const noSecret = await runCli(['token', '--user', 'u1'], { cwd: dir });
  assert.equal(noSecret.code, 1);
  assert.match(noSecret.stderr, /hmac_secret_key/);
  assert.equal(noSecret.stdout, '');
});

test('--version prints the package version; --help the usage', async () => {
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), PKG.version);
  const h = await runCli(['--help']);
  assert.equal(h.code, 0);
  for (const word of ['serve', 'check-config', 'token', '--config', 'SWITCHBOARD_'])
    assert.ok(h.stdout.includes(word), `help mentions ${word}`);
  const none = await runCli([]);
  assert.equal(none.stdout, h.stdout, 'no command shows the help');
});

test('an unknown command or flag exits 2 with the usage on stderr', async () => {
  const r = await runCli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /Usage:/);
  const f = await runCli(['serve', '--no-such-flag']);
  assert.equal(f.code, 2);
  assert.match(f.stderr, /no-such-flag/);
});

test('serve without secrets generates them for the run and prints a working dev token', async (t) => {
  // The banner is printed after the "listening" line and after /health answers: wait for it, not for health alone.
  const s = await startServer(t, { log: { level: 'info' } }, { raw: true, output: /a connection token for user "dev" \(24h\): \S+\n/ });
  const out = s.stdout();
  assert.match(out, /generated for this run only/);
  const secret = /client\.token\.hmac_secret_key = (\S+)/.exec(out)?.[1];
  const apiKey = /http_api\.key = (\S+)/.exec(out)?.[1];
  const devToken = /a connection token for user "dev" \(24h\): (\S+)/.exec(out)?.[1];
  assert.ok(secret && apiKey && devToken, out);
  const raw = await RawClient.open(t, s);
  const reply = await raw.connect(devToken);
  assert.equal(typeof reply.client, 'string');
  const r = await fetch(`${s.api}/info`, { method: 'POST', headers: { 'x-api-key': apiKey }, body: '{}' });
  assert.equal(r.status, 200);
  // The generated secrets are never logged (only the one-off banner above, on stdout, not in a log line).
  const logLines = out.split('\n').filter((l) => l.startsWith('{'));
  assert.ok(logLines.length >= 1);
  for (const l of logLines) assert.ok(!l.includes(secret) && !l.includes(apiKey), `secret in a log line: ${l}`);
});

test('SIGTERM drains: every client is told 3001 (reconnect) and the process exits 0', async (t) => {
  const s = await startServer(t, {
    shutdown: { batch_size: 2, batch_interval: '20ms' },
    channel: { without_namespace: { allow_subscribe_for_client: true } },
  });
  const clients = [];
  for (let i = 0; i < 5; i++) {
    const c = makeClient(t, s, { token: await mintToken(s.secret, { sub: `u${i}` }) });
    const connected = waitFor(c, 'connected');
    c.connect();
    await connected;
    clients.push(c);
  }
  const raw = await RawClient.open(t, s);
  await raw.connect(await mintToken(s.secret, { sub: 'raw' }));
  const told = clients.map((c) => waitFor(c, 'connecting', { ms: 10_000 }));

  s.kill('SIGTERM');
  const codes = await Promise.all(told);
  for (const ctx of codes) {
    assert.equal(ctx.code, 3001);
    assert.equal(ctx.reason, 'shutdown');
  }
  assert.equal((await raw.closedWithin(10_000)).code, 3001);
  const exit = await s.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.match(s.stdout(), /shutting down: draining connections/);
  assert.match(s.stdout(), /shutdown complete/);
  assert.equal(s.stderr(), '');
  for (const c of clients) c.disconnect();
});

test('check-config with no file uses the defaults and says so', async (t) => {
  const dir = tempDir(t);
  const r = await runCli(['check-config'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\(defaults\) is valid/);
  // ./switchboard.json is picked up when present.
  writeFileSync(join(dir, 'switchboard.json'), JSON.stringify({ log: { level: 'lots' } }));
  const bad = await runCli(['check-config'], { cwd: dir });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /log\.level/);
});

test('check-config FILE checks FILE (the path is never ignored for the defaults); stray arguments are a usage error', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ log: { level: 'lots' } }));
  const bad = await runCli(['check-config', join(dir, 'bad.json')], { cwd: dir });
  assert.equal(bad.code, 1, 'the bad file is read, not the defaults');
  assert.match(bad.stderr, /log\.level/);
  writeFileSync(join(dir, 'good.json'), JSON.stringify({ log: { level: 'warn' } }));
  const good = await runCli(['check-config', join(dir, 'good.json')], { cwd: dir });
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /good\.json is valid/);
  const stray = await runCli(['check-config', 'a.json', 'b.json'], { cwd: dir });
  assert.equal(stray.code, 2);
  assert.match(stray.stderr, /unexpected arguments "a\.json" "b\.json"/);
  assert.doesNotMatch(stray.stderr, /at parse/, 'a usage message, not a stack trace');
});
