/**
 * docs/MAPS.md as written: its config starts a node (check-config is run on
 * it by docs-inventory), and its curl lines publish, read and remove a key
 * of a map channel through the HTTP API.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { docBlock, docBlocks } from './helpers/docs.js';
import { docEnv, runShell } from './helpers/docs-run.js';
import { startServer } from './helpers/server.js';

test('MAPS.md: the config starts a node and the curl lines set, read and remove a key', async (t) => {
  const configs = docBlocks('docs/MAPS.md').filter((b) => b.marker?.kind === 'config');
  assert.equal(configs.length, 1);
  const cfg = JSON.parse(configs[0]!.code) as Record<string, unknown>;
  const s = await startServer(t, { ...cfg, log: { level: 'warn' } }, { timeoutMs: 60_000 });
  const block = docBlock('docs/MAPS.md', 'maps-api').code;
  const cmd = block.replaceAll('http://localhost:8000', s.http);
  assert.notEqual(cmd, block, 'the block names the default port');
  const { stdout } = await runShell(t, cmd, docEnv({ KEY: s.apiKey }));
  // curl prints the bodies back to back, no newline between them
  const answers = stdout
    .trim()
    .replace(/}\s*{/g, '}\n{')
    .split('\n')
    .map((l) => JSON.parse(l) as { result: any });
  assert.equal(answers.length, 5);
  assert.equal(answers[0]!.result.offset, 1);
  assert.equal(answers[1]!.result.suppress_reason, 'key_exists');
  assert.deepEqual(
    answers[2]!.result.publications.map((e: any) => [e.key, e.data, e.tags]),
    [['premium', { value: 1250 }, { section: 'pricing' }]],
  );
  assert.equal(answers[3]!.result.offset, 2);
  assert.deepEqual(answers[4]!.result, { num_keys: 0 });
});
