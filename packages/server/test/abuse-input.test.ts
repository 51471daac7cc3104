/**
 * Bad input never crashes the process or hurts other connections:
 * garbage frames, oversize frames, unknown commands, invalid channel
 * names, deeply nested JSON, commands before connect. Each is answered
 * with a protocol error or a disconnect code and counted in /metrics.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;
const MAX = 65536;

before(async () => {
  s = await startServer(S, {
    client: { max_message_size: MAX },
    channel: {
      without_namespace: { allow_subscribe_for_client: true, allow_publish_for_subscriber: true },
      namespaces: [{ name: 'chat', allow_subscribe_for_client: true, allow_publish_for_client: true }],
    },
  });
});

async function badInputTotal(): Promise<number> {
  return s.metric('switchboard_bad_input_total');
}

async function connectedRaw(t: Parameters<typeof RawClient.open>[0], user = 'raw'): Promise<RawClient> {
  const raw = await RawClient.open(t, s);
  await raw.connect(await mintToken(s.secret, { sub: user }));
  return raw;
}

test('a malformed frame closes only that connection (3501); another client keeps working', async (t) => {
  const good = await connectedClient(t, s, 'good');
  const sub = good.newSubscription('bystander');
  const pubs = collect(sub, 'publication');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const goodEvents = collect(good, 'connecting');

  const before = await badInputTotal();
  const bad = await connectedRaw(t, 'bad');
  bad.send('{"id":1,"subscribe":{"channel":"x"');
  assert.equal((await bad.closedWithin()).code, 3501);

  await s.call('publish', { channel: 'bystander', data: { still: 'alive' } });
  const [p] = await pubs.until(1);
  assert.deepEqual(p.data, { still: 'alive' });
  assert.equal(good.state, 'connected');
  assert.equal(goodEvents.items.length, 0, 'the good client never reconnected');
  assert.ok((await badInputTotal()) >= before + 1);
});

test('every kind of garbage frame is answered with 3501', async (t) => {
  const frames: Array<[string, string | Buffer]> = [
    ['not json', 'hello'],
    ['json array', '[1,2,3]'],
    ['json scalar', '42'],
    ['null', 'null'],
    ['negative id', '{"id":-1,"presence":{"channel":"x"}}'],
    ['string id', '{"id":"1","presence":{"channel":"x"}}'],
    ['two methods', '{"id":1,"presence":{"channel":"x"},"history":{"channel":"x"}}'],
    ['params not an object', '{"id":1,"subscribe":"x"}'],
    ['command without id', '{"subscribe":{"channel":"x"}}'],
    ['binary frame', Buffer.from([0xde, 0xad, 0xbe, 0xef])],
    ['invalid utf-8 in a text frame', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
  ];
  for (const [what, frame] of frames) {
    const raw = await connectedRaw(t);
    if (what === 'invalid utf-8 in a text frame') raw.ws.send(frame, { binary: false });
    else raw.send(frame);
    const { code } = await raw.closedWithin();
    // ws itself refuses invalid UTF-8 in a text frame with 1007 before we see it.
    const expected = what === 'invalid utf-8 in a text frame' ? 1007 : 3501;
    assert.equal(code, expected, what);
  }
});

test('commands before connect close with 3501; a second connect too', async (t) => {
  const raw = await RawClient.open(t, s);
  raw.send(JSON.stringify({ id: 1, subscribe: { channel: 'x' } }));
  assert.equal((await raw.closedWithin()).code, 3501);

  const twice = await connectedRaw(t);
  twice.send(JSON.stringify({ id: 2, connect: { token: await mintToken(s.secret, { sub: 'raw' }) } }));
  assert.equal((await twice.closedWithin()).code, 3501);
});

test('a frame above client.max_message_size is closed with 1009 by ws, never buffered', async (t) => {
  const raw = await connectedRaw(t);
  raw.send(JSON.stringify({ id: 5, publish: { channel: 'chat:x', data: { blob: 'x'.repeat(MAX + 10) } } }));
  assert.equal((await raw.closedWithin()).code, 1009);
  // Before connect as well.
  const early = await RawClient.open(t, s);
  early.send('x'.repeat(MAX * 4));
  assert.equal((await early.closedWithin()).code, 1009);
});

test('unknown commands get 104 and the connection stays usable', async (t) => {
  const raw = await connectedRaw(t);
  raw.send(JSON.stringify({ id: 7, frobnicate: { channel: 'x' } }));
  const r = await raw.reply(7);
  assert.deepEqual(r.error, { code: 104, message: 'method not found' });
  const sub = await raw.command('subscribe', { channel: 'chat:after-unknown' });
  assert.ok(sub.subscribe, JSON.stringify(sub));
  assert.equal(raw.closeCode, undefined);
});

test('invalid channel names and wrong field types get 107, the connection stays', async (t) => {
  const raw = await connectedRaw(t);
  for (const params of [
    { channel: '' },
    { channel: 'x'.repeat(256) },
    { channel: 42 },
    {},
    { channel: 'ok', recover: 'yes' },
    { channel: 'ok2', offset: -1, recover: true },
  ]) {
    const r = await raw.command('subscribe', params);
    assert.equal(r.error?.code, 107, JSON.stringify(params));
  }
  assert.equal((await raw.command('presence', { channel: 42 })).error.code, 107);
  assert.equal((await raw.command('publish', { channel: 'chat:x' })).error.code, 107, 'publish without data');
  assert.ok((await raw.command('subscribe', { channel: 'chat:valid' })).subscribe);
  assert.equal(raw.closeCode, undefined);
});

const DEPTH = 30_000; // ~60 KB, under max_message_size
const NESTED = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
/** 1M levels through the HTTP API (2 MB body, under the body limit). */
async function apiPublishDeep(): Promise<{ status: number; body: Record<string, any> }> {
  const big = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
  const resp = await fetch(`${s.api}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': s.apiKey },
    body: `{"channel":"chat:deep","data":${big}}`,
  });
  return { status: resp.status, body: (await resp.json()) as Record<string, any> };
}

test('deeply nested JSON in a frame and in an API body: the connection and the process survive and keep serving', async (t) => {
  const raw = await connectedRaw(t);
  assert.ok((await raw.command('subscribe', { channel: 'chat:deep' })).subscribe);
  raw.send(`{"id":50,"publish":{"channel":"chat:deep","data":${NESTED}}}`);
  const r = await raw.reply(50, 10_000);
  assert.ok(r.error, `a reply, and not a publication: ${JSON.stringify(r).slice(0, 200)}`);
  // The same connection still answers and can publish normally.
  assert.equal((await raw.command('presence_stats', { channel: 'chat:deep' })).error.code, 108, 'still answering');
  const ok = await raw.command('publish', { channel: 'chat:deep', data: { flat: true } });
  assert.deepEqual(ok.publish, {});
  assert.equal(raw.closeCode, undefined);

  // Connect data nested deeply: the data is only handed to hooks, so the connect succeeds.
  const early = await RawClient.open(t, s);
  early.send(`{"id":1,"connect":{"token":${JSON.stringify(await mintToken(s.secret, { sub: 'deep' }))},"data":${NESTED}}}`);
  assert.equal(typeof (await early.reply(1, 10_000)).connect?.client, 'string');

  const api = await apiPublishDeep();
  assert.ok(api.body.error, `the API refused it with an error body: ${JSON.stringify(api.body)}`);
  assert.ok(s.alive());
  assert.equal((await s.call('info')).result.nodes.length, 1, 'the API keeps answering');
});

test('deeply nested publication data is refused as bad input (107), never answered as an internal error (100)', async (t) => {
  const raw = await connectedRaw(t);
  raw.send(`{"id":50,"publish":{"channel":"chat:deep","data":${NESTED}}}`);
  const r = await raw.reply(50, 10_000).catch(() => undefined);
  if (r) assert.equal(r.error?.code, 107, JSON.stringify(r).slice(0, 200));
  else assert.equal(raw.closeCode, 3501, 'or the frame is a bad request');
  const api = await apiPublishDeep();
  assert.equal(api.body.error?.code, 107, JSON.stringify(api.body));
});

test('a flood of commands in one frame is cut off at max_protocol_errors (3509); the rest is never processed; others unaffected', async (t) => {
  const bystander = await connectedRaw(t, 'bystander');
  const before3509 = await s.metric('switchboard_disconnects_total', { code: '3509' });
  const raw = await connectedRaw(t);
  const lines: string[] = [];
  for (let i = 1; i <= 2000; i++) lines.push(JSON.stringify({ id: 100 + i, presence_stats: { channel: 'chat:flood' } }));
  const frame = lines
    .join('\n')
    .slice(0, MAX - 1)
    .replace(/\n[^\n]*$/, '');
  const sent = frame.split('\n').length;
  assert.ok(sent > 500, `${sent} commands in the frame`);
  raw.send(frame);
  // chat has no presence: each command is an error reply (108); client.max_protocol_errors (default 100) ends it.
  assert.equal((await raw.closedWithin(5000)).code, 3509);
  const replies = raw.messages.filter((m) => m && m.id > 100);
  assert.equal(replies.length, 100, 'exactly max_protocol_errors replies, then nothing');
  assert.ok(
    replies.every((m) => m.error?.code === 108),
    'each one a 108',
  );
  assert.equal(await s.metric('switchboard_disconnects_total', { code: '3509' }), before3509 + 1);
  assert.ok(s.alive());
  assert.ok((await bystander.command('presence_stats', { channel: 'chat:x' })).error, 'the bystander still gets answers');
  assert.equal(bystander.closeCode, undefined);
});

test('after all of it the server serves a new client and /metrics counts the bad input', async (t) => {
  assert.ok(s.alive(), 'process still running');
  const text = await s.metricsText();
  const total = await badInputTotal();
  // malformed frames (11 garbage + 1 malformed + 2 sequencing), unknown method, and more.
  assert.ok(
    total >= 14,
    `switchboard_bad_input_total ${total}\n${text
      .split('\n')
      .filter((l) => l.includes('bad_input'))
      .join('\n')}`,
  );
  // message_too_big and invalid_utf8 are refused by ws itself; the server still counts them.
  for (const kind of ['malformed_frame', 'binary_frame', 'unknown_method', 'command_before_connect', 'message_too_big', 'invalid_utf8']) {
    assert.ok((await s.metric('switchboard_bad_input_total', { kind })) >= 1, `kind ${kind} counted`);
  }
  assert.ok((await s.metric('switchboard_disconnects_total', { code: '3501' })) >= 12);

  const c = await connectedClient(t, s, 'fresh');
  const sub = c.newSubscription('chat:fresh');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const got = waitFor(sub, 'publication');
  await sub.publish({ hello: 'again' });
  assert.deepEqual((await got).data, { hello: 'again' });
  assert.doesNotMatch(s.stderr(), /Error|uncaught|FATAL/i, 'nothing on stderr');
});
