/**
 * The backend without a browser: cookie sessions (missing, forged, expired),
 * roles on the HTTP routes and on rooms (through the real `centrifuge` SDK),
 * and the catalogue files (switchboard.json, shared/realtime-types.ts)
 * matching their source.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startApp } from './browser.js';

const HERE = fileURLToPath(new URL('../../', import.meta.url)); // examples/quoting/
type Json = { error?: { code: number; message: string } } & Record<string, unknown>;

async function signIn(base: string, user: string, ttlMs?: number): Promise<string> {
  const r = await fetch(base + '/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, ttlMs }),
  });
  assert.equal(r.status, 200);
  return r.headers.get('set-cookie')!.split(';')[0]!;
}
async function call(base: string, path: string, cookie?: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const headers: Record<string, string> = cookie ? { cookie } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Json };
}

test('sessions: missing, forged and expired cookies are 401 with a JSON reason; a live one gets a token', async (t) => {
  const { base } = await startApp(t);
  assert.deepEqual(await call(base, '/api/token'), { status: 401, json: { error: { code: 401, message: 'not signed in' } } });
  const cookie = await signIn(base, 'alice');
  const forged = cookie.replace(/=.*\./, '=AAAA.'); // another id under the old signature
  assert.equal((await call(base, '/api/token', forged)).status, 401);
  const ok = await call(base, '/api/token', cookie);
  assert.equal(ok.status, 200);
  const claims = JSON.parse(Buffer.from(String(ok.json.token).split('.')[1]!, 'base64url').toString());
  assert.equal(claims.sub, 'alice');
  assert.deepEqual(claims.info, { name: 'Alice Martin', role: 'agent' });

  const short = await signIn(base, 'bob', 300);
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(await call(base, '/api/me', short), {
    status: 401,
    json: { error: { code: 401, message: 'session expired: sign in again' } },
  });
  assert.equal((await call(base, '/api/unknown', cookie)).json.error?.code, 404);
});

test('roles: a client reads only its own quotes and may not write; agents may', async (t) => {
  const { base, quotes } = await startApp(t);
  quotes.create('Someone else', 'zed', 'system');
  const carol = await signIn(base, 'carol');
  const list = await call(base, '/api/quotes', carol);
  assert.deepEqual(
    (list.json.quotes as { id: string }[]).map((q) => q.id),
    ['Q-1001', 'Q-1002'],
  );
  assert.equal((await call(base, '/api/quotes/Q-1003', carol)).status, 404);
  assert.deepEqual(await call(base, '/api/quotes', carol, { customer: 'X' }), {
    status: 403,
    json: { error: { code: 403, message: 'forbidden for role client' } },
  });
  assert.equal((await call(base, '/api/quotes/Q-1001/fields', carol, { field: 'premium', value: '1' })).status, 403);
  const alice = await signIn(base, 'alice');
  assert.equal((await call(base, '/api/quotes/Q-1001/fields', alice, { field: 'colour', value: 'red' })).status, 400);
  const saved = await call(base, '/api/quotes/Q-1001/fields', alice, { field: 'premium', value: '13000' });
  assert.equal(saved.status, 200, JSON.stringify(saved.json));
  assert.equal((saved.json.quote as { version: number }).version, 1);
});

test('rooms: each role enters its rooms and is refused the others with 103, through the SDK', async (t) => {
  const { base } = await startApp(t);
  const ws = base.replace('http', 'ws') + '/connection/websocket';
  const outcome = async (user: string, channel: string): Promise<string> => {
    const cookie = await signIn(base, user);
    const { token } = (await call(base, '/api/token', cookie)).json as { token: string };
    const c = new Centrifuge(ws, { websocket: WebSocket, token });
    t.after(() => c.disconnect());
    const s = c.newSubscription(channel);
    const done = new Promise<string>((resolve) => {
      s.on('subscribed', () => resolve('in'));
      s.on('unsubscribed', (ctx) => resolve(`refused ${ctx.code}`));
      s.on('error', (ctx) => resolve(`error ${ctx.error.code}`));
    });
    s.subscribe();
    c.connect();
    return done;
  };
  const cases: [string, string, string][] = [
    ['alice', 'quotes:list', 'in'],
    ['alice', 'quote:Q-1001', 'in'],
    ['alice', 'agent:lobby', 'in'],
    ['alice', 'analytics:live', 'in'],
    ['alice', 'notifications:#alice', 'in'],
    ['alice', 'notifications:#bob', 'refused 103'],
    ['alice', 'admin:ops', 'refused 103'],
    ['carol', 'quote:Q-1001', 'in'],
    ['carol', 'policy:Q-1001', 'in'],
    ['carol', 'quotes:list', 'refused 103'],
    ['carol', 'agent:lobby', 'refused 103'],
    ['dave', 'admin:ops', 'in'],
    ['dave', 'connection:log', 'in'],
  ];
  for (const [user, channel, want] of cases) assert.equal(await outcome(user, channel), want, `${user} → ${channel}`);
});

test('the catalogue: switchboard.json and the generated types are what their sources make', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quoting-catalogue-'));
  execFileSync(process.execPath, [join(HERE, 'scripts/catalogue.mjs'), join(dir, 'switchboard.json')]);
  assert.equal(
    readFileSync(join(dir, 'switchboard.json'), 'utf8'),
    readFileSync(join(HERE, 'switchboard.json'), 'utf8'),
    'run npm run catalogue',
  );
  const cli = join(HERE, '../../packages/server/bin/switchboard.js');
  execFileSync(process.execPath, [cli, 'types', '--config', join(HERE, 'switchboard.json'), '--out', join(dir, 'types.ts')]);
  const strip = (s: string) => s.replace(/^\/\/ Generated by .*\n/, '');
  assert.equal(
    strip(readFileSync(join(dir, 'types.ts'), 'utf8')),
    strip(readFileSync(join(HERE, 'shared/realtime-types.ts'), 'utf8')),
    'run npm run catalogue',
  );
});
