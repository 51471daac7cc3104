/**
 * The HTTP API's OpenAPI document: generated from the route schemas, the
 * committed docs/openapi.json is current (`npm run openapi` rewrites it),
 * served at GET /api/openapi.json only with swagger.enabled, and what the
 * server answers matches the documented result schemas.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Ajv } from 'ajv';
import { openApiJson } from '../src/api/openapi.js';
import { API_METHODS, ParamsSchemas } from '../src/api/schemas.js';
import { scope } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const COMMITTED = new URL('../../../../docs/openapi.json', import.meta.url);

type Doc = {
  paths: Record<string, { post: { requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, Resp> } }>;
  components: { securitySchemes: Record<string, { type: string; in: string; name: string }> };
  security: unknown[];
};
type Resp = { content: Record<string, { schema: object }> };

const S = scope();
after(() => S.close());
let on: RunningServer;
let off: RunningServer;

before(async () => {
  [on, off] = await Promise.all([
    startServer(S, {
      swagger: { enabled: true },
      channel: { namespaces: [{ name: 'doc', history_size: 10, history_ttl: '60s', presence: true, allow_subscribe_for_client: true }] },
    }),
    startServer(S, {}),
  ]);
});

test('docs/openapi.json is the document the code generates (run `npm run openapi` after changing the API schemas)', async () => {
  const generated = await openApiJson();
  const committed = readFileSync(COMMITTED, 'utf8');
  assert.ok(committed === generated, 'docs/openapi.json is stale: run `npm run openapi` and commit it');
});

test('every method is POST /api/<method> with its params schema as the body; the pipeline too; the API key is the security scheme', async () => {
  const doc = JSON.parse(await openApiJson()) as Doc;
  assert.deepEqual(Object.keys(doc.paths).sort(), [...API_METHODS.map((m) => `/api/${m}`), '/api'].sort());
  for (const m of API_METHODS) {
    const body = doc.paths[`/api/${m}`]!.post.requestBody!.content['application/json']!.schema;
    assert.deepEqual(body, JSON.parse(JSON.stringify(ParamsSchemas[m])), m);
    assert.deepEqual(Object.keys(doc.paths[`/api/${m}`]!.post.responses).sort(), ['200', '400', '401']);
  }
  assert.deepEqual(doc.components.securitySchemes.apiKey, {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'Or `Authorization: apikey <key>`.',
  });
  assert.deepEqual(doc.security, [{ apiKey: [] }]);
});

test('GET /api/openapi.json: served without the API key when swagger.enabled, absent otherwise', async () => {
  const r = await fetch(`${on.http}/api/openapi.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(await r.text(), readFileSync(COMMITTED, 'utf8'));
  const no = await fetch(`${off.http}/api/openapi.json`, { headers: { 'x-api-key': off.apiKey } });
  assert.equal(no.status, 404);
  await no.body?.cancel();
});

test('real answers match the documented 200 schemas', async (t) => {
  const doc = JSON.parse(await openApiJson()) as Doc;
  const ajv = new Ajv({ strict: false, allErrors: true });
  const check = (method: string, reply: unknown) => {
    const schema = doc.paths[`/api/${method}`]!.post.responses['200']!.content['application/json']!.schema;
    const v = ajv.compile(schema);
    assert.ok(v(reply), `${method}: ${JSON.stringify(reply)} ${ajv.errorsText(v.errors)}`);
  };
  const c = await connectedClient(t, on, 'doc-user');
  const sub = c.newSubscription('doc:room');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;

  const calls: Array<[string, unknown]> = [
    ['publish', { channel: 'doc:room', data: { n: 1 }, tags: { k: 'v' } }],
    ['publish', { channel: 'nope:x', data: {} }],
    ['broadcast', { channels: ['doc:room', 'nope:x'], data: { n: 2 } }],
    ['history', { channel: 'doc:room', limit: -1 }],
    ['presence', { channel: 'doc:room' }],
    ['presence_stats', { channel: 'doc:room' }],
    ['channels', {}],
    ['info', {}],
    ['batch', { commands: [{ info: {} }, { publish: {} }] }],
    ['batch', { commands: 'x' }],
    ['history_remove', { channel: 'doc:room' }],
    ['disconnect', { user: 'doc-user', session: 'none-such' }],
  ];
  for (const [method, params] of calls) check(method, await on.call(method, params));
});
