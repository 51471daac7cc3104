/**
 * File transfer on one node: tus uploads with the real `tus-js-client`, the
 * publication seen by the real `centrifuge` client, downloads with ranges and
 * signed URLs, resume, the checksum extension, and every kind of bad input
 * with its status code, counted, and without harm to a live connection.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Subscription } from 'centrifuge';
import { embedded, SECRET, type EmbeddedNode } from './helpers/embedded.js';
import { tempDir, type TestContextLike } from './helpers/scope.js';
import { connectedClient, subscribe } from './helpers/sdk.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { sha256hex, tusUpload } from './helpers/tus.js';
import { until, waitFor } from './helpers/wait.js';

const CHUNK = 64 * 1024;

interface FileNode extends EmbeddedNode {
  readonly http: string;
  readonly dir: string;
  token(user: string, claims?: Record<string, unknown>): Promise<string>;
}

async function fileNode(t: TestContextLike, files: Record<string, unknown> = {}): Promise<FileNode> {
  const dir = tempDir(t);
  const n = await embedded(t, {
    channel: {
      namespaces: [
        { name: 'quote', allow_file_upload: true, allow_subscribe_for_client: true, history_size: 10, history_ttl: '60s' },
        { name: 'chat', allow_subscribe_for_client: true },
      ],
    },
    files: { enabled: true, dir, max_size: 1_000_000, secret: 'files-test-secret', ...files },
  });
  return {
    ...n,
    dir,
    http: `http://127.0.0.1:${n.port}`,
    token: (user, claims = {}) => mintToken(SECRET, { sub: user, ...claims }),
  };
}

/** A centrifuge client of `user` subscribed to `channel`, and the file publications it gets. */
async function watcher(t: TestContextLike, n: FileNode, user: string, channel: string) {
  const c = await connectedClient(t, { ws: n.ws, secret: SECRET }, user);
  const { sub } = await subscribe(c, channel);
  const files: Array<Record<string, unknown>> = [];
  sub.on('publication', (ctx) => files.push((ctx.data as { file: Record<string, unknown> }).file));
  return {
    client: c,
    sub,
    files,
    async next(i: number): Promise<Record<string, unknown>> {
      if (files.length <= i) await waitFor(sub as Subscription, 'publication', { ms: 20_000, filter: () => files.length > i });
      return files[i]!;
    },
  };
}

const tusHeaders = (token?: string, extra: Record<string, string> = {}) => ({
  'Tus-Resumable': '1.0.0',
  ...(token ? { Authorization: `Bearer ${token}` } : {}),
  ...extra,
});
const meta = (m: Record<string, string>) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');

/** POST (create) with raw fetch; returns the response and the new id. */
async function create(n: FileNode, token: string | undefined, m: Record<string, string>, length: number, body?: Buffer) {
  const r = await fetch(n.http + '/files/', {
    method: 'POST',
    headers: tusHeaders(token, {
      'Upload-Length': String(length),
      'Upload-Metadata': meta(m),
      ...(body ? { 'Content-Type': 'application/offset+octet-stream' } : {}),
    }),
    body: body ? new Uint8Array(body) : undefined,
  });
  const id = (r.headers.get('location') ?? '').split('/').pop() ?? '';
  return { r, id };
}

async function badInput(n: FileNode, kind: string): Promise<number> {
  const m = await n.sb.metrics.badInput.get();
  return m.values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

/** GET with a raw path (no URL normalization by the client). */
function rawGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test('an upload with tus-js-client publishes id, name, size, type and sha256; the file downloads whole, by range and by signed URL', async (t) => {
  const n = await fileNode(t);
  const w = await watcher(t, n, 'bob', 'quote:1');
  const data = randomBytes(300_000);
  const run = tusUpload(data, {
    endpoint: n.http + '/files/',
    token: await n.token('ann'),
    metadata: { channel: 'quote:1', filename: 'report.pdf', filetype: 'application/pdf' },
  });
  const url = await run.done;
  assert.equal(run.patchOffsets.length, Math.ceil(data.length / CHUNK), 'several chunks, each with its checksum');
  const f = await w.next(0);
  assert.deepEqual(f, {
    id: url.split('/').pop(),
    name: 'report.pdf',
    size: data.length,
    type: 'application/pdf',
    sha256: sha256hex(data),
    user: 'ann',
  });
  const id = f.id as string;

  // The normal publish path: the publication is in the channel's history (once: a HEAD of the finished upload adds none).
  const again = await fetch(url, { method: 'HEAD', headers: tusHeaders(await n.token('ann')) });
  assert.equal(again.headers.get('upload-offset'), String(data.length));
  const h = await n.sb.history('quote:1', { limit: 10 });
  assert.deepEqual(
    h.publications.map((p) => (p.data as { file: { id: string } }).file.id),
    [id],
  );

  // Download with a connection JWT of a subscriber: the whole file.
  const bob = await n.token('bob');
  const whole = await fetch(`${n.http}/files/${id}`, { headers: { Authorization: `Bearer ${bob}` } });
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get('content-type'), 'application/pdf');
  assert.match(whole.headers.get('content-disposition') ?? '', /^attachment; filename\*=UTF-8''report\.pdf$/);
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data));

  // Ranges: a middle slice, a suffix, and one past the end (416).
  const part = await fetch(`${n.http}/files/${id}`, { headers: { Authorization: `Bearer ${bob}`, Range: 'bytes=100000-100099' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 100000-100099/${data.length}`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100000, 100100)));
  const tail = await fetch(`${n.http}/files/${id}`, { headers: { Authorization: `Bearer ${bob}`, Range: 'bytes=-10' } });
  assert.equal(tail.status, 206);
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(data.length - 10)));
  const past = await fetch(`${n.http}/files/${id}`, { headers: { Authorization: `Bearer ${bob}`, Range: `bytes=${data.length}-` } });
  assert.equal(past.status, 416);
  assert.equal((await past.json()).error.code, 416);

  // Signed URL: no token needed until it expires; a wrong or expired signature is 403.
  const signed = n.sb.files!.signedUrl(id, 60);
  const viaUrl = await fetch(n.http + signed.url);
  assert.equal(viaUrl.status, 200);
  assert.ok(Buffer.from(await viaUrl.arrayBuffer()).equals(data));
  const forged = await fetch(n.http + signed.url.replace(/sig=./, (s) => (s.endsWith('A') ? 'sig=B' : 'sig=A')));
  assert.equal(forged.status, 403);
  const expired = await fetch(`${n.http}/files/${id}?${n.sb.files!.auth.signedQuery(id, nowSec() - 1)}`);
  assert.equal(expired.status, 403);
  // No credentials at all: 401.
  assert.equal((await fetch(`${n.http}/files/${id}`)).status, 401);

  const uploads = await n.sb.metrics.fileUploads.get();
  assert.equal(uploads.values[0]?.value, 1);
});

test('an interrupted upload resumes from its offset with a new client', async (t) => {
  const n = await fileNode(t);
  const w = await watcher(t, n, 'bob', 'quote:2');
  const data = randomBytes(5 * CHUNK + 123);
  const token = await n.token('ann');
  // The network goes away before the third chunk.
  const first = tusUpload(data, {
    endpoint: n.http + '/files/',
    token,
    metadata: { channel: 'quote:2', filename: 'big.bin' },
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH' && req.getHeader('Upload-Offset') === String(2 * CHUNK)) throw new Error('network down');
    },
  });
  await assert.rejects(first.done, /network down/);
  const url = first.upload.url!;
  const head = await fetch(url, { method: 'HEAD', headers: tusHeaders(token) });
  assert.equal(head.headers.get('upload-offset'), String(2 * CHUNK));

  const second = tusUpload(data, { uploadUrl: url, token, metadata: { channel: 'quote:2', filename: 'big.bin' } });
  await second.done;
  assert.equal(second.patchOffsets[0], 2 * CHUNK, 'the new client went on from the server offset, not from 0');
  const f = await w.next(0);
  assert.equal(f.sha256, sha256hex(data), 'the whole-file sha256 spans both clients');
  assert.equal(f.size, data.length);
});

test('a chunk cut off mid-request: without a checksum the bytes that arrived are kept, with one none are', async (t) => {
  const n = await fileNode(t);
  const w = await watcher(t, n, 'bob', 'quote:6');
  const token = await n.token('ann');
  const data = randomBytes(4 * CHUNK);
  const { id } = await create(n, token, { channel: 'quote:6' }, data.length);
  const patches = async (): Promise<number> =>
    (await n.sb.metrics.fileRequests.get()).values.filter((v) => v.labels.method === 'PATCH').reduce((s, v) => s + v.value, 0);
  /** Sends `sent` of a chunk of `length` bytes at `offset`, then drops the connection; resolves when the server is done with it. */
  async function cut(offset: number, length: number, sent: number, checksum?: string): Promise<void> {
    const before = await patches();
    const req = request({
      host: '127.0.0.1',
      port: n.port,
      path: `/files/${id}`,
      method: 'PATCH',
      headers: {
        ...tusHeaders(token, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }),
        'Content-Length': String(length),
        ...(checksum ? { 'Upload-Checksum': checksum } : {}),
      },
    });
    req.on('error', () => {});
    req.write(data.subarray(offset, offset + sent));
    // (Not HEAD: tus takes the upload's lock for it, which cuts the running PATCH short.)
    await until('the server to write the first bytes', 20_000, () => statSync(join(n.dir, id)).size > offset);
    req.destroy();
    await until('the server to finish the broken request', 20_000, async () => (await patches()) > before);
  }
  const offsetNow = async () =>
    Number((await fetch(`${n.http}/files/${id}`, { method: 'HEAD', headers: tusHeaders(token) })).headers.get('upload-offset'));

  await cut(0, 2 * CHUNK, CHUNK);
  assert.equal(await offsetNow(), CHUNK, 'no checksum: what arrived is kept');
  const sum = createHash('sha256')
    .update(data.subarray(CHUNK, 3 * CHUNK))
    .digest('base64');
  await cut(CHUNK, 2 * CHUNK, CHUNK, 'sha256 ' + sum);
  assert.equal(await offsetNow(), CHUNK, 'checksum: the partial chunk is dropped whole');

  const rest = tusUpload(data, { uploadUrl: `${n.http}/files/${id}`, token });
  await rest.done;
  assert.equal(rest.patchOffsets[0], CHUNK);
  assert.equal((await w.next(0)).sha256, sha256hex(data));
});

test('a tampered chunk is refused with 460, leaves the offset where it was, and the right chunk is then accepted', async (t) => {
  const n = await fileNode(t);
  const w = await watcher(t, n, 'bob', 'quote:3');
  const data = randomBytes(2 * CHUNK);
  const token = await n.token('ann');
  const options = await fetch(n.http + '/files/', { method: 'OPTIONS' });
  assert.match(options.headers.get('tus-extension') ?? '', /(^|,)checksum(,|$)/);
  assert.equal(options.headers.get('tus-checksum-algorithm'), 'sha256');
  const bad = tusUpload(data, { endpoint: n.http + '/files/', token, metadata: { channel: 'quote:3' }, tamper: true });
  const err = (await bad.done.then(
    () => assert.fail('a tampered chunk was accepted'),
    (e: unknown) => e,
  )) as { originalResponse?: { getStatus(): number; getBody(): string } };
  assert.equal(err.originalResponse?.getStatus(), 460);
  assert.deepEqual(JSON.parse(err.originalResponse!.getBody()), { error: { code: 460, message: 'Checksum Mismatch' } });
  const url = bad.upload.url!;
  const head = await fetch(url, { method: 'HEAD', headers: tusHeaders(token) });
  assert.equal(head.headers.get('upload-offset'), '0', 'the refused bytes were cut off again');
  assert.equal(await badInput(n, 'file_460'), 1);

  const good = tusUpload(data, { uploadUrl: url, token, metadata: { channel: 'quote:3' } });
  await good.done;
  assert.equal((await w.next(0)).sha256, sha256hex(data));
  assert.equal(w.files.length, 1);
});

test('bad input: each refusal has its status and a JSON body, is counted, and a live connection is not affected', async (t) => {
  const n = await fileNode(t);
  const w = await watcher(t, n, 'carl', 'quote:9');
  let disconnects = 0;
  w.client.on('disconnected', () => disconnects++);
  w.client.on('connecting', () => disconnects++);
  const ann = await n.token('ann');
  const bob = await n.token('bob');

  const cases: Array<[string, () => Promise<Response>, number]> = [
    ['no credentials', async () => (await create(n, undefined, { channel: 'quote:9' }, 10)).r, 401],
    ['a forged token', async () => (await create(n, await mintToken('wrong-secret', { sub: 'ann' }), { channel: 'quote:9' }, 10)).r, 401],
    ['an expired token', async () => (await create(n, await n.token('ann', { exp: nowSec() - 60 }), { channel: 'quote:9' }, 10)).r, 401],
    ['anonymous', async () => (await create(n, await mintToken(SECRET, {}), { channel: 'quote:9' }, 10)).r, 403],
    ['a namespace without allow_file_upload', async () => (await create(n, ann, { channel: 'chat:1' }, 10)).r, 403],
    ['an unknown namespace', async () => (await create(n, ann, { channel: 'nope:1' }, 10)).r, 404],
    ['no channel', async () => (await create(n, ann, { filename: 'x' }, 10)).r, 400],
    ['oversize', async () => (await create(n, ann, { channel: 'quote:9' }, 1_000_001)).r, 413],
  ];
  for (const [what, run, status] of cases) {
    const r = await run();
    assert.equal(r.status, status, what);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/, what);
    assert.equal((await r.json()).error.code, status, what);
  }

  // Someone else's upload: bob can neither read its offset nor write to it.
  const { id } = await create(n, ann, { channel: 'quote:9' }, 100);
  assert.ok(id);
  assert.equal((await fetch(`${n.http}/files/${id}`, { method: 'HEAD', headers: tusHeaders(bob) })).status, 403);
  const patch = (token: string, body: Buffer, extra: Record<string, string> = {}) =>
    fetch(`${n.http}/files/${id}`, {
      method: 'PATCH',
      headers: tusHeaders(token, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', ...extra }),
      body: new Uint8Array(body),
    });
  assert.equal((await patch(bob, Buffer.alloc(10))).status, 403);
  // More bytes than declared, an unsupported checksum algorithm, a wrong offset.
  assert.equal((await patch(ann, Buffer.alloc(101))).status, 413);
  assert.equal((await patch(ann, Buffer.alloc(10), { 'Upload-Checksum': 'md5 AAAA' })).status, 400);
  assert.equal(
    (
      await fetch(`${n.http}/files/${id}`, {
        method: 'PATCH',
        headers: tusHeaders(ann, { 'Upload-Offset': '5', 'Content-Type': 'application/offset+octet-stream' }),
        body: Buffer.alloc(1),
      })
    ).status,
    409,
  );
  // Not finished: no download yet.
  assert.equal((await fetch(`${n.http}/files/${id}`, { headers: { Authorization: `Bearer ${ann}` } })).status, 409);

  // An upload token names its channel; the backend may issue one for a namespace without allow_file_upload.
  const { token: up } = await n.sb.files!.uploadToken({ user: 'dee', channel: 'chat:2' });
  assert.equal((await create(n, up, { channel: 'chat:1' }, 10)).r.status, 403);
  assert.equal((await create(n, up, { channel: 'chat:2' }, 10)).r.status, 201);
  const { token: small } = await n.sb.files!.uploadToken({ user: 'dee', channel: 'quote:9', maxSize: 50 });
  assert.equal((await create(n, small, { channel: 'quote:9' }, 51)).r.status, 413);

  for (const [kind, min] of [
    ['file_401', 3],
    ['file_403', 5],
    ['file_404', 1],
    ['file_400', 2],
    ['file_413', 3],
    ['file_409', 2],
  ] as const) {
    assert.ok((await badInput(n, kind)) >= min, `${kind} counted`);
  }
  const requests = await n.sb.metrics.fileRequests.get();
  assert.ok(requests.values.some((v) => v.labels.method === 'POST' && v.labels.status === '413'));

  // The live connection saw nothing of it and still gets publications.
  await n.sb.publish('quote:9', { file: { id: 'after' } });
  assert.equal((await w.next(0)).id, 'after');
  assert.equal(disconnects, 0);
});

test('path tricks: names never become paths, ids are server-made, and traversal in the URL is 404', async (t) => {
  const n = await fileNode(t);
  const w = await watcher(t, n, 'bob', 'quote:4');
  const data = randomBytes(1000);
  const run = tusUpload(data, {
    endpoint: n.http + '/files/',
    token: await n.token('ann'),
    metadata: { channel: 'quote:4', filename: '../../../etc/passwd\u0000.txt', filetype: 'text/html' },
  });
  await run.done;
  const f = await w.next(0);
  assert.equal(f.name, 'passwd.txt');
  assert.match(f.id as string, /^[0-9a-f]{32}$/);
  for (const name of readdirSync(n.dir))
    assert.match(name, /^[0-9a-f]{32}(\.json|\.sum)?$/, `only id-named files in the directory: ${name}`);
  // The stored type comes back, but as an attachment that the browser must not sniff or render.
  const r = await fetch(`${n.http}/files/${f.id as string}`, { headers: { Authorization: `Bearer ${await n.token('bob')}` } });
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.match(r.headers.get('content-disposition') ?? '', /^attachment;/);
  await r.arrayBuffer();

  for (const path of [
    '/files/../../etc/passwd',
    '/files/..%2F..%2Fetc%2Fpasswd',
    `/files/${f.id as string}.json`,
    `/files/${f.id as string}/..`,
    '/files/%2e%2e',
  ]) {
    assert.equal(await rawGet(n.port, path), 404, path);
  }
  const ann = await n.token('ann');
  const traversal = await fetch(`${n.http}/files/..%2F${f.id as string}`, { method: 'HEAD', headers: tusHeaders(ann) });
  assert.equal(traversal.status, 404);
});

test('an upload abandoned halfway is deleted after files.expire_after; finished files stay', async (t) => {
  // Long enough that a loaded machine finishes both creations before the sweep can take the half one.
  const n = await fileNode(t, { expire_after: '5s', cleanup_interval: '200ms' });
  const token = await n.token('ann');
  const whole = randomBytes(1000);
  // creation-with-upload: one request each, so neither races the short expiry.
  const done = await create(n, token, { channel: 'quote:5', filename: 'done.bin' }, whole.length, whole);
  assert.equal(done.r.status, 201);
  const half = await create(n, token, { channel: 'quote:5', filename: 'half.bin' }, 2000, randomBytes(1000));
  assert.equal(half.r.status, 201);
  assert.equal(half.r.headers.get('upload-offset'), '1000');
  assert.ok(existsSync(join(n.dir, half.id)));

  await until('the abandoned upload to be swept', 20_000, () => !existsSync(join(n.dir, half.id)));
  assert.ok(!existsSync(join(n.dir, half.id + '.json')) && !existsSync(join(n.dir, half.id + '.sum')), 'metadata and hash state go too');
  assert.equal((await fetch(`${n.http}/files/${half.id}`, { method: 'HEAD', headers: tusHeaders(token) })).status, 404);
  const r = await fetch(`${n.http}/files/${done.id}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, 'the finished file is kept');
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(whole));
  assert.ok(((await n.sb.metrics.fileExpired.get()).values[0]?.value ?? 0) >= 1);
});
