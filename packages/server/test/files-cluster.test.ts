/**
 * Two `switchboard serve` nodes (Redis engine) sharing one files directory:
 * an upload started on node A with `tus-js-client` resumes on node B, B's
 * publication reaches a `centrifuge` subscriber on A, and a URL signed by
 * one node downloads from the other (the same files.secret).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { nodeConfig, OwnRedis, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
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

test('a publication that fails at completion (Redis stalled) goes out on the next HEAD, once', async (t) => {
  const own = await OwnRedis.start(t);
  const cfg = nodeConfig(own.url, uniquePrefix('files-pub'), {
    channel: { namespaces: [{ name: 'quote', history_size: 10, history_ttl: '60s' }] },
    files: { enabled: true, dir: tempDir(t), secret: 'files-secret' },
  });
  const node = await startServer(t, cfg, { raw: true, timeoutMs: 60_000 });
  const token = (await node.call('file_upload_token', { user: 'ann', channel: 'quote:8' })).result.token as string;
  const data = randomBytes(3000);
  const headers = { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' };
  const created = await fetch(node.http + '/files/', {
    method: 'POST',
    headers: {
      ...headers,
      'Upload-Length': String(data.length),
      'Upload-Metadata': `channel ${Buffer.from('quote:8').toString('base64')}`,
    },
  });
  const url = node.http + created.headers.get('location')!;

  own.pause();
  const last = await fetch(url, {
    method: 'PATCH',
    headers: { ...headers, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: new Uint8Array(data),
  });
  assert.equal(last.status, 500, 'the publish failed, and the client is told');
  own.resume();
  await node.waitReady(true, 30_000);

  // The stalled command may still run when Redis comes back (a timeout is not a failure): the idempotency
  // key `file:<id>` keeps it to one publication. Completions are counted only once a publish has succeeded.
  const published = async () => ((await node.call('history', { channel: 'quote:8', limit: 10 })).result?.publications ?? []).length;
  const completed = () => node.metric('switchboard_file_uploads_completed_total');
  assert.equal(await completed(), 0);
  const head = await fetch(url, { method: 'HEAD', headers });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('upload-offset'), String(data.length), 'the bytes were kept');
  assert.equal(await completed(), 1, 'the HEAD published the finished file');
  assert.equal(await published(), 1);
  await fetch(url, { method: 'HEAD', headers });
  assert.equal(await completed(), 1, 'and only once');
  assert.equal(await published(), 1);
  const pub = (await node.call('history', { channel: 'quote:8', limit: 10 })).result.publications[0];
  assert.equal(pub.data.file.sha256, sha256hex(data));
});
