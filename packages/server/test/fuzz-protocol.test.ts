/**
 * Property-based fuzzing (fast-check) of the protocol decoder and of command
 * handling over a real socket. Bounded runs; a failing property prints the
 * shrunk counter-example and its seed, so it can be replayed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { decodeFrame, METHODS } from '../src/protocol/commands.js';
import { DisconnectError } from '../src/protocol/codes.js';
import { RawClient, WebSocket } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';

const RUNS = 200;

// ---- the decoder, in process ----

/** Runs decodeFrame; the only acceptable failure is a 3501 DisconnectError. */
function decodeOrClose(text: string): ReturnType<typeof decodeFrame> | 'closed' {
  try {
    return decodeFrame(text);
  } catch (e) {
    assert.ok(e instanceof DisconnectError, `decodeFrame threw ${String(e)} for ${JSON.stringify(text).slice(0, 200)}`);
    assert.equal(e.disconnect.code, 3501);
    return 'closed';
  }
}

const methodArb = fc.constantFrom<string>(...METHODS, 'bogus', '__proto__', 'constructor', 'toString', '');

test('decodeFrame: any text decodes to commands or is a 3501 bad request, nothing else', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 400 }),
        fc.json({ maxDepth: 4 }),
        fc.string({ unit: fc.constantFrom('{', '}', '"', ':', ',', '\n', 'i', 'd', '1', '[', ']', ' ', '\\'), maxLength: 60 }),
      ),
      (text) => {
        const r = decodeOrClose(text);
        if (r === 'closed') return;
        for (const c of r) {
          assert.ok(Number.isSafeInteger(c.id) && c.id >= 0);
          assert.ok(c.method === undefined || (METHODS as readonly string[]).includes(c.method));
          assert.equal(typeof c.params, 'object');
          assert.ok(c.params !== null && !Array.isArray(c.params));
        }
      },
    ),
    { numRuns: RUNS * 5 },
  );
});

test('decodeFrame: well-formed commands round-trip, newline-joined in any number', () => {
  const cmd = fc.record({
    id: fc.integer({ min: 1, max: 2 ** 31 }),
    method: fc.constantFrom(...METHODS),
    params: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
  });
  fc.assert(
    fc.property(fc.array(cmd, { minLength: 1, maxLength: 6 }), fc.constantFrom('\n', '\n\n', ' \n '), (cmds, sep) => {
      const text = cmds.map((c) => JSON.stringify({ id: c.id, [c.method]: c.params })).join(sep);
      const out = decodeFrame(text);
      assert.equal(out.length, cmds.length);
      out.forEach((o, i) => {
        assert.equal(o.id, cmds[i]!.id);
        assert.equal(o.method, cmds[i]!.method);
        // JSON.stringify drops -0 and the like; compare through the same encoding.
        assert.deepEqual(JSON.parse(JSON.stringify(o.params)), JSON.parse(JSON.stringify(cmds[i]!.params)));
      });
    }),
    { numRuns: RUNS },
  );
});

test('decodeFrame: non-object JSON values, bad ids and two methods in one command are 3501', () => {
  const nonObject = fc.jsonValue().filter((v) => v === null || typeof v !== 'object' || Array.isArray(v));
  const badId = fc.oneof(
    fc.integer({ max: -1 }),
    fc.double({ noInteger: true }),
    fc.string(),
    fc.boolean(),
    fc.constant(2 ** 60),
    fc.array(fc.nat()),
  );
  fc.assert(
    fc.property(nonObject, (v) => assert.equal(decodeOrClose(JSON.stringify(v)), 'closed')),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(badId, fc.constantFrom(...METHODS), (id, m) => assert.equal(decodeOrClose(JSON.stringify({ id, [m]: {} })), 'closed')),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.uniqueArray(fc.constantFrom(...METHODS), { minLength: 2, maxLength: 3 }), (ms) => {
      const o: Record<string, unknown> = { id: 1 };
      for (const m of ms) o[m] = {};
      assert.equal(decodeOrClose(JSON.stringify(o)), 'closed');
    }),
    { numRuns: RUNS },
  );
});

// ---- command handling over a real socket ----

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  const open = {
    allow_subscribe_for_client: true,
    allow_subscribe_for_anonymous: true,
    allow_publish_for_client: true,
    allow_publish_for_anonymous: true,
    allow_history_for_client: true,
    allow_history_for_anonymous: true,
    allow_presence_for_client: true,
    allow_presence_for_anonymous: true,
    allow_user_limited_channels: true,
    presence: true,
    join_leave: true,
    force_push_join_leave: true,
    history_size: 20,
    history_ttl: '60s',
    allow_recovery: true,
    allow_positioning: true,
  };
  s = await startServer(S, {
    client: { allow_anonymous_connect_without_token: true, channel_limit: 8, max_message_size: 8192 },
    channel: {
      without_namespace: open,
      namespaces: [
        {
          name: 'typed',
          ...open,
          publication_schema: {
            type: 'object',
            required: ['n'],
            properties: { n: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
          },
        },
        { name: 'closed' },
      ],
    },
    rpc: { schemas: { sum: { type: 'object', required: ['a', 'b'], properties: { a: { type: 'number' }, b: { type: 'number' } } } } },
  });
});

/** Frames a real client sends, as seeds for mutation. */
const SEEDS = [
  '{"id":1,"connect":{"name":"js","version":"5.7.4"}}',
  '{"id":2,"subscribe":{"channel":"news","recover":true,"offset":3,"epoch":"abc","positioned":true,"recoverable":true}}',
  '{"id":3,"publish":{"channel":"typed:a","data":{"n":1,"tags":["x"]}}}',
  '{"id":4,"history":{"channel":"news","limit":10,"since":{"offset":1,"epoch":"e"},"reverse":true}}',
  '{"id":5,"presence":{"channel":"news"}}\n{"id":6,"presence_stats":{"channel":"news"}}',
  '{"id":7,"rpc":{"method":"sum","data":{"a":1,"b":2}}}',
  '{"id":8,"refresh":{"token":"x.y.z"}}',
  '{"id":9,"sub_refresh":{"channel":"news","token":"x.y.z"}}',
  '{"id":10,"unsubscribe":{"channel":"news"}}',
  '{"send":{"data":{"hello":"world"}}}',
  '{}',
];

const numberish = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 1, 2 ** 53, 1e308, -0),
  fc.string({ maxLength: 4 }),
  fc.boolean(),
  fc.constant(null),
);
const channelArb = fc.oneof(
  fc.constantFrom('news', 'typed:a', 'closed:x', 'nope:x', '$private', 'room#1', 'room#1,2', 'a'.repeat(300), '', ':', '#', 'typed:'),
  fc.string({ maxLength: 16 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const paramsArb = fc.oneof(
  fc.record(
    {
      channel: fc.oneof(channelArb, fc.jsonValue({ maxDepth: 1 })),
      token: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('a.b.c'), fc.jsonValue({ maxDepth: 1 })),
      data: fc.jsonValue({ maxDepth: 3 }),
      offset: numberish,
      epoch: fc.oneof(fc.string({ maxLength: 8 }), numberish),
      recover: fc.oneof(fc.boolean(), numberish),
      recoverable: fc.oneof(fc.boolean(), numberish),
      positioned: fc.oneof(fc.boolean(), numberish),
      join_leave: fc.oneof(fc.boolean(), numberish),
      reverse: fc.oneof(fc.boolean(), numberish),
      limit: numberish,
      since: fc.oneof(
        fc.record({ offset: numberish, epoch: fc.oneof(fc.string({ maxLength: 8 }), numberish) }, { requiredKeys: [] }),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      method: fc.oneof(fc.constantFrom('sum', '', 'ns:m'), fc.string({ maxLength: 10 }), numberish),
      subs: fc.oneof(fc.dictionary(channelArb, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), fc.jsonValue({ maxDepth: 1 })),
      name: fc.oneof(fc.string({ maxLength: 10 }), numberish),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);
/** Commands the decoder accepts (right id, known method, object params) with fuzzed field values: they reach the handlers. */
const wellShapedArb = fc
  .tuple(
    fc.integer({ min: 1, max: 1_000_000 }),
    fc.constantFrom<string>(...METHODS.filter((m) => m !== 'connect')),
    paramsArb.filter((p) => p !== null && typeof p === 'object' && !Array.isArray(p)),
  )
  .map(([id, m, p]) => JSON.stringify({ id, [m]: p }));
const idArb = fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.constant(undefined), fc.constant(0), numberish);
const commandArb = fc
  .tuple(idArb, methodArb, paramsArb)
  .map(([id, m, p]) => JSON.stringify(id === undefined ? { [m]: p } : { id, [m]: p }));

/** Deletes, inserts, replaces or duplicates characters of a seed frame. */
const mutatedArb = fc
  .tuple(
    fc.constantFrom(...SEEDS),
    fc.array(
      fc.tuple(fc.constantFrom('del', 'ins', 'rep', 'dup', 'cut'), fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([seed, ops]) => {
    let t = seed;
    for (const [op, at, str] of ops) {
      const i = t.length === 0 ? 0 : at % t.length;
      if (op === 'del') t = t.slice(0, i) + t.slice(i + 1);
      else if (op === 'ins') t = t.slice(0, i) + str + t.slice(i);
      else if (op === 'rep') t = t.slice(0, i) + str + t.slice(i + str.length);
      else if (op === 'dup') t = t + '\n' + t;
      else t = t.slice(0, i);
    }
    return t;
  });

type Frame =
  | { kind: 'text'; text: string }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'badutf8'; bytes: Uint8Array }
  | { kind: 'big'; size: number };
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.array(wellShapedArb, { minLength: 1, maxLength: 6 }).map((cs) => ({ kind: 'text' as const, text: cs.join('\n') })),
  },
  {
    weight: 5,
    arbitrary: fc.array(commandArb, { minLength: 1, maxLength: 4 }).map((cs) => ({ kind: 'text' as const, text: cs.join('\n') })),
  },
  { weight: 4, arbitrary: mutatedArb.map((text) => ({ kind: 'text' as const, text })) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: 'binary' as const, bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 16 })
      .map((b) => ({ kind: 'badutf8' as const, bytes: Uint8Array.from([...b, 0xc3, 0x28]) })),
  },
  { weight: 1, arbitrary: fc.integer({ min: 8193, max: 20000 }).map((size) => ({ kind: 'big' as const, size })) },
);

const SENTINEL = 4_000_001;
/** Close codes the server may end a fuzzed connection with: protocol disconnects, or ws's own for oversize / invalid UTF-8. */
const acceptableClose = (code: number): boolean => (code >= 3000 && code <= 3999) || code === 1009 || code === 1007;

interface RunOutcome {
  readonly closeCode?: number;
  readonly messages: unknown[];
}

async function fuzzOnce(preconnect: 'none' | 'token' | 'anonymous', frames: Frame[]): Promise<RunOutcome> {
  const run = scope();
  try {
    const c = await RawClient.open(run, s);
    const ws = c.ws;
    if (preconnect === 'token') await c.connect(await mintToken(s.secret, { sub: 'fuzzer' }));
    else if (preconnect === 'anonymous') await c.connect('');
    for (const f of frames) {
      if (ws.readyState !== WebSocket.OPEN) break;
      if (f.kind === 'text') ws.send(f.text);
      else if (f.kind === 'binary') ws.send(f.bytes, { binary: true });
      else if (f.kind === 'badutf8') ws.send(f.bytes, { binary: false });
      else ws.send('{"id":1,"publish":{"channel":"news","data":"' + 'x'.repeat(f.size) + '"}}');
    }
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id: SENTINEL, presence_stats: { channel: 'news' } }));
    // Either the sentinel is answered (commands are handled in order, so all before it were too) or the server closed.
    await c.reply(SENTINEL, 5000).catch(() => {
      if (c.closeCode === undefined) throw new Error('no reply to the sentinel and no close within 5 s (a hang)');
    });
    return { closeCode: c.closeCode, messages: [...c.messages] };
  } finally {
    await run.close();
  }
}

function checkReplies(messages: unknown[]): void {
  for (const m of messages as Array<Record<string, unknown>>) {
    if (!m || typeof m !== 'object' || m.id === undefined) continue; // pushes and pings
    assert.ok(typeof m.id === 'number' && m.id > 0, `reply with a bad id: ${JSON.stringify(m)}`);
    const err = m.error as { code?: unknown } | undefined;
    if (err !== undefined) {
      assert.equal(typeof err.code, 'number', `error without a code: ${JSON.stringify(m)}`);
      assert.notEqual(err.code, 100, `internal error (an unexpected exception in the server) for fuzzed input: ${JSON.stringify(m)}`);
    } else {
      const keys = Object.keys(m).filter((k) => k !== 'id');
      assert.equal(keys.length, 1, `reply must carry exactly one result: ${JSON.stringify(m)}`);
    }
  }
}

test('fuzzed frames over a real socket: every connection ends in replies with codes or a protocol close; no hang, no crash', async (t) => {
  const closes = new Map<number, number>();
  const codes = new Map<number, number>();
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<'none' | 'token' | 'anonymous'>('none', 'token', 'token', 'anonymous', 'anonymous'),
      fc.array(frameArb, { minLength: 1, maxLength: 5 }),
      async (pre, frames) => {
        const out = await fuzzOnce(pre, frames);
        checkReplies(out.messages);
        for (const m of out.messages as Array<{ error?: { code: number } }>)
          if (m?.error) codes.set(m.error.code, (codes.get(m.error.code) ?? 0) + 1);
        if (out.closeCode !== undefined) {
          assert.ok(
            acceptableClose(out.closeCode),
            `closed with ${out.closeCode}, expected a protocol disconnect code (3000-3999) or 1007/1009`,
          );
          closes.set(out.closeCode, (closes.get(out.closeCode) ?? 0) + 1);
        } else {
          answered++;
        }
        assert.ok(s.alive(), `server died:\n${s.stderr().slice(-2000)}`);
      },
    ),
    { numRuns: RUNS },
  );
  t.diagnostic(
    `answered ${answered}; closes ${JSON.stringify(Object.fromEntries(closes))}; error replies ${JSON.stringify(Object.fromEntries(codes))}`,
  );
  // Not vacuous: both endings happened, and the bad input was counted.
  assert.ok(answered > 0, 'some runs should have been answered');
  assert.ok(closes.size > 0, 'some runs should have been closed');
  assert.ok((await s.metric('switchboard_bad_input_total')) > 0);
});

test('fuzzed command sequences in a connected session reach the handlers: replies with codes, never an internal error', async (t) => {
  const codes = new Map<number, number>();
  let answered = 0;
  let ok = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<'token' | 'anonymous'>('token', 'anonymous'),
      fc.array(fc.array(wellShapedArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
      async (pre, batches) => {
        const out = await fuzzOnce(
          pre,
          batches.map((cs) => ({ kind: 'text' as const, text: cs.join('\n') })),
        );
        checkReplies(out.messages);
        for (const m of out.messages as Array<{ id?: number; error?: { code: number } }>) {
          if (m?.error) codes.set(m.error.code, (codes.get(m.error.code) ?? 0) + 1);
          else if (m?.id !== undefined) ok++;
        }
        if (out.closeCode !== undefined) assert.ok(acceptableClose(out.closeCode), `closed with ${out.closeCode}`);
        else answered++;
      },
    ),
    { numRuns: RUNS },
  );
  t.diagnostic(`answered ${answered}/${RUNS}; ok replies ${ok}; error replies ${JSON.stringify(Object.fromEntries(codes))}`);
  assert.ok(answered > RUNS / 2, 'most sequences should be answered, not closed');
  assert.ok(ok > RUNS, 'many fuzzed commands should have succeeded');
});

test('after the fuzzing the server is alive, logged no internal failure, and serves a new client', async (t) => {
  assert.ok(s.alive());
  assert.doesNotMatch(s.stdout() + s.stderr(), /command failed|unhandled|uncaught/i);
  const a = await connectedClient(t, s, 'after-fuzz-a');
  const b = await connectedClient(t, s, 'after-fuzz-b');
  const sub = b.newSubscription('news');
  const subscribed = waitFor(sub, 'subscribed');
  sub.subscribe();
  await subscribed;
  const got = waitFor<{ data: unknown }>(sub, 'publication');
  await a.publish('news', { after: 'fuzz' });
  assert.deepEqual((await got).data, { after: 'fuzz' });
});
