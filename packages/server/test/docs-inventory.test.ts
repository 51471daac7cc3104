/**
 * Every code block of the docs is accounted for: marked to run (and some
 * docs-*.test.ts names its id), a config `check-config` accepts, an excerpt
 * of a file that still contains it, or output / a manual command. A new
 * block without a marker fails here, so it cannot slip past untested.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MARKER_KINDS, REPO, docBlocks, docFiles, type DocBlock } from './helpers/docs.js';
import { tempDir } from './helpers/scope.js';
import { runCli } from './helpers/server.js';

const all: DocBlock[] = docFiles().flatMap(docBlocks);
const where = (b: DocBlock): string => `${b.file}:${b.line}`;

test('the docs have code blocks, and every one has a known marker', () => {
  assert.ok(all.length > 15, `found only ${all.length} blocks`);
  const bad = all
    .filter((b) => !b.marker || !(MARKER_KINDS as readonly string[]).includes(b.marker.kind))
    .map((b) => `${where(b)} ${b.marker ? `unknown marker "${b.marker.kind}"` : 'has no <!-- doc-test: … --> marker'}`);
  assert.deepEqual(bad, []);
  const noReason = all.filter((b) => (b.marker?.kind === 'manual' || b.marker?.kind === 'excerpt') && !b.marker.arg).map(where);
  assert.deepEqual(noReason, [], 'manual blocks need a reason, excerpts a file');
});

test('every block marked run is run by a docs-*.test.ts that names its id, and ids are unique', () => {
  // The TypeScript sources sit next to dist/ in the clone.
  const srcDir = join(dirname(fileURLToPath(import.meta.url)), '../../test');
  const sources = readdirSync(srcDir)
    .filter((f) => /^docs-.*\.test\.ts$/.test(f))
    .map((f) => readFileSync(join(srcDir, f), 'utf8'))
    .join('\n');
  const run = all.filter((b) => b.marker?.kind === 'run');
  assert.ok(run.length >= 8);
  const ids = run.map((b) => b.marker!.arg);
  assert.deepEqual(
    ids.filter((id, i) => ids.indexOf(id) !== i),
    [],
    'duplicate run ids',
  );
  const unclaimed = run.filter((b) => !sources.includes(`'${b.marker!.arg}'`)).map((b) => `${where(b)} run ${b.marker!.arg}`);
  assert.deepEqual(unclaimed, [], 'no docs-*.test.ts names these ids');
});

test('every excerpt still matches the file it is taken from', () => {
  const stale: string[] = [];
  const excerpts = all.filter((x) => x.marker?.kind === 'excerpt');
  assert.ok(excerpts.length >= 1);
  for (const b of excerpts) {
    const lines = readFileSync(join(REPO, b.marker!.arg), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    let at = 0;
    for (const want of b.code.split('\n').map((l) => l.trim())) {
      if (!want || want === '…' || want === '...') continue;
      const i = lines.indexOf(want, at);
      if (i < 0) {
        stale.push(`${where(b)}: "${want}" is not in ${b.marker!.arg} (in order)`);
        break;
      }
      at = i + 1;
    }
  }
  assert.deepEqual(stale, []);
});

test('every config block passes check-config without warnings', async (t) => {
  const configs = all.filter((b) => b.marker?.kind === 'config');
  assert.ok(configs.length >= 2);
  const dir = tempDir(t);
  for (const [i, b] of configs.entries()) {
    const file = join(dir, `c${i}.${b.lang === 'yaml' || b.lang === 'yml' ? 'yaml' : 'json'}`);
    writeFileSync(file, b.code);
    const r = await runCli(['check-config', '--config', file]);
    assert.equal(r.code, 0, `${where(b)}: check-config failed\n${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, '', `${where(b)}: check-config warned\n${r.stderr}`);
  }
});
