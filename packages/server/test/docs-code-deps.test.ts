/**
 * The stated minimum (Node ≥ 20) holds for what `npm ci` installs, and the
 * example nginx config forwards the Host the browser sent.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { Switchboard } from '../src/node.js';
import { upgradeStatus } from './helpers/net.js';
import type { TestContextLike } from './helpers/scope.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(v: string, range: string): boolean;
  minVersion(r: string): { version: string };
};

interface LockEntry {
  version?: string;
  dev?: boolean;
  engines?: Record<string, string> | string[];
}

test('every package npm ci installs accepts the Node versions the project states', () => {
  const root = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const minimum = semver.minVersion(root.engines.node).version;
  const lock = JSON.parse(readFileSync(resolve(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const runtimeTooNew: string[] = [];
  const tooNewHere: string[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    const range = p.engines && !Array.isArray(p.engines) ? p.engines.node : undefined;
    if (!path || !range) continue;
    // What the server runs with must work on the oldest Node we claim; dev tools at least on this one (CI's).
    if (!p.dev && !semver.satisfies(minimum, range)) runtimeTooNew.push(`${path}@${p.version} needs node ${range}`);
    if (!semver.satisfies(process.versions.node, range)) tooNewHere.push(`${path}@${p.version} needs node ${range}`);
  }
  assert.deepEqual(runtimeTooNew, [], `runtime dependencies that need more than node ${minimum}`);
  assert.deepEqual(tooNewHere, [], `packages that need more than this node (${process.versions.node})`);
});

test('the cookie path of light-my-request (Fastify inject) runs on this Node', async (t) => {
  const app = Fastify();
  app.get('/echo', async (req) => ({ cookie: req.headers.cookie }));
  t.after(() => app.close());
  const r = await app.inject({ method: 'GET', url: '/echo', cookies: { a: '1', b: 'x y' } });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { cookie: 'a=1; b=x%20y' });
});

async function attached(t: TestContextLike): Promise<string> {
  // Default allowed_origins (none): same origin only, the Origin's host:port compared with Host.
  const sb = new Switchboard({ config: { log: { level: 'error' }, client: { token: { hmac_secret_key: 's' } } } });
  const app = Fastify();
  await sb.start();
  sb.attach(app.server);
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await sb.shutdown();
    await app.close();
  });
  const addr = app.server.address();
  return `ws://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/connection/websocket`;
}

test('examples/nginx forwards $http_host: a page on a non-default port passes the same-origin check', async (t) => {
  const conf = readFileSync(resolve(ROOT, 'examples/nginx/nginx.conf'), 'utf8');
  const hosts = [...conf.matchAll(/^\s*proxy_set_header\s+Host\s+(\S+);/gm)].map((m) => m[1]);
  assert.ok(hosts.length > 0, 'the config sets Host');
  assert.deepEqual(
    hosts.filter((h) => h !== '$http_host'),
    [],
    'every location forwards the Host header as sent ($host drops the port)',
  );
  // Why: what each variable forwards for a page at http://example.test:8080.
  const ws = await attached(t);
  assert.equal(await upgradeStatus(ws, { origin: 'http://example.test:8080', host: 'example.test:8080' }), 101, '$http_host');
  assert.equal(await upgradeStatus(ws, { origin: 'http://example.test:8080', host: 'example.test' }), 403, '$host');
});
