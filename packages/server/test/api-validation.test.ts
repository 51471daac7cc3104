/**
 * Server API params are checked one way: the method's TypeBox schema, the
 * same compiled validator behind `POST /api/<method>`, the `POST /api`
 * pipeline and `batch` sub-commands. A bad param is HTTP 200 with
 * `{"error":{"code":107}}` naming the field (the same text on every path),
 * counted in switchboard_api_commands_total; nulls count as absent, unknown
 * keys are ignored; the Centrifugo v6 fields are accepted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { scope } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(S, {
    channel: { namespaces: [{ name: 'feed', history_size: 10, history_ttl: '60s' }] },
  });
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

async function post(path: string, body: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${s.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': s.apiKey },
    body,
  });
  return { status: r.status, text: await r.text() };
}

type Err = { code: number; message: string };

/** The error the same bad command gets on the method route, in a pipeline and inside a batch. */
async function threeWays(method: string, params: unknown): Promise<{ route: Err; pipeline: Err; batch: Err }> {
  const route = await post(`/api/${method}`, JSON.stringify(params));
  assert.equal(route.status, 200, route.text);
  const pipe = await post('/api', JSON.stringify({ method, params }));
  assert.equal(pipe.status, 200, pipe.text);
  const batch = await post('/api/batch', JSON.stringify({ commands: [{ [method]: params }] }));
  assert.equal(batch.status, 200, batch.text);
  return {
    route: (JSON.parse(route.text) as { error: Err }).error,
    pipeline: (JSON.parse(pipe.text) as { error: Err }).error,
    batch: (JSON.parse(batch.text) as { replies: Array<{ error: Err }> }).replies[0]!.error,
  };
}

const BAD: Array<[method: string, params: unknown, names: RegExp]> = [
  ['publish', { data: {} }, /^bad request: channel required$/],
  ['publish', { channel: '', data: {} }, /^bad request: channel must not be empty$/],
  ['publish', { channel: 5, data: {} }, /^bad request: channel must be string$/],
  ['publish', { channel: 'feed:x' }, /^bad request: data required$/],
  ['publish', { channel: 'feed:x', data: {}, tags: { kind: 1 } }, /^bad request: tags\.kind must be string$/],
  ['publish', { channel: 'feed:x', data: {}, skip_history: 'yes' }, /^bad request: skip_history must be boolean$/],
  ['publish', { channel: 'feed:x', b64data: '' }, /^bad request: b64data must be non-empty base64/],
  ['broadcast', { channels: [], data: {} }, /^bad request: channels must NOT have fewer than 1 items$/],
  ['broadcast', { channels: ['feed:a', ''], data: {} }, /^bad request: channels\.1 must not be empty$/],
  ['subscribe', { channel: 'feed:x' }, /^bad request: user or client required$/],
  ['subscribe', { user: 'u', channel: 'feed:x', recover_since: { offset: -1 } }, /^bad request: recover_since\.offset must be >= 0$/],
  ['unsubscribe', { user: 'u', channel: 'feed:x', session: 7 }, /^bad request: session must be string$/],
  ['disconnect', { user: 'u', disconnect: { code: 1000 } }, /^bad request: disconnect\.code must be >= 3000$/],
  ['disconnect', { user: 'u', whitelist: ['a', 1] }, /^bad request: whitelist\.1 must be string$/],
  ['refresh', { user: 'u', expire_at: -1 }, /^bad request: expire_at must be >= 0$/],
  ['history', { channel: 'feed:x', limit: -2 }, /^bad request: limit must be >= -1$/],
  ['history', { channel: 'feed:x', since: { offset: '1' } }, /^bad request: since\.offset must be integer$/],
  ['revoke_token', {}, /^bad request: uid required$/],
  ['revoke_token', { uid: 'j', expire_at: 1.5 }, /^bad request: expire_at must be integer$/],
  ['invalidate_user_tokens', { user: 'u', issued_before: 'now' }, /^bad request: issued_before must be integer$/],
  ['channels', { pattern: ['*'] }, /^bad request: pattern must be string$/],
];

test('a bad param is 107 naming the field, with the same message on the route, in a pipeline and in a batch', async () => {
  for (const [method, params, names] of BAD) {
    const { route, pipeline, batch } = await threeWays(method, params);
    const what = `${method} ${JSON.stringify(params)}`;
    assert.equal(route.code, 107, what);
    assert.match(route.message, names, what);
    assert.deepEqual(pipeline, route, `pipeline: ${what}`);
    assert.deepEqual(batch, route, `batch: ${what}`);
  }
});

test('params that are not an object: 107 in a pipeline and a batch; on the route the body is refused (400)', async () => {
  const pipe = JSON.parse((await post('/api', JSON.stringify({ method: 'publish', params: [1, 2] }))).text) as { error: Err };
  assert.deepEqual(pipe.error, { code: 107, message: 'bad request: params must be object' });
  const batch = JSON.parse((await post('/api/batch', JSON.stringify({ commands: [{ publish: 'x' }] }))).text) as {
    replies: Array<{ error: Err }>;
  };
  assert.deepEqual(batch.replies[0]!.error, pipe.error);
  const route = await post('/api/publish', '[1,2]');
  assert.equal(route.status, 400);
  assert.equal((JSON.parse(route.text) as { error: Err }).error.code, 107);
});

test('batch params themselves: commands must be an array of at most 1000; a bad sub-command gets its own error', async () => {
  const notArray = JSON.parse((await post('/api/batch', JSON.stringify({ commands: 'x' }))).text) as { error: Err };
  assert.equal(notArray.error.code, 107);
  assert.match(notArray.error.message, /^bad request: commands must be array$/);
  const tooMany = JSON.parse((await post('/api/batch', JSON.stringify({ commands: new Array(1001).fill({ info: {} }) }))).text) as {
    error: Err;
  };
  assert.match(tooMany.error.message, /^bad request: commands must NOT have more than 1000 items$/);
  const mixed = JSON.parse(
    (await post('/api/batch', JSON.stringify({ commands: [{ info: {} }, 'x', { info: {}, publish: {} }, { nope: {} }, { batch: {} }] })))
      .text,
  ) as { replies: Array<{ error?: Err; info?: unknown }> };
  assert.ok(mixed.replies[0]!.info);
  assert.deepEqual(
    mixed.replies.slice(1).map((r) => r.error?.code),
    [107, 107, 104, 107],
  );
});

test('bad params are counted per method with result 107, on every path', async () => {
  const labels = { method: 'history_remove', result: '107' };
  const before = await s.metric('switchboard_api_commands_total', labels);
  await threeWays('history_remove', { channel: 42 });
  assert.equal(await s.metric('switchboard_api_commands_total', labels), before + 3);
});

test('null counts as absent, unknown keys are ignored, data may be null', async () => {
  const ok = await s.call('publish', {
    channel: 'feed:nulls',
    data: { n: 1 },
    idempotency_key: null,
    tags: null,
    skip_history: null,
    b64data: null,
    version: 3,
    something_new: { x: 1 },
  });
  assert.deepEqual(ok, { result: { offset: 1, epoch: (ok.result as { epoch: string }).epoch } });
  assert.deepEqual(await s.call('publish', { channel: 'feed:nulls', data: null }), {
    result: { offset: 2, epoch: (ok.result as { epoch: string }).epoch },
  });
  const h = (await s.call('history', { channel: 'feed:nulls', limit: -1, since: null, reverse: null })) as {
    result: { publications: Array<{ data: unknown }> };
  };
  assert.deepEqual(
    h.result.publications.map((p) => p.data),
    [{ n: 1 }, null],
  );
  assert.deepEqual(await s.call('disconnect', { user: 'nobody', client: null, session: null, disconnect: { code: null } }), { result: {} });
});

test('b64data publishes the decoded JSON; subscribe takes b64data and b64info', async (t) => {
  const r = await s.call('publish', { channel: 'feed:b64', b64data: b64({ via: 'b64' }) });
  assert.equal((r.result as { offset: number }).offset, 1);
  const h = (await s.call('history', { channel: 'feed:b64', limit: 10 })) as { result: { publications: Array<{ data: unknown }> } };
  assert.deepEqual(h.result.publications[0]!.data, { via: 'b64' });

  const c = await connectedClient(t, s, 'b64-user');
  const subscribed = waitFor(c, 'subscribed');
  assert.deepEqual(await s.call('subscribe', { user: 'b64-user', channel: 'feed:b64sub', b64data: b64({ hello: 'sub' }), session: '' }), {
    result: {},
  });
  const ctx = await subscribed;
  assert.equal(ctx.channel, 'feed:b64sub');
  assert.deepEqual(ctx.data, { hello: 'sub' });
});

test('revocations accept expire_at; a channel-scoped invalidation is refused (108) rather than widened', async () => {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  assert.deepEqual(await s.call('revoke_token', { uid: 'jti-1', expire_at: exp }), { result: {} });
  assert.deepEqual(await s.call('invalidate_user_tokens', { user: 'u1', issued_before: exp - 3600, expire_at: exp }), { result: {} });
  const scoped = (await s.call('invalidate_user_tokens', { user: 'u1', channel: 'feed:x' })) as { error: Err };
  assert.equal(scoped.error.code, 108);
});
