/**
 * The README's quick start and embedding, docs/PROTOCOL.md's Node client and
 * docs/EMBEDDING.md's program, run as written. The only changes made to a
 * block are the documented ports (8000, 3000), replaced by free ones, and
 * the address the dev server binds (loopback only in tests).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, docBlock, shellCommands } from './helpers/docs.js';
import { docEnv, healthy, runShell, snippetFile, startShell, startShellUntil, typecheck } from './helpers/docs-run.js';
import { freePort } from './helpers/net.js';
import { makeClient, subscribe } from './helpers/sdk.js';
import { until, waitFor } from './helpers/wait.js';

const withPort = (code: string, from: number, to: number): string => code.replaceAll(`:${from}`, `:${to}`);

test('README quick start: npm start, the client snippet and the curl line work together (room, dev mode)', async (t) => {
  const qs = shellCommands(docBlock('README.md', 'readme-quickstart').code);
  // `npm ci` and `npm test` are what CI itself runs before this test; `npm start` is
  // the build (done by `npm test`) and then the serve command, which runs here.
  assert.deepEqual(qs, ['npm ci && npm start', 'npm test']);
  const start = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  const m = /^npm run build -w @switchboard\/server && (.+)$/.exec(start);
  assert.ok(m, `unexpected start script: ${start}`);

  const port = await freePort();
  const env = docEnv({ SWITCHBOARD_HTTP_SERVER_PORT: String(port), SWITCHBOARD_HTTP_SERVER_ADDRESS: '127.0.0.1' });
  const server = await startShellUntil(
    t,
    m[1]!,
    async (p) => /connection token for user "dev"/.test(p.stdout()) && (await healthy(port)),
    env,
  );
  const token = /a connection token for user "dev" \(24h\): (\S+)/.exec(server.stdout())?.[1];
  const key = /http_api\.key = (\S+)/.exec(server.stdout())?.[1];
  assert.ok(token && key, server.stdout());

  const client = snippetFile(t, withPort(docBlock('README.md', 'readme-client').code, 8000, port), 'js');
  const c = startShell(t, `exec node ${client}`, docEnv({ TOKEN: token }));
  await until('the README client to be subscribed to room', 15_000, async () => {
    assert.ok(c.alive(), `client exited\n${c.stdout()}\n${c.stderr()}`);
    const r = await fetch(`http://127.0.0.1:${port}/api/channels`, { method: 'POST', headers: { 'x-api-key': key }, body: '{}' });
    const body = (await r.json()) as { result?: { channels?: Record<string, { num_clients: number }> } };
    return (body.result?.channels?.room?.num_clients ?? 0) >= 1;
  });

  const curl = await runShell(t, withPort(docBlock('README.md', 'readme-curl').code, 8000, port), docEnv({ KEY: key }));
  assert.match(curl.stdout, /"result"/, curl.stdout + curl.stderr);
  await until('the client to print the publication', 15_000, () => c.stdout().includes("{ text: 'hi' }"));

  // docs/PROTOCOL.md's Node client with in-order delivery connects to the same server.
  const ordered = snippetFile(t, withPort(docBlock('docs/PROTOCOL.md', 'protocol-ordered-ws').code, 8000, port), 'js');
  const o = startShell(t, `exec node ${ordered}`, docEnv({ TOKEN: token }));
  await until('the PROTOCOL.md client to connect', 15_000, () => {
    assert.ok(o.alive() || o.stdout().includes('connected'), `exited\n${o.stdout()}\n${o.stderr()}`);
    return o.stdout().includes('connected');
  });
});

test('README embedding: the app serves WebSocket clients, hooks answer, publish works', async (t) => {
  const port = await freePort();
  const code = docBlock('README.md', 'readme-embedding').code;
  assert.match(code, /listen\(3000\)/);
  const file = snippetFile(t, withPort(code.replace('listen(3000)', `listen(${port}, '127.0.0.1')`), 3000, port), 'ts');
  assert.deepEqual(typecheck([file.replace(/\.mjs$/, '.mts')]), [], 'the snippet type-checks against the package');
  const app = await startShellUntil(t, `exec node ${file}`, async () => (await fetch(`http://127.0.0.1:${port}/`)).ok);
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'your app');
  const c = makeClient(t, { ws: `ws://127.0.0.1:${port}/connection/websocket` });
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  await subscribe(c, 'chat:room');
  const reply = await c.rpc('anything', { n: 1 });
  assert.deepEqual(reply.data, { echo: { n: 1 } });
  assert.ok(app.alive());
});

test('docs/EMBEDDING.md: the program runs; hooks allow, defer and refuse as documented; SIGTERM drains', async (t) => {
  const port = await freePort();
  const code = docBlock('docs/EMBEDDING.md', 'embedding-hooks').code;
  assert.match(code, /listen\(8000\)/);
  const file = snippetFile(t, code.replace('listen(8000)', `listen(${port}, '127.0.0.1')`), 'ts');
  assert.deepEqual(typecheck([file.replace(/\.mjs$/, '.mts')]), [], 'the snippet type-checks against the package');
  const app = await startShellUntil(t, `exec node ${file}`, async (p) => p.stdout().length > 0);
  // In-process history returns parsed data, as the HTTP API does.
  await until('the history line', 5000, () => app.stdout().includes('\n'));
  assert.equal(app.stdout().trim(), "[ { text: 'hi' } ]", app.stderr());

  const c = makeClient(t, { ws: `ws://127.0.0.1:${port}/connection/websocket` });
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  // onSubscribe returns {} for a member: allowed.
  const { sub } = await subscribe(c, 'chat:lobby');
  // onSubscribe returns undefined for a non-member: the namespace (no allow_subscribe_*) refuses with 103.
  const other = c.newSubscription('chat:other');
  const refused = waitFor<{ code: number }>(other, 'unsubscribed');
  other.subscribe();
  assert.equal((await refused).code, 103);
  // onPublish returns {} for valid data: published (the namespace alone would refuse).
  const got = waitFor<{ data: unknown }>(sub, 'publication');
  await sub.publish({ text: 'from client' });
  assert.deepEqual((await got).data, { text: 'from client' });
  // Invalid data: the hook throws badRequest.
  await assert.rejects(sub.publish({ nope: 1 }), (e: { code: number }) => e.code === 107);
  assert.deepEqual((await c.rpc('quote:get', { s: 'ACME' })).data, { method: 'quote:get', echo: { s: 'ACME' } });

  // On SIGTERM the program disconnects the user and drains: the client is sent away.
  const away = Promise.race([waitFor(c, 'connecting', { ms: 10_000 }), waitFor(c, 'disconnected', { ms: 10_000 })]);
  app.kill('SIGTERM');
  await away;
  const exit = await app.exited;
  assert.equal(exit.code, 0, app.stderr());
});
