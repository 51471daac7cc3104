/**
 * Two `switchboard serve` nodes (Redis engine) sharing one files directory:
 * an upload started on node A with `tus-js-client` resumes on node B, B's
 * publication reaches a `centrifuge` subscriber on A, and a URL signed by
 * one node downloads from the other (the same files.secret).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { tempDir } from './helpers/scope.js';
import { subscribedClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { sha256hex, tusUpload } from './helpers/tus.js';

const CHUNK = 64 * 1024;

test('two nodes on one directory: an upload starts on A and resumes on B; the file is published and downloads anywhere', async (t) => {
  const dir = tempDir(t);
  const cfg = nodeConfig(SHARED_REDIS, uniquePrefix('files'), {
    channel: { namespaces: [{ name: 'quote', allow_subscribe_for_client: true, history_size: 10, history_ttl: '60s' }] },
    files: { enabled: true, dir, secret: 'shared-files-secret' },
  });
  const [a, b] = await Promise.all([
    startServer(t, cfg, { raw: true, timeoutMs: 60_000 }),
    startServer(t, cfg, { raw: true, timeoutMs: 60_000 }),
  ]);
  const watcher = await subscribedClient(t, a, 'bob', 'quote:7');

  // The backend asks node A for an upload token (the namespace has no allow_file_upload: the token is the permission).
  const issued = await a.call('file_upload_token', { user: 'ann', channel: 'quote:7' });
  assert.ok(issued.result?.token, JSON.stringify(issued));
  const token = issued.result.token as string;

  const data = randomBytes(4 * CHUNK + 77);
  // Node A's client loses the network before its third chunk (nothing of it is sent).
  const onA = tusUpload(data, {
    endpoint: a.http + '/files/',
    token,
    metadata: { channel: 'quote:7', filename: 'quote.pdf', filetype: 'application/pdf' },
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH' && req.getHeader('Upload-Offset') === String(2 * CHUNK)) throw new Error('network down');
    },
  });
  await assert.rejects(onA.done, /network down/);
  const id = onA.upload.url!.split('/').pop()!;

  const onB = tusUpload(data, { uploadUrl: `${b.http}/files/${id}`, token, metadata: { channel: 'quote:7' } });
  await onB.done;
  assert.equal(onB.patchOffsets[0], 2 * CHUNK, "B went on from A's offset");
  assert.equal(onB.patchOffsets.length, Math.ceil(data.length / CHUNK) - 2, 'no chunk sent twice');

  await watcher.until(1);
  const file = (watcher.pubs[0]!.data as { file: Record<string, unknown> }).file;
  assert.deepEqual(file, { id, name: 'quote.pdf', size: data.length, type: 'application/pdf', sha256: sha256hex(data), user: 'ann' });

  // A URL signed by B downloads from A.
  const signed = await b.call('file_url', { id, ttl: 60 });
  const r = await fetch(a.http + signed.result.url);
  assert.equal(r.status, 200);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(data));

  assert.equal(await b.metric('switchboard_file_uploads_completed_total'), 1);
  assert.equal(await a.metric('switchboard_file_uploads_completed_total'), 0);
});
