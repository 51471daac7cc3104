/**
 * The Python example (examples/python) run as a user would, with Debian's
 * python3-websockets: it mints its own HS256 token, connects with the JSON
 * protocol, subscribes, publishes through the HTTP API and receives the
 * publication over the socket. .ci/run installs python3-websockets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { scope } from './helpers/scope.js';
import { startServer } from './helpers/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const SCRIPT = resolve(ROOT, 'examples/python/client.py');
const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);
const S = scope();
after(() => S.close());

/** Debian's python3 with its websockets module; under CI a missing one is a failure, not a skip. */
async function pythonWithWebsockets(): Promise<string | undefined> {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  try {
    await run(PYTHON, ['-c', 'import websockets']);
    return undefined;
  } catch {
    return 'python3-websockets is not installed (apt-get install python3-websockets)';
  }
}

const missing = await pythonWithWebsockets();
if (missing && process.env.CI) throw new Error(`example-python: ${missing}; .ci/run installs it`);

test('the Python example connects, subscribes, publishes through the API and receives its publication', { skip: missing }, async () => {
  const s = await startServer(S, {
    channel: { without_namespace: { allow_subscribe_for_client: true, history_size: 10, history_ttl: '60s' } },
  });
  const { stdout } = await run(PYTHON, [SCRIPT, '--url', s.http, '--secret', s.secret, '--api-key', s.apiKey, '--channel', 'news'], {
    timeout: 30_000,
  });
  const steps = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: string; [k: string]: unknown });
  const by = (name: string) => steps.find((x) => x.step === name);
  assert.deepEqual(
    steps.map((x) => x.step),
    ['connected', 'subscribed', 'published', 'received', 'history', 'bad input answered'],
  );
  assert.match(String(by('connected')!.client), /^[0-9a-f-]{36}$/);
  assert.equal(by('received')!.channel, 'news');
  assert.equal((by('received')!.data as { text: string }).text, 'hello from Python');
  assert.equal(by('history')!.publications, 1);
  assert.equal((by('bad input answered')!.error as { code: number }).code, 107);
});
