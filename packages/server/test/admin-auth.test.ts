/**
 * The admin UI's door, over HTTP against `switchboard serve`: off unless
 * configured, the password buys a token signed with admin.secret, wrong
 * passwords are counted and then refused with 429 per address, the admin
 * API takes only that token, and admin.insecure opens it with a warning.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { LoginLimiter } from '../src/api/admin-auth.js';
import { startServer as startInProcess } from '../src/server.js';
import { startServer, type RunningServer } from './helpers/server.js';

const ADMIN = { enabled: true, password: 'correct horse battery', secret: 'admin-secret-0123456789abcdef' };

async function login(s: RunningServer, password: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(`${s.http}/admin/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  return { status: r.status, body: await r.json(), headers: r.headers };
}

async function adminCall(s: RunningServer, method: string, token: string | undefined, params: unknown = {}) {
  const r = await fetch(`${s.http}/admin/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `token ${token}` } : {}) },
    body: JSON.stringify(params),
  });
  return { status: r.status, body: (await r.json()) as any };
}

test('off unless configured: /admin is not there', async (t) => {
  const s = await startServer(t, { log: { level: 'warn' } }, { timeoutMs: 60_000 });
  assert.equal((await fetch(`${s.http}/admin/`)).status, 404);
  assert.equal((await fetch(`${s.http}/admin/auth`, { method: 'POST', body: '{}' })).status, 404);
});

test('enabled without password and secret: refuses to start, naming the keys', async () => {
  await assert.rejects(
    startInProcess({ config: { http_server: { port: 0, address: '127.0.0.1' }, admin: { enabled: true }, log: { level: 'none' } } }),
    /admin\.password and admin\.secret/,
  );
});

test('login: password → token; wrong passwords counted, then 429 for that address; the API takes only the token', async (t) => {
  const s = await startServer(t, { admin: ADMIN, log: { level: 'warn' } }, { timeoutMs: 60_000 });

  // The dashboard is served (the build of packages/dashboard).
  const page = await fetch(`${s.http}/admin/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<div id="app">/);
  const redirect = await fetch(`${s.http}/admin`, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), '/admin/');

  // Without a token, with the HTTP API key, with a token signed by another secret: 401.
  assert.equal((await adminCall(s, 'info', undefined)).status, 401);
  const byKey = await fetch(`${s.http}/admin/api/info`, { method: 'POST', headers: { 'x-api-key': s.apiKey }, body: '{}' });
  assert.equal(byKey.status, 401);
  const forged = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('admin')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode('not-the-secret'));
  assert.equal((await adminCall(s, 'info', forged)).status, 401);

  // A good login, and the token works for server API methods and the series.
  const ok = await login(s, ADMIN.password);
  assert.equal(ok.status, 200);
  const token = ok.body.token as string;
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const info = await adminCall(s, 'info', token);
  assert.equal(info.status, 200);
  assert.equal(info.body.result.nodes.length, 1);
  assert.deepEqual((await adminCall(s, 'connections', token)).body, { result: { connections: {} } });
  assert.equal((await adminCall(s, 'publish', token, { channel: 'x' })).body.error.code, 107);
  const unknown = await adminCall(s, 'no_such_method', token);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.code, 104);
  const series = await fetch(`${s.http}/admin/api/series`, { headers: { authorization: `token ${token}` } });
  assert.equal(series.status, 200);
  const samples = ((await series.json()) as { samples: Array<{ nodes: number }> }).samples;
  assert.ok(samples.length >= 1 && samples[0]!.nodes === 1, JSON.stringify(samples));

  // Bad bodies: a clear 400.
  const noPassword = await fetch(`${s.http}/admin/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(noPassword.status, 400);
  assert.equal(((await noPassword.json()) as any).error.code, 107);

  // Five wrong passwords are 401 each; then even the right one is refused with 429 and a Retry-After.
  const limiter = new LoginLimiter();
  for (let i = 0; i < limiter.maxFailures; i++) {
    const r = await login(s, `guess-${i}`);
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.deepEqual(r.body, { error: { code: 101, message: 'wrong password' } });
  }
  const limited = await login(s, ADMIN.password);
  assert.equal(limited.status, 429);
  assert.equal(limited.body.error.code, 111);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal(await s.metric('switchboard_bad_input_total', { kind: 'admin_wrong_password' }), limiter.maxFailures);
  assert.equal(await s.metric('switchboard_bad_input_total', { kind: 'admin_login_rate_limited' }), 1);
  assert.ok((await s.metric('switchboard_bad_input_total', { kind: 'admin_unauthorized' })) >= 3);
  // The token already given keeps working: the limit is on logins.
  assert.equal((await adminCall(s, 'info', token)).status, 200);
});

test('the login limiter: per address, a sliding window, bounded memory', () => {
  const l = new LoginLimiter(3, 1000, 2);
  const t0 = 1_000_000;
  for (let i = 0; i < 3; i++) {
    assert.equal(l.retryAfter('a', t0 + i), 0);
    l.failed('a', t0 + i);
  }
  assert.equal(l.retryAfter('a', t0 + 10), 990);
  assert.equal(l.retryAfter('b', t0 + 10), 0, 'another address is not limited');
  assert.equal(l.retryAfter('a', t0 + 1000), 0, 'the oldest failure aged out');
  l.succeeded('a');
  l.failed('a', t0 + 1000);
  assert.equal(l.retryAfter('a', t0 + 1000), 0, 'a success forgets the failures');

  const small = new LoginLimiter(1, 1000, 2);
  small.failed('x', t0);
  assert.ok(small.retryAfter('x', t0) > 0);
  small.failed('y', t0);
  small.failed('z', t0);
  assert.equal(small.retryAfter('x', t0), 0, 'past maxAddresses the oldest address is forgotten');
  assert.ok(small.retryAfter('y', t0) > 0 && small.retryAfter('z', t0) > 0);
});

test('admin.insecure: no login needed, and a loud warning at start', async (t) => {
  const s = await startServer(t, { admin: { enabled: true, insecure: true }, log: { level: 'info' } }, { timeoutMs: 60_000 });
  const r = await adminCall(s, 'info', undefined);
  assert.equal(r.status, 200);
  assert.equal(r.body.result.nodes.length, 1);
  assert.match(s.stdout() + s.stderr(), /admin\.insecure is on/);
});
