#!/usr/bin/env node
// The `switchboard` command. A committed file (executable in git) rather than
// the compiled dist/src/cli.js: npm links bins before the root `prepare`
// script builds dist/, so a bin pointing into dist/ would be a dangling,
// non-executable link on a fresh clone. When dist/ is missing (an install
// with scripts off, or after a clean) this says how to build instead of a
// bare ERR_MODULE_NOT_FOUND.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write(
    'switchboard: the server is not built (no packages/server/dist).\n' +
      'Build it from the repository root with:  npm run build -w @switchboard/server\n',
  );
  process.exit(1);
}
await import(cli.href);
