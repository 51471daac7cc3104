/**
 * Configuration: a Centrifugo v6 config file starts unchanged; check-config
 * reports one clear error per bad key path and warns on unknown keys;
 * SWITCHBOARD_* environment variables and flags override the file.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from './helpers/net.js';
import { tempDir } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { runCli, startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

test('a Centrifugo v6 config file starts unchanged and behaves as configured', async (t) => {
  const port = await freePort();
  // Only keys Centrifugo v6 itself knows, as a Centrifugo user has them.
  const centrifugo = {
    http_server: { port },
    client: {
      token: { hmac_secret_key: 'centrifugo-style-secret' },
      allowed_origins: ['http://localhost:3000'],
    },
    http_api: { key: 'centrifugo-style-api-key' },
    channel: {
      without_namespace: { allow_subscribe_for_client: true, presence: true },
      namespaces: [
        {
          name: 'chat',
          history_size: 10,
          history_ttl: '300s',
          force_recovery: true,
          allow_subscribe_for_client: true,
          allow_publish_for_subscriber: true,
          allow_history_for_subscriber: true,
        },
      ],
    },
    log: { level: 'info' },
  };
  const dir = tempDir(t);
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(centrifugo, null, 2));
  const check = await runCli(['check-config', '--config', file]);
  assert.equal(check.code, 0, check.stderr);
  assert.equal(check.stderr, '', 'no warnings for Centrifugo keys');

  const s = await startServer(t, centrifugo, { raw: true, port });
  assert.equal(s.port, port);
  assert.doesNotMatch(s.stdout() + s.stderr(), /unknown config key|warn/i);
  assert.doesNotMatch(s.stdout(), /generated for this run/, 'secrets were taken from the file');
  const a = await connectedClient(t, s, 'ann');
  const b = await connectedClient(t, s, 'bob');
  const subA = a.newSubscription('chat:room');
  const subB = b.newSubscription('chat:room');
  for (const sub of [subA, subB]) {
    const ok = waitFor(sub, 'subscribed');
    sub.subscribe();
    assert.equal((await ok).recoverable, true);
  }
  const got = waitFor(subB, 'publication');
  await subA.publish({ text: 'hi' });
  assert.deepEqual((await got).data, { text: 'hi' });
  assert.equal((await subB.history({ limit: 5 })).publications.length, 1);
  const api = await s.call('presence_stats', { channel: 'lobby' });
  assert.deepEqual(api, { result: { num_clients: 0, num_users: 0 } });
  const wrongKey = await fetch(`${s.api}/info`, { method: 'POST', headers: { 'x-api-key': 'nope' }, body: '{}' });
  assert.equal(wrongKey.status, 401);
});

test('check-config: one clear error per bad key path, warnings for unknown keys, exit 1', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'bad.json');
  writeFileSync(
    file,
    JSON.stringify({
      http_server: { port: 'eighty' },
      clinet: { token: {} },
      client: { tokn: {}, ping_interval: '10 parsecs', queue_max_size: -5 },
      channel: { namespaces: [{ name: 'chat', history_size: -1, presense: true }, { name: 'x' }] },
      log: { level: 'loud' },
    }),
  );
  const r = await runCli(['check-config', '--config', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const errors = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim());
  const paths = errors.map((l) => l.slice(0, l.indexOf(':')));
  assert.deepEqual(
    [...paths].sort(),
    [
      'channel.namespaces.0.history_size',
      'channel.namespaces.1.name',
      'client.ping_interval',
      'client.queue_max_size',
      'http_server.port',
      'log.level',
    ],
    r.stderr,
  );
  assert.equal(new Set(paths).size, paths.length, 'one error per path');
  const byPath = Object.fromEntries(errors.map((l) => [l.slice(0, l.indexOf(':')), l]));
  assert.match(byPath['http_server.port']!, /integer.*"eighty"/);
  assert.match(byPath['log.level']!, /one of .*"info".*"loud"/);
  assert.match(byPath['client.ping_interval']!, /10 parsecs.*duration/);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  assert.deepEqual(warnings.sort(), [
    'warning: unknown config key channel.namespaces.0.presense (ignored)',
    'warning: unknown config key client.tokn (ignored)',
    'warning: unknown config key clinet (ignored)',
  ]);
});

test('check-config: a valid file with unknown keys passes with warnings; a broken file is an error', async (t) => {
  const dir = tempDir(t);
  const ok = join(dir, 'ok.yaml');
  writeFileSync(ok, 'client:\n  ping_interval: 10s\n  pong_timeout: 3s\n  colour: blue\nlog:\n  level: warn\n');
  const r = await runCli(['check-config', '--config', ok]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /valid/);
  assert.equal(r.stderr.trim(), 'warning: unknown config key client.colour (ignored)');

  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{"client": ');
  const b = await runCli(['check-config', '--config', broken]);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /cannot parse config file .*broken\.json/);
  const missing = await runCli(['check-config', '--config', join(dir, 'nope.json')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read config file/);
  // Semantic checks too.
  const sem = join(dir, 'sem.json');
  writeFileSync(
    sem,
    JSON.stringify({ client: { ping_interval: '1s', pong_timeout: '2s' }, channel: { namespaces: [{ name: 'aa' }, { name: 'aa' }] } }),
  );
  const s = await runCli(['check-config', '--config', sem]);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /client\.pong_timeout: must be shorter/);
  assert.match(s.stderr, /channel\.namespaces\.1\.name: duplicate namespace "aa"/);
});

test('SWITCHBOARD_HTTP_SERVER_PORT sets the port and wins over the file', async (t) => {
  const port = await freePort();
  // The file says another port; the environment wins.
  const s = await startServer(
    t,
    { http_server: { port: 1 } },
    { port, portFromEnv: true, env: { SWITCHBOARD_HTTP_SERVER_PORT: String(port), SWITCHBOARD_LOG_LEVEL: 'warn' } },
  );
  assert.equal(s.port, port);
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  assert.equal(health.status, 200);
  assert.doesNotMatch(s.stdout(), /switchboard listening/, 'SWITCHBOARD_LOG_LEVEL=warn silenced the info line');
  const c = await connectedClient(t, s, 'env');
  assert.equal(c.state, 'connected');
});

test('env vars for nested keys with underscores in their names, and a bad env value is reported', async (t) => {
  const dir = tempDir(t);
  const r = await runCli(['check-config'], {
    cwd: dir,
    env: { SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY: 's', SWITCHBOARD_CLIENT_QUEUE_MAX_SIZE: 'lots', SWITCHBOARD_NOT_A_KEY: '1' },
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /client\.queue_max_size: .*"lots"/);
  assert.match(r.stderr, /SWITCHBOARD_NOT_A_KEY matches no config key/);
  const ok = await runCli(['check-config'], {
    cwd: dir,
    env: { SWITCHBOARD_CLIENT_QUEUE_MAX_SIZE: '2048', SWITCHBOARD_CLIENT_ALLOWED_ORIGINS: '["https://a.example"]' },
  });
  assert.equal(ok.code, 0, ok.stderr);
});

test('flags override env and file: --port and --set', async (t) => {
  const port = await freePort();
  const s = await startServer(
    t,
    { channel: { without_namespace: { allow_subscribe_for_client: true } } },
    {
      port,
      portFromEnv: true,
      env: { SWITCHBOARD_HTTP_SERVER_PORT: '1' },
      args: ['--port', String(port), '--set', 'client.channel_limit=1'],
    },
  );
  assert.equal(s.port, port);
  assert.match(s.stdout(), new RegExp(`"port":${port}`));
  const c = await connectedClient(t, s, 'flags');
  const first = c.newSubscription('one');
  const ok = waitFor(first, 'subscribed');
  first.subscribe();
  await ok;
  // --set client.channel_limit=1: a second channel is over the limit (106).
  const second = c.newSubscription('two');
  const refused = waitFor(second, 'unsubscribed');
  second.subscribe();
  assert.equal((await refused).code, 106);
});
