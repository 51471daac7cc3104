/**
 * docs/SHARED-POLL.md as written: the backend program (block
 * 'shared-poll-backend') type-checks, runs, signs keys that a real node
 * accepts, and answers the node's polls; the real SDK tracks its posts and
 * sees a vote arrive.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { docBlock } from './helpers/docs.js';
import { docEnv, snippetFile, startShellUntil, typecheck } from './helpers/docs-run.js';
import { embedded, SECRET } from './helpers/embedded.js';
import { freePort } from './helpers/net.js';
import { recordUpdates } from './helpers/poll-backend.js';
import { connectedClient } from './helpers/sdk.js';
import { until, waitFor } from './helpers/wait.js';

test('docs/SHARED-POLL.md: the backend signs, answers polls, and a vote reaches the tracking client', async (t) => {
  const port = await freePort();
  const code = docBlock('docs/SHARED-POLL.md', 'shared-poll-backend').code;
  assert.match(code, /listen\(3001\)/);
  const file = snippetFile(t, code.replace('listen(3001)', `listen(${port}, '127.0.0.1')`), 'ts');
  assert.deepEqual(typecheck([file.replace(/\.mjs$/, '.mts')]), [], 'the snippet type-checks');
  const base = `http://127.0.0.1:${port}`;
  await startShellUntil(
    t,
    `exec node ${file}`,
    async () => (await fetch(base + '/nothing', { method: 'POST' })).status === 404,
    docEnv({ SHARED_POLL_SECRET: 'doc-poll-secret' }),
  );

  const node = await embedded(t, {
    shared_poll: { hmac_secret_key: 'doc-poll-secret' },
    channel: {
      proxy: { shared_poll_refresh: { endpoint: base + '/refresh' } },
      namespaces: [
        {
          name: 'votes',
          subscription_type: 'shared_poll',
          allow_subscribe_for_client: true,
          shared_poll: { refresh_interval: '200ms', mode: 'versioned' },
        },
      ],
    },
  });
  const client = await connectedClient(t, { ws: node.ws, secret: SECRET }, 'reader');
  const sub = client.newSharedPollSubscription('votes:feed', {
    getSignature: async ({ keys }) => {
      const r = await fetch(base + '/sign', {
        method: 'POST',
        headers: { 'x-demo-user': 'reader' },
        body: JSON.stringify({ channel: 'votes:feed', keys }),
      });
      return (await r.json()) as { keys: string[]; signature: string };
    },
  });
  const rec = recordUpdates(sub);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  sub.track(['post_1', 'post_2', 'post_404']);
  await until('both posts', 5000, () => rec.latest.size === 2);
  assert.deepEqual(rec.latest.get('post_1'), { votes: 0 });
  assert.deepEqual([...sub.trackedKeys()].sort(), ['post_1', 'post_2'], 'the key the backend did not sign is dropped');

  await fetch(base + '/vote', { method: 'POST', body: JSON.stringify({ key: 'post_2' }) });
  await until('the vote', 5000, () => (rec.latest.get('post_2') as { votes: number }).votes === 1);
  assert.equal(rec.updates.at(-1)!.version, 2);
  assert.deepEqual(
    rec.errors.map((e) => e.error?.code),
    [],
  );
});
