/**
 * Typed channels: namespace `publication_schema` and `rpc.schemas` with the
 * shipped event catalogue (examples/schemas), error 107 naming the failing
 * path, and `switchboard types` output compiled by tsc against code that
 * uses it (right payloads compile, wrong ones are errors).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { schemaToTs } from '../src/typegen.js';
import { type Backend, startBackend } from './helpers/backend.js';
import { scope, tempDir } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { embedded } from './helpers/embedded.js';
import { ReplyError } from '../src/protocol/codes.js';
import { runCli, type RunningServer, startServer } from './helpers/server.js';
import { waitFor } from './helpers/wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const SCHEMAS = join(ROOT, 'examples/schemas');
const CONFIG = join(SCHEMAS, 'switchboard.json');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

const S = scope();
after(() => S.close());
let s: RunningServer;
let backend: Backend;
let client: Centrifuge;

before(async () => {
  backend = await startBackend(S, (req) => ({ result: { data: { ok: true, method: req.body.method, echo: req.body.data } } }));
  const cfg = JSON.parse(readFileSync(CONFIG, 'utf8')) as { rpc: { proxy: { endpoint: string } } };
  cfg.rpc.proxy.endpoint = `${backend.url}/rpc`;
  s = await startServer(S, cfg as unknown as Record<string, unknown>);
  client = await connectedClient(S, s, 'typed-user');
});

/** Publishes from the client; resolves with the error (code, message) or undefined when accepted. */
async function publishError(channel: string, data: unknown): Promise<{ code: number; message: string } | undefined> {
  try {
    await client.publish(channel, data);
    return undefined;
  } catch (e) {
    return e as { code: number; message: string };
  }
}

test('the config embeds exactly the shipped schema files', () => {
  const cfg = JSON.parse(readFileSync(CONFIG, 'utf8')) as {
    channel: { namespaces: Array<{ name: string; publication_schema?: unknown }> };
    rpc: { schemas: Record<string, unknown> };
  };
  const files = readdirSync(join(SCHEMAS, 'events')).map(
    (f) => JSON.parse(readFileSync(join(SCHEMAS, 'events', f), 'utf8')) as { title: string },
  );
  const embedded = cfg.channel.namespaces.map((n) => n.publication_schema as { title: string });
  assert.deepEqual(
    [...embedded].sort((a, b) => a.title.localeCompare(b.title)),
    [...files].sort((a, b) => a.title.localeCompare(b.title)),
  );
  const rpcFiles = readdirSync(join(SCHEMAS, 'rpc')).map(
    (f) => JSON.parse(readFileSync(join(SCHEMAS, 'rpc', f), 'utf8')) as { title: string },
  );
  assert.deepEqual(
    Object.values(cfg.rpc.schemas).sort((a, b) => (a as { title: string }).title.localeCompare((b as { title: string }).title)),
    rpcFiles.sort((a, b) => a.title.localeCompare(b.title)),
  );
});

test('a valid event is published and delivered', async () => {
  const sub = client.newSubscription('quotes:ACME');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const got = waitFor<{ data: unknown }>(sub, 'publication');
  const ev = { type: 'quote.updated', symbol: 'ACME', price: 12.5, currency: 'USD', at: '2026-01-01T00:00:00Z' };
  assert.equal(await publishError('quotes:ACME', ev), undefined);
  assert.deepEqual((await got).data, ev);
});

test('invalid publications get 107 naming the failing path', async () => {
  const base = { type: 'quote.updated', symbol: 'ACME', price: 1, currency: 'USD', at: 'now' };
  const cases: Array<[string, unknown, RegExp]> = [
    ['quotes:ACME', { ...base, price: '12' }, /data\.price must be number/],
    ['quotes:ACME', { ...base, currency: 'XXX' }, /data\.currency must be equal to one of the allowed values/],
    ['quotes:ACME', { type: 'quote.updated', symbol: 'ACME', price: 1, at: 'now' }, /data must have required property 'currency'/],
    ['quotes:ACME', { ...base, extra: 1 }, /data must NOT have additional properties/],
    ['quotes:ACME', { ...base, type: 'quote.stolen' }, /data\.type|tag "type"/],
    ['quotes:ACME', 'just a string', /data must be object/],
    ['agent:run-1', { type: 'agent.output', agentId: 'a', seq: 1, toolCalls: [{ name: 5 }] }, /data\.toolCalls\.0\.name must be string/],
    ['analytics:x', { type: 'analytics.series', metric: 'm', points: [[1, 'x']] }, /data\.points\.0\.1 must be number/],
    ['notifications:#typed-user', { type: 'notification.read', ids: [] }, /data\.ids must NOT have fewer than 1 items/],
  ];
  for (const [channel, data, re] of cases) {
    const err = await publishError(channel, data);
    assert.ok(err, `${JSON.stringify(data)} should be refused`);
    assert.equal(err.code, 107, JSON.stringify(err));
    assert.match(err.message, re);
  }
  assert.ok(client.state === 'connected', 'a schema error is a reply, the connection stays');
});

test('the HTTP API checks publications against the schema too: 107 naming the path, nothing delivered', async () => {
  const sub = client.newSubscription('quotes:API');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const seen: unknown[] = [];
  sub.on('publication', (ctx) => seen.push(ctx.data));
  const before = await s.metric('switchboard_bad_input_total', { kind: 'publication_schema' });
  const bad = { type: 'quote.updated', symbol: 'API', price: '12', currency: 'USD', at: 'now' };
  const r = await s.call('publish', { channel: 'quotes:API', data: bad });
  assert.equal(r.error?.code, 107, JSON.stringify(r));
  assert.match(r.error.message, /data\.price must be number/);
  // b64data is decoded first, then checked like data.
  const r64 = await s.call('publish', { channel: 'quotes:API', b64data: Buffer.from(JSON.stringify(bad)).toString('base64') });
  assert.equal(r64.error?.code, 107);
  // broadcast: the typed channel refuses, the untyped one accepts.
  const b = await s.call('broadcast', { channels: ['quotes:API', 'lobby'], data: { anything: true } });
  assert.equal(b.result.responses[0].error?.code, 107, JSON.stringify(b));
  assert.match(b.result.responses[0].error.message, /data tag "type" must be string/);
  assert.ok(b.result.responses[1].result, JSON.stringify(b));
  const good = { ...bad, price: 12 };
  const got = waitFor<{ data: unknown }>(sub, 'publication');
  assert.ok((await s.call('publish', { channel: 'quotes:API', data: good })).result);
  assert.deepEqual((await got).data, good);
  assert.deepEqual(seen, [good], 'only the valid publication was delivered');
  assert.equal((await s.metric('switchboard_bad_input_total', { kind: 'publication_schema' })) - before, 3);
  sub.unsubscribe();
  client.removeSubscription(sub);
});

test('the in-process API checks publications against the schema: a ReplyError 107 naming the path', async (t) => {
  const cfg = JSON.parse(readFileSync(CONFIG, 'utf8')) as Record<string, unknown>;
  delete (cfg as { rpc?: unknown }).rpc;
  const node = await embedded(t, { channel: (cfg as { channel: unknown }).channel });
  await assert.rejects(
    node.sb.publish('quotes:ACME', { type: 'quote.updated', symbol: 'ACME', price: 1, at: 'now' }),
    (e: unknown) => e instanceof ReplyError && e.error.code === 107 && /data must have required property 'currency'/.test(e.error.message),
  );
  const rs = await node.sb.broadcast(['quotes:ACME', 'lobby'], 'a string');
  assert.ok(rs[0] instanceof ReplyError && rs[0].error.code === 107 && /data must be object/.test(rs[0].error.message));
  assert.ok(!(rs[1] instanceof ReplyError));
  await node.sb.publish('quotes:ACME', { type: 'quote.halted', symbol: 'ACME' });
});

test('RPC request data is checked before the backend is asked', async () => {
  const n = backend.requests.length;
  await assert.rejects(
    client.rpc('quote:get', { symbol: 'not valid!' }),
    (e: { code: number; message: string }) => e.code === 107 && /data\.symbol must match pattern/.test(e.message),
  );
  await assert.rejects(
    client.rpc('admin:kick', {}),
    (e: { code: number; message: string }) => e.code === 107 && /required property 'user'/.test(e.message),
  );
  assert.equal(backend.requests.length, n, 'invalid requests never reach the backend');
  const r = await client.rpc('quote:get', { symbol: 'ACME' });
  assert.deepEqual(r.data, { ok: true, method: 'quote:get', echo: { symbol: 'ACME' } });
  // A method without a schema passes any data through.
  assert.equal(((await client.rpc('quote:anything', [1, 2])).data as { ok: boolean }).ok, true);
});

test('schemaToTs covers the common subset', () => {
  assert.equal(schemaToTs({ type: 'string' }), 'string');
  assert.equal(schemaToTs({ type: 'integer' }), 'number');
  assert.equal(schemaToTs({ type: ['string', 'null'] }), 'string | null');
  assert.equal(schemaToTs({ enum: ['a', 1, null] }), '"a" | 1 | null');
  assert.equal(schemaToTs({ const: 'x' }), '"x"');
  assert.equal(schemaToTs({ type: 'array', items: { type: 'boolean' } }), 'boolean[]');
  assert.equal(schemaToTs({ type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'number' }] } }), '(string | number)[]');
  assert.equal(schemaToTs({ type: 'array' }), 'unknown[]');
  assert.equal(schemaToTs({}), 'unknown');
  assert.equal(schemaToTs(true), 'unknown');
  assert.equal(schemaToTs(false), 'never');
  assert.equal(schemaToTs({ type: 'object', additionalProperties: { type: 'number' } }), '{\n  [key: string]: number;\n}');
  assert.equal(schemaToTs({ type: 'object', properties: { 'a-b': { type: 'string' } }, required: ['a-b'] }), '{\n  "a-b": string;\n}');
  assert.equal(schemaToTs({ type: 'array', items: [{ type: 'string' }, { type: 'number' }], minItems: 1 }), '[string, number?]');
  assert.equal(
    schemaToTs({
      allOf: [
        { type: 'object', properties: { a: { type: 'string' } } },
        { type: 'object', properties: { b: { type: 'number' } } },
      ],
    }),
    '{\n  a?: string;\n} & {\n  b?: number;\n}',
  );
});

test('`switchboard types` output compiles with tsc and types the catalogue (wrong payloads are compile errors)', async (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'events.ts');
  const r = await runCli(['types', '--config', CONFIG, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  // Also to stdout, identical.
  const r2 = await runCli(['types', '--config', CONFIG]);
  assert.equal(r2.stdout, readFileSync(out, 'utf8'));

  // A second config exercising the rest of the subset, with a default-namespace schema.
  const extraCfg = join(dir, 'extra.json');
  writeFileSync(
    extraCfg,
    JSON.stringify({
      channel: {
        without_namespace: {
          publication_schema: {
            type: 'object',
            $defs: { point: { type: 'array', items: [{ type: 'number' }, { type: 'number' }], minItems: 2, additionalItems: false } },
            properties: {
              kind: { enum: ['a', 'b'] },
              at: { $ref: '#/$defs/point' },
              tags: { type: 'object', additionalProperties: { type: 'string' } },
              maybe: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
              both: {
                allOf: [
                  { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] },
                  { type: 'object', properties: { y: { type: 'number' } }, required: ['y'] },
                ],
              },
            },
            required: ['kind', 'at'],
            additionalProperties: false,
          },
        },
      },
    }),
  );
  const r3 = await runCli(['types', '--config', extraCfg, '--out', join(dir, 'extra.ts')]);
  assert.equal(r3.code, 0, r3.stderr);

  writeFileSync(
    join(dir, 'usage.ts'),
    `import type { ChannelPublications, PublicationOf, RpcRequestOf, AgentStatus } from './events.js';
import type { DefaultPublication } from './extra.js';

export const quote: PublicationOf<'quotes:ACME'> = { type: 'quote.updated', symbol: 'ACME', price: 1, currency: 'USD', at: 'now' };
export const halted: PublicationOf<'quotes:ACME'> = { type: 'quote.halted', symbol: 'ACME' };
export const note: PublicationOf<'notifications:#42'> = { type: 'notification.created', id: 'n1', title: 't', level: 'info', link: null };
export const series: PublicationOf<'analytics:cpu'> = { type: 'analytics.series', metric: 'cpu', points: [[1, 0.5]] };
export const kick: RpcRequestOf<'admin:kick'> = { user: 'u', ban: true };
export const anything: PublicationOf<'untyped:x'> = 42;
export const status: AgentStatus = 'running';
export function describe(e: ChannelPublications['agent']): string {
  switch (e.type) {
    case 'agent.status':
      return e.status;
    case 'agent.output':
      return String(e.seq) + (e.toolCalls?.[0]?.name ?? '');
  }
}
export const extra: DefaultPublication = { kind: 'a', at: [1, 2], tags: { a: 'b' }, maybe: null, both: { x: 1, y: 2 } };

// @ts-expect-error price must be a number
export const bad1: PublicationOf<'quotes:ACME'> = { type: 'quote.updated', symbol: 'ACME', price: '1', currency: 'USD', at: 'now' };
// @ts-expect-error currency outside the enum
export const bad2: PublicationOf<'quotes:ACME'> = { type: 'quote.updated', symbol: 'ACME', price: 1, currency: 'XXX', at: 'now' };
// @ts-expect-error unknown event type
export const bad3: PublicationOf<'project:p1'> = { type: 'project.deleted', projectId: 'p1' };
// @ts-expect-error extra property on a closed object
export const bad4: RpcRequestOf<'quote:get'> = { symbol: 'A', extra: 1 };
// @ts-expect-error required property missing
export const bad5: RpcRequestOf<'admin:kick'> = { reason: 'x' };
// @ts-expect-error tuple element of the wrong type
export const bad6: DefaultPublication = { kind: 'a', at: [1, 'x'] };
// @ts-expect-error enum in the default namespace
export const bad7: DefaultPublication = { kind: 'c', at: [1, 2] };
`,
  );
  const tsc = spawnSync(
    process.execPath,
    [
      TSC,
      '--strict',
      '--noEmit',
      '--target',
      'es2022',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--skipLibCheck',
      join(dir, 'usage.ts'),
    ],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}\n${tsc.stderr}`);
});
