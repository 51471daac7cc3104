/**
 * The reference docs name exactly what the code has, in both directions:
 * config keys (docs/CONFIGURATION.md vs the TypeBox schema), server API
 * methods (docs/API.md vs the API schemas), CLI flags (docs vs
 * `switchboard --help`) and metric names (docs vs a real /metrics scrape).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Lexer, type Tokens } from 'marked';
import type { TSchema } from '@sinclair/typebox';
import { API_METHODS } from '../src/api/schemas.js';
import { ConfigSchema } from '../src/config/schema.js';
import { REPO, docFiles } from './helpers/docs.js';
import { tempDir } from './helpers/scope.js';
import { runCli, startServer } from './helpers/server.js';

const read = (f: string): string => readFileSync(join(REPO, f), 'utf8');

/** The first cell of every table row of a Markdown file, with the table's header cells. */
function tableRows(file: string): Array<{ header: string[]; first: string; row: string[] }> {
  const rows: Array<{ header: string[]; first: string; row: string[] }> = [];
  for (const tok of new Lexer({ gfm: true }).lex(read(file))) {
    if (tok.type !== 'table') continue;
    const t = tok as Tokens.Table;
    const header = t.header.map((h) => h.text);
    for (const r of t.rows) rows.push({ header, first: r[0]!.text, row: r.map((c) => c.text) });
  }
  return rows;
}

/** Leaf key paths of the config schema; arrays of objects as `[]`. */
function schemaLeaves(s: TSchema, prefix: string, out: Set<string>): Set<string> {
  const props = (s as { properties?: Record<string, TSchema> }).properties;
  const items = (s as { items?: TSchema }).items;
  if (s.type === 'object' && props) for (const [k, v] of Object.entries(props)) schemaLeaves(v, prefix ? `${prefix}.${k}` : k, out);
  else if (s.type === 'array' && items && (items as { properties?: unknown }).properties) schemaLeaves(items, `${prefix}[]`, out);
  else out.add(prefix);
  return out;
}

/**
 * Keys named by the first column of CONFIGURATION.md's tables:
 * `a.b.c / d` is a.b.c and a.b.d; a `.*` suffix covers every key below;
 * the namespace-options table (header "option") names keys of
 * channel.without_namespace and of each channel.namespaces[] entry.
 */
function documentedKeys(): string[] {
  const keys: string[] = [];
  for (const { header, first } of tableRows('docs/CONFIGURATION.md')) {
    if (header[0] !== 'key' && header[0] !== 'option') continue;
    const parts = first
      .replace(/★|`/g, '')
      .split(/[/,]/)
      .map((p) => p.trim())
      .filter(Boolean);
    let base = '';
    for (const p of parts) {
      const full = p.includes('.') || !base ? p : base.slice(0, base.lastIndexOf('.') + 1) + p;
      if (!base) base = full;
      if (header[0] === 'option') keys.push(`channel.without_namespace.${full}`, `channel.namespaces[].${full}`);
      else keys.push(full);
    }
  }
  return keys;
}

test('every config key in the schema is documented in docs/CONFIGURATION.md, and every documented key exists', () => {
  const leaves = schemaLeaves(ConfigSchema, '', new Set());
  const documented = documentedKeys();
  const covers = (doc: string, leaf: string): boolean => (doc.endsWith('.*') ? leaf.startsWith(doc.slice(0, -1)) : doc === leaf);
  const unknown = documented.filter((d) => ![...leaves].some((l) => covers(d, l)));
  assert.deepEqual(unknown, [], 'documented in CONFIGURATION.md but not in src/config/schema.ts');
  const undocumented = [...leaves].filter((l) => !documented.some((d) => covers(d, l)));
  assert.deepEqual(undocumented, [], 'in src/config/schema.ts but not in a table of CONFIGURATION.md');
});

test('config key paths named anywhere in the docs exist in the schema', () => {
  const leaves = [...schemaLeaves(ConfigSchema, '', new Set())];
  const tops = new Set(leaves.map((l) => l.split('.')[0]!));
  const bad: string[] = [];
  // ARCHITECTURE.md names code (`engine.broker.publish`, `node.ts`), not config.
  for (const f of docFiles().filter((x) => x !== 'docs/ARCHITECTURE.md')) {
    for (const m of read(f).matchAll(/`([a-z_]+(?:\.(?:[a-z_]+|\*))+)/g)) {
      const path = m[1]!;
      if (!tops.has(path.split('.')[0]!) || /\.(m?[jt]s|json|md|py|sh)$/.test(path)) continue;
      // "Centrifugo's `http_server.internal_port`" names Centrifugo's key, not ours.
      if (/Centrifugo's\s*$/.test(read(f).slice(Math.max(0, m.index - 20), m.index))) continue;
      // An RPC method of examples/fastify-app, not the `admin` config section.
      if (path === 'admin.kick') continue;
      const norm = path.replace('namespaces.', 'namespaces[].').replace(/\.\*$/, '');
      // A leaf, or an object that has leaves (a section such as `client.proxy`).
      if (!leaves.some((l) => l === norm || l.startsWith(norm + '.') || l.startsWith(norm + '[]'))) bad.push(`${f}: ${path}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('docs/API.md lists exactly the server API methods', () => {
  const documented = tableRows('docs/API.md')
    .filter((r) => r.header[0] === 'method')
    .map((r) => r.first.trim());
  assert.deepEqual([...documented].sort(), [...API_METHODS].sort());
});

test('CLI flags in the docs exist, and every flag of `switchboard --help` is documented', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  const helpFlags = new Set([...help.stdout.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1]!));
  const used = new Set<string>();
  for (const f of docFiles()) {
    // Flags in `switchboard …` command lines only (npm's and the bench's flags are not ours).
    for (const line of read(f).split('\n')) {
      for (const cmd of line.matchAll(/(?:\bswitchboard|cli\.js) (?:serve|token|check-config|types|--help|--version)([^`|]*)/g)) {
        for (const m of cmd[1]!.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)) used.add(m[1]!);
      }
    }
  }
  assert.deepEqual(
    [...used].filter((f) => !helpFlags.has(f)),
    [],
    'flags used in the docs that `switchboard --help` does not list',
  );
  const flagTable = new Set(
    tableRows('docs/CONFIGURATION.md')
      .filter((r) => r.header[0] === 'flag')
      .flatMap((r) => [...r.first.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!)),
  );
  assert.deepEqual(
    [...helpFlags].filter((f) => !flagTable.has(f)),
    [],
    'flags of `switchboard --help` missing from the flag table of CONFIGURATION.md',
  );
  assert.deepEqual(
    [...flagTable].filter((f) => !helpFlags.has(f)),
    [],
    'flags in CONFIGURATION.md that `switchboard --help` does not list',
  );
});

test('metric names in the docs match a real /metrics scrape, both ways', async (t) => {
  const server = await startServer(t);
  const text = await server.metricsText();
  const scraped = new Set([...text.matchAll(/^# TYPE (switchboard_\w+) /gm)].map((m) => m[1]!));
  assert.ok(scraped.size > 5, text);
  const inDocs = new Set<string>();
  for (const f of docFiles()) {
    for (const m of read(f).matchAll(/\bswitchboard_[a-z_]+[a-z]/g)) inDocs.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  }
  assert.deepEqual(
    [...inDocs].filter((n) => !scraped.has(n)),
    [],
    'metrics named in the docs that /metrics does not serve',
  );
  const table = new Set(
    tableRows('docs/API.md')
      .filter((r) => r.header[0] === 'metric')
      .map((r) => r.first.replace(/`/g, '').trim()),
  );
  assert.deepEqual(
    [...scraped].filter((n) => !table.has(n)),
    [],
    'metrics served on /metrics but missing from the metric table of docs/API.md',
  );
});

test('CONFIGURATION.md: check-config warns about a proxy endpoint left switched off, naming the key', async (t) => {
  assert.match(read('docs/CONFIGURATION.md'), /An `endpoint` without `enabled` is\s+never called[^.]*`check-config` warns, naming the key/);
  const dir = tempDir(t);
  const file = join(dir, 'proxy.json');
  writeFileSync(file, JSON.stringify({ client: { proxy: { connect: { endpoint: 'http://127.0.0.1:3000/connect' } } } }));
  const r = await runCli(['check-config', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: .*client\.proxy\.connect/, r.stderr);
});
