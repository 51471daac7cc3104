/**
 * docs/ADMIN.md as written: its config starts a node with the dashboard on,
 * its shell lines log in and call the admin API, and the screenshots it
 * shows exist.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO, docBlock, docBlocks } from './helpers/docs.js';
import { runShell } from './helpers/docs-run.js';
import { startServer } from './helpers/server.js';

test('ADMIN.md: the config turns the dashboard on and the curl lines log in and call the admin API', async (t) => {
  const configs = docBlocks('docs/ADMIN.md').filter((b) => b.marker?.kind === 'config');
  assert.equal(configs.length, 1);
  const cfg = JSON.parse(configs[0]!.code) as Record<string, unknown>;
  const s = await startServer(t, { ...cfg, log: { level: 'warn' } }, { timeoutMs: 60_000 });
  const page = await fetch(`${s.http}/admin/`);
  assert.equal(page.status, 200);
  const cmd = docBlock('docs/ADMIN.md', 'admin-login').code.replaceAll('http://localhost:8000', s.http);
  assert.notEqual(cmd, docBlock('docs/ADMIN.md', 'admin-login').code, 'the block names the default port');
  const { stdout } = await runShell(t, cmd);
  const answer = JSON.parse(stdout) as { result: { nodes: unknown[] } };
  assert.equal(answer.result.nodes.length, 1);
});

test('ADMIN.md: the screenshots it shows are committed', () => {
  for (const png of ['admin-dashboard.png', 'admin-login.png']) assert.ok(existsSync(join(REPO, 'docs/images', png)), png);
});
