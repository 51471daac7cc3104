/**
 * docs/WEBHOOKS.md as written: the receiver program (block
 * 'webhooks-receiver') runs against the package, type-checks, refuses a
 * forged delivery, and prints the events a real node sends it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { docBlock } from './helpers/docs.js';
import { docEnv, snippetFile, startShellUntil, typecheck } from './helpers/docs-run.js';
import { SECRET, embedded } from './helpers/embedded.js';
import { freePort } from './helpers/net.js';
import { RawClient } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { until } from './helpers/wait.js';

test('docs/WEBHOOKS.md: the receiver verifies signatures, refuses forgeries and prints what a node sends', async (t) => {
  const port = await freePort();
  const code = docBlock('docs/WEBHOOKS.md', 'webhooks-receiver').code;
  assert.match(code, /listen\(3001\)/);
  const file = snippetFile(t, code.replace('listen(3001)', `listen(${port}, '127.0.0.1')`), 'ts');
  assert.deepEqual(typecheck([file.replace(/\.mjs$/, '.mts')]), [], 'the snippet type-checks against the package');
  const url = `http://127.0.0.1:${port}/hooks`;
  const receiver = await startShellUntil(
    t,
    `exec node ${file}`,
    async () => (await fetch(url, { method: 'POST', body: '{}' })).status === 401,
    docEnv({ WEBHOOK_SECRET: 'doc-secret' }),
  );
  const forged = await fetch(url, {
    method: 'POST',
    headers: { 'x-switchboard-signature': 'sha256=00', 'x-switchboard-timestamp': String(Math.floor(Date.now() / 1000)) },
    body: '{"id":"x","type":"connect"}',
  });
  assert.equal(forged.status, 401);

  const node = await embedded(t, {
    channel: { without_namespace: { allow_subscribe_for_client: true } },
    webhooks: { secret: 'doc-secret', endpoints: [{ name: 'doc', url, events: ['connect', 'subscribe'] }] },
  });
  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: 'dora' }));
  assert.ok((await c.command('subscribe', { channel: 'news' })).subscribe);
  await until(
    'the receiver prints both events',
    15_000,
    () => /connect dora/.test(receiver.stdout()) && /subscribe dora news/.test(receiver.stdout()),
  );
  await until('both acknowledged', 5000, async () => (await node.sb.engine.outbox!.size()) === 0);
  assert.equal(receiver.stdout().trim().split('\n').length, 2, receiver.stdout());
});
