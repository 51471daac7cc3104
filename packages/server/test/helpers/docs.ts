/**
 * The docs' code blocks, read with `marked`'s lexer (we write only the glue).
 *
 * Every fenced block in README.md, docs/*.md and examples/*\/README.md has a
 * marker: an HTML comment on the line(s) before it, invisible when rendered:
 *
 *   <!-- doc-test: run ID -->        a docs-*.test.ts runs it (and names ID)
 *   <!-- doc-test: config -->        a config file: `check-config` must accept it
 *   <!-- doc-test: excerpt PATH -->  its lines appear, in order, in PATH (repo-relative)
 *   <!-- doc-test: output -->        shows output, a tree or a diagram: nothing to run
 *   <!-- doc-test: manual REASON --> a command CI cannot run (needs minutes or other hosts)
 *
 * `docs-inventory.test.ts` fails on a block without one, so a new block
 * cannot slip past untested.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lexer, type Token, type Tokens } from 'marked';

/** dist/test/helpers → the repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..');

export const MARKER_KINDS = ['run', 'config', 'excerpt', 'output', 'manual'] as const;
export type MarkerKind = (typeof MARKER_KINDS)[number];

export interface DocBlock {
  /** Repo-relative path of the Markdown file. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /** The marker before the block, if any; `kind` is not checked here. */
  marker?: { kind: string; arg: string };
}

/** README.md, docs/*.md and examples/*\/README.md, repo-relative. */
export function docFiles(): string[] {
  const files = ['README.md'];
  for (const f of readdirSync(join(REPO, 'docs')).sort()) if (f.endsWith('.md')) files.push(`docs/${f}`);
  for (const d of readdirSync(join(REPO, 'examples')).sort()) {
    if (existsSync(join(REPO, 'examples', d, 'README.md'))) files.push(`examples/${d}/README.md`);
  }
  return files;
}

const MARKER = /^<!--\s*doc-test:\s*([a-z-]+)\s*(.*?)\s*-->\s*$/s;

/** Every fenced or indented code block of one file, in order, with its marker. */
export function docBlocks(file: string): DocBlock[] {
  const src = readFileSync(join(REPO, file), 'utf8');
  const blocks: DocBlock[] = [];
  let cursor = 0;
  let pending: DocBlock['marker'];
  const visit = (tokens: Token[]): void => {
    for (const tok of tokens) {
      if (tok.type === 'space') continue;
      if (tok.type === 'html') {
        const m = MARKER.exec(tok.raw.trim());
        if (m) {
          pending = { kind: m[1]!, arg: m[2]! };
          continue;
        }
      }
      if (tok.type === 'code') {
        const code = tok as Tokens.Code;
        const at = src.indexOf(code.raw, cursor);
        if (at >= 0) cursor = at + code.raw.length;
        const line = at >= 0 ? src.slice(0, at).split('\n').length : 0;
        blocks.push({ file, line, lang: (code.lang ?? '').split(/\s/)[0] ?? '', code: code.text, marker: pending });
        pending = undefined;
        continue;
      }
      pending = undefined;
      const nested = (tok as { tokens?: Token[] }).tokens;
      if (nested) visit(nested);
      const items = (tok as { items?: Token[] }).items;
      if (items) visit(items);
    }
  };
  visit(new Lexer({ gfm: true }).lex(src));
  return blocks;
}

/** The block of `file` marked `<!-- doc-test: run ID -->`; throws when there is none. */
export function docBlock(file: string, id: string): DocBlock {
  const found = docBlocks(file).filter((b) => b.marker?.kind === 'run' && b.marker.arg === id);
  if (found.length !== 1) throw new Error(`${file}: expected one block marked "doc-test: run ${id}", found ${found.length}`);
  return found[0]!;
}

/** The block's commands: lines joined at trailing backslashes, comments and blank lines dropped. */
export function shellCommands(code: string): string[] {
  const joined = code.replace(/\\\n\s*/g, '');
  return joined
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l.length > 0);
}
