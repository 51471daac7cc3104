/**
 * The commands of examples/*\/README.md and docs/SCALING.md, run as written
 * from the repo root (`npx switchboard …` included: it must work on a fresh
 * clone after `npm ci` and the build). Documented ports are replaced by free
 * ones; servers bind loopback; the Redis prefix is unique per test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, docBlock, shellCommands } from './helpers/docs.js';
import { docEnv, healthy, runShell, startShell, startShellUntil, typecheck } from './helpers/docs-run.js';
import { freePort } from './helpers/net.js';
import { makeClient } from './helpers/sdk.js';
import type { TestContextLike } from './helpers/scope.js';
import { GiveUp, until, waitFor } from './helpers/wait.js';

const JWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/m;

test('examples/config: serve and token, run as written, agree on the secret (the token connects)', async (t) => {
  const port = await freePort();
  const block = docBlock('examples/config/README.md', 'example-config').code;
  const env = docEnv({ SWITCHBOARD_HTTP_SERVER_PORT: String(port), SWITCHBOARD_HTTP_SERVER_ADDRESS: '127.0.0.1' });
  // The block starts the server in the background and mints a token; the group is killed at the end.
  const run = startShell(t, block, env);
  await until('the token and the server', 30_000, async () => {
    // The shell exits after `token`; the server it put in the background keeps running.
    if (!run.alive() && !JWT.test(run.stdout())) throw new GiveUp(`exited\n${run.stdout()}\n${run.stderr()}`);
    return JWT.test(run.stdout()) && (await healthy(port).catch(() => false));
  });
  const token = JWT.exec(run.stdout())![0];
  const c = makeClient(t, { ws: `ws://127.0.0.1:${port}/connection/websocket` }, { token });
  const subscribed = new Set<string>();
  c.on('subscribed', (s) => subscribed.add(s.channel));
  const connected = waitFor<{ client: string }>(c, 'connected');
  c.connect();
  await connected;
  // The token's channels claim (project:7, agent:a1) and the config's server-side rooms.
  await until('server-side subscriptions', 10_000, () => ['global', 'user:42', 'project:7', 'agent:a1'].every((ch) => subscribed.has(ch)));
});

test('examples/fastify-app: build, start, and the curl line publishes', async (t) => {
  const cmds = shellCommands(docBlock('examples/fastify-app/README.md', 'example-fastify').code);
  assert.equal(cmds[0], 'npm run build'); // done by `npm test` before the tests run
  assert.equal(cmds.length, 3);
  const port = await freePort();
  await startShellUntil(t, cmds[1]!, (p) => p.stdout().includes('example app on'), docEnv({ PORT: String(port) }));
  const r = await runShell(t, `${cmds[2]!.replaceAll('localhost:3000', `localhost:${port}`)} -w '\\n%{http_code}'`);
  assert.match(r.stdout, /\n200$/, r.stdout + r.stderr);
});

/** Removes `src/realtime-types.ts` (and `src/` if this test created it) from the repo root. */
function cleanGenerated(t: TestContextLike): { file: string; dir: string } {
  const dir = join(REPO, 'src');
  const existed = existsSync(dir);
  const file = join(dir, 'realtime-types.ts');
  // Never delete a file of the developer's own.
  if (existsSync(file)) throw new Error(`${file} exists already: move it away to run this test`);
  t.after(() => {
    rmSync(file, { force: true });
    rmSync(join(dir, 'docs-test-usage.ts'), { force: true });
    if (!existed) rmSync(dir, { recursive: true, force: true });
  });
  return { file, dir };
}

test('examples/schemas: `types --out` writes the file (creating its folder), and the usage snippet type-checks against it', async (t) => {
  const { file, dir } = cleanGenerated(t);
  const cmds = shellCommands(docBlock('examples/schemas/README.md', 'example-schemas-types').code);
  assert.deepEqual(cmds, ['npx switchboard types --config examples/schemas/switchboard.json --out src/realtime-types.ts']);
  await runShell(t, cmds[0]!);
  assert.match(readFileSync(file, 'utf8'), /PublicationOf/);

  const usage = join(dir, 'docs-test-usage.ts');
  const check = (code: string): string[] => {
    writeFileSync(usage, code);
    return typecheck([usage]);
  };
  const snippet = docBlock('examples/schemas/README.md', 'example-schemas-usage').code;
  assert.deepEqual(check(snippet), []);
  // And the check can fail: a wrong field type in the same snippet is an error.
  assert.ok(snippet.includes('price: 12.5'));
  assert.notDeepEqual(check(snippet.replace('price: 12.5', "price: '12.5'")), []);
});

test('docs/SCALING.md: each serve line starts (two nodes share Redis; workers share a port)', async (t) => {
  const cmds = shellCommands(docBlock('docs/SCALING.md', 'scaling-serve').code);
  assert.equal(cmds.length, 4);
  const prefix = 'docs-scaling-' + randomBytes(4).toString('hex');
  const keys: Array<{ port: number; key: string }> = [];
  for (const cmd of cmds) {
    const port = await freePort();
    const fixed = /-p (\d+)/.exec(cmd);
    const line = fixed ? cmd.replace(fixed[0], `-p ${port}`) : cmd;
    const env = docEnv({
      SWITCHBOARD_ENGINE_REDIS_PREFIX: prefix,
      SWITCHBOARD_HTTP_SERVER_ADDRESS: '127.0.0.1',
      ...(fixed ? {} : { SWITCHBOARD_HTTP_SERVER_PORT: String(port) }),
    });
    const KEY = /http_api\.key = (\S+)/;
    // A single node prints its generated API key after it listens; workers are only checked for /health.
    const p = await startShellUntil(t, line, async (l) => (!fixed || KEY.test(l.stdout())) && (await healthy(port)), env, 60_000);
    if (fixed) keys.push({ port, key: KEY.exec(p.stdout())![1]! });
    else {
      p.kill('SIGKILL');
      await p.exited;
    }
  }
  // The two single nodes see each other through Redis.
  const { port, key } = keys[0]!;
  await until('both nodes in info', 15_000, async () => {
    const r = await fetch(`http://127.0.0.1:${port}/api/info`, { method: 'POST', headers: { 'x-api-key': key }, body: '{}' });
    const body = (await r.json()) as { result?: { nodes?: unknown[] } };
    return (body.result?.nodes?.length ?? 0) === 2;
  });
});

test('examples/nginx: the config forwards Host with its port, as the README says', () => {
  const conf = readFileSync(join(REPO, 'examples/nginx/nginx.conf'), 'utf8');
  const hosts = [...conf.matchAll(/proxy_set_header\s+Host\s+(\S+);/g)].map((m) => m[1]);
  assert.ok(hosts.length > 0);
  assert.deepEqual(
    hosts.filter((h) => h !== '$http_host'),
    [],
  );
  assert.match(readFileSync(join(REPO, 'examples/nginx/README.md'), 'utf8'), /\$http_host/);
});
