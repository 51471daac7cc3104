/**
 * What the docs tell a new user to run, run as written: the installed
 * `switchboard` command, `types --out` into a folder that does not exist yet,
 * `check-config` on a proxy left switched off, the example config's `token`
 * line, and where the API answers once `http_api.port` is set.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from './helpers/net.js';
import { tempDir } from './helpers/scope.js';
import { makeClient } from './helpers/sdk.js';
import { cleanEnv, runCli, startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../../..');
const SERVER_PKG = resolve(ROOT, 'packages/server');
const EXAMPLE = resolve(ROOT, 'examples/config/switchboard.example.json');

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`${cmd} ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, 30_000);
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

test('the installed bin runs: node_modules/.bin/switchboard and npx switchboard from the repo root', async () => {
  const bin = join(ROOT, 'node_modules/.bin/switchboard');
  assert.ok(existsSync(bin), `${bin} exists after npm ci`);
  const direct = await run(bin, ['--help'], ROOT);
  assert.equal(direct.code, 0, direct.stderr);
  assert.match(direct.stdout, /switchboard serve/);
  const npx = await run('npx', ['--no-install', 'switchboard', '--version'], ROOT);
  assert.equal(npx.code, 0, npx.stderr);
  const pkg = JSON.parse(readFileSync(join(SERVER_PKG, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
  assert.equal(npx.stdout.trim(), pkg.version);
  // The bin is a committed file, not the build output: npm links it before `prepare` builds dist/.
  assert.doesNotMatch(pkg.bin.switchboard!, /dist\//);
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(root.scripts.prepare ?? '', /build -w @switchboard\/server/, 'npm ci builds the server');
});

test('the bin without a build says how to build, instead of ERR_MODULE_NOT_FOUND', async (t) => {
  const dir = tempDir(t);
  const pkg = JSON.parse(readFileSync(join(SERVER_PKG, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(SERVER_PKG, pkg.bin.switchboard!), join(dir, 'bin/switchboard.js'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const r = await run(process.execPath, [join(dir, 'bin/switchboard.js'), '--help'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not built/);
  assert.match(r.stderr, /npm run build -w @switchboard\/server/);
});

test('types --out creates the folders it writes into', async (t) => {
  const dir = tempDir(t);
  const cfg = join(dir, 'c.json');
  writeFileSync(cfg, JSON.stringify({ channel: { namespaces: [{ name: 'chat', publication_schema: { type: 'object' } }] } }));
  const out = join(dir, 'src/generated/deep/types.ts');
  const r = await runCli(['types', '--config', cfg, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(readFileSync(out, 'utf8'), /chat/);
  // Relative to the working directory, as examples/schemas runs it from the repo root.
  const rel = await runCli(['types', '--config', cfg, '--out', 'gen/types.ts'], { cwd: dir });
  assert.equal(rel.code, 0, rel.stderr);
  assert.ok(existsSync(join(dir, 'gen/types.ts')));
});

test('check-config: a proxy endpoint with its switch off is valid, with a warning naming the switch', async (t) => {
  const dir = tempDir(t);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ client: { proxy: { connect: { endpoint: 'http://b/connect' } } } }, /client\.proxy\.connect\.enabled is false/],
    [{ client: { proxy: { refresh: { endpoint: 'http://b/refresh' } } } }, /client\.proxy\.refresh\.enabled is false/],
    [{ channel: { proxy: { subscribe: { endpoint: 'http://b/sub' } } } }, /channel\.proxy\.subscribe\.endpoint .*subscribe_proxy_enabled/],
    [{ channel: { proxy: { publish: { endpoint: 'http://b/pub' } } } }, /channel\.proxy\.publish\.endpoint .*publish_proxy_enabled/],
    [
      { channel: { proxy: { sub_refresh: { endpoint: 'http://b/sr' } } } },
      /channel\.proxy\.sub_refresh\.endpoint .*sub_refresh_proxy_enabled/,
    ],
    [{ rpc: { proxy: { endpoint: 'http://b/rpc' } } }, /rpc\.proxy\.endpoint .*proxy_enabled/],
  ];
  for (const [i, [config, warning]] of cases.entries()) {
    const file = join(dir, `c${i}.json`);
    writeFileSync(file, JSON.stringify(config));
    const r = await runCli(['check-config', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is valid/);
    assert.match(r.stderr, warning);
  }
  // Switched on: no warning.
  const on = join(dir, 'on.json');
  writeFileSync(
    on,
    JSON.stringify({
      client: { proxy: { connect: { enabled: true, endpoint: 'http://b/connect' } } },
      channel: { proxy: { subscribe: { endpoint: 'http://b/sub' } }, namespaces: [{ name: 'room', subscribe_proxy_enabled: true }] },
      rpc: { proxy: { endpoint: 'http://b/rpc' }, without_namespace: { proxy_enabled: true } },
    }),
  );
  const r = await runCli(['check-config', '--config', on]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('serve logs the same warning at start', async (t) => {
  const s = await startServer(t, { client: { proxy: { connect: { endpoint: 'http://127.0.0.1:1/connect' } } } });
  assert.match(s.stdout(), /client\.proxy\.connect\.enabled is false/);
});

test('examples/config: with the secrets exported, the documented token line mints a token the server accepts', async (t) => {
  const env = { SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY: 'docs-example-secret', SWITCHBOARD_HTTP_API_KEY: 'docs-example-key' };
  const s = await startServer(t, {}, { configFile: EXAMPLE, env, secret: env.SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY });
  const r = await runCli(['token', '--config', EXAMPLE, '--user', '42', '--channels', 'project:7,agent:a1'], { env });
  assert.equal(r.code, 0, r.stderr);
  const c = makeClient(t, s, { token: r.stdout.trim() });
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  // Without the secret the line fails loudly: the file holds no placeholder secret to sign with (and to serve with).
  const bare = await runCli(['token', '--config', EXAMPLE, '--user', '42']);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /hmac_secret_key/);
  assert.equal(bare.stdout, '');
});

test('http_api.port moves the API to its own port: the main port answers 404 on /api, health stays on both', async (t) => {
  const apiPort = await freePort();
  const s = await startServer(t, { http_api: { port: apiPort } });
  const headers = { 'x-api-key': s.apiKey };
  const main = await fetch(`${s.http}/api/info`, { method: 'POST', headers, body: '{}' });
  assert.equal(main.status, 404);
  const api = await fetch(`http://127.0.0.1:${apiPort}/api/info`, { method: 'POST', headers, body: '{}' });
  assert.equal(api.status, 200);
  assert.equal((await fetch(`${s.http}/health`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${apiPort}/health`)).status, 200);
});
