/**
 * The Protobuf decoder under fuzzing (fast-check), in process and over a
 * real socket, and the binary framing on the wire: several length-delimited
 * messages per frame in both directions, no newline between them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { DisconnectError } from '../src/protocol/codes.js';
import { METHODS } from '../src/protocol/commands.js';
import { protobufCodec } from '../src/protocol/protobuf.js';
import { CommandType, ReplyType } from '../src/protocol/protobuf-schema.js';
import { embedded, SECRET } from './helpers/embedded.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';

const RUNS = 300;

function decodeOrClose(frame: Buffer): ReturnType<typeof protobufCodec.decode> | 'closed' {
  try {
    return protobufCodec.decode(frame, true);
  } catch (e) {
    assert.ok(e instanceof DisconnectError, `decode threw ${String(e)} for ${frame.toString('hex').slice(0, 200)}`);
    assert.equal(e.disconnect.code, 3501);
    return 'closed';
  }
}

const encode = (cmds: Record<string, unknown>[]) => Buffer.concat(cmds.map((c) => CommandType.encodeDelimited(c).finish()));
const commandArb = fc.record({
  id: fc.integer({ min: 1, max: 2 ** 31 }),
  publish: fc.record({ channel: fc.string({ minLength: 1, maxLength: 20 }), data: fc.uint8Array({ maxLength: 40 }) }),
});

test('protobuf decode: random and mutated bytes decode to commands or are a 3501 bad request, nothing else', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
        fc
          .tuple(fc.array(commandArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 }))
          .map(([cmds, at, byte]) => {
            const b = encode(cmds);
            b[at % b.length] = byte;
            return b;
          }),
        fc.tuple(fc.array(commandArb, { minLength: 1, maxLength: 4 }), fc.nat()).map(([cmds, cut]) => {
          const b = encode(cmds);
          return b.subarray(0, cut % b.length);
        }),
      ),
      (frame) => {
        const r = decodeOrClose(frame);
        if (r === 'closed') return;
        for (const c of r) {
          assert.ok(Number.isSafeInteger(c.id) && c.id >= 0);
          assert.ok(c.method === undefined || (METHODS as readonly string[]).includes(c.method));
          assert.equal(typeof c.params, 'object');
        }
      },
    ),
    { numRuns: RUNS },
  );
});

test('protobuf decode: well-formed commands round-trip, concatenated in any number; data bytes become values', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { minLength: 1, maxLength: 6 }), (cmds) => {
      const r = decodeOrClose(encode(cmds));
      assert.notEqual(r, 'closed');
      assert.equal((r as unknown[]).length, cmds.length);
      (r as ReturnType<typeof protobufCodec.decode>).forEach((c, i) => {
        assert.equal(c.id, cmds[i]!.id);
        assert.equal(c.method, 'publish');
        assert.equal(c.params.channel, cmds[i]!.publish.channel);
      });
    }),
    { numRuns: RUNS },
  );
  const [c] = protobufCodec.decode(encode([{ id: 1, publish: { channel: 'a', data: Buffer.from('{"x": [1, 2]}') } }]), true);
  assert.deepEqual(c!.params.data, { x: [1, 2] });
  const [d] = protobufCodec.decode(encode([{ id: 1, publish: { channel: 'a', data: Buffer.from([0xff, 0]) } }]), true);
  assert.equal(d!.params.data, '\u0000b64:' + Buffer.from([0xff, 0]).toString('base64'));
  const [e] = protobufCodec.decode(encode([{ id: 1, publish: { channel: 'a', data: new Uint8Array(0) } }]), true);
  assert.equal('data' in e!.params, false, 'empty bytes are no payload');
});

/** Length-delimited replies of one binary frame. */
function replies(frame: Buffer): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  let pos = 0;
  while (pos < frame.length) {
    const m = ReplyType.decodeDelimited(frame.subarray(pos));
    out.push(ReplyType.toObject(m, { longs: Number }));
    pos += ReplyType.encodeDelimited(m).finish().length;
  }
  return out;
}

test('on the wire: commands concatenated in one binary frame get replies as binary frames of concatenated messages; fuzzed frames close with 3501 and the node keeps serving', async (t) => {
  const node = await embedded(t, { channel: { without_namespace: { allow_subscribe_for_client: true } } });
  const token = await mintToken(SECRET, { sub: 'raw' });
  const ws = new WebSocket(node.ws, 'centrifuge-protobuf');
  t.after(() => ws.terminate());
  await waitFor(ws, 'open');
  assert.equal(ws.protocol, 'centrifuge-protobuf', 'the server accepts the subprotocol');
  const frames: Array<{ data: Buffer; binary: boolean }> = [];
  ws.on('message', (data: Buffer, binary: boolean) => frames.push({ data, binary }));
  ws.send(
    encode([
      { id: 1, connect: { token } },
      { id: 2, subscribe: { channel: 'c1' } },
      { id: 3, subscribe: { channel: 'c2' } },
    ]),
  );
  const got: Array<Record<string, any>> = [];
  while (got.length < 3) {
    if (frames.length === 0) await waitFor(ws, 'message');
    const f = frames.shift()!;
    assert.equal(f.binary, true);
    got.push(...replies(f.data));
  }
  assert.deepEqual(
    got.map((r) => r.id),
    [1, 2, 3],
  );
  assert.equal(got[0]!.connect.client.length > 0, true);
  assert.ok(got[1]!.subscribe && got[2]!.subscribe);
  const pushed = waitFor(ws, 'message');
  await node.sb.publish('c1', { hello: 1 });
  const [push] = replies(await pushed);
  assert.equal(push!.push.channel, 'c1');
  assert.deepEqual(JSON.parse(Buffer.from(push!.push.pub.data).toString()), { hello: 1 });

  // fuzzed truncated frames from fresh connections: each ends with 3501, never a hang
  const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 64 }), 30);
  for (const bytes of samples) {
    const f = new WebSocket(node.ws, 'centrifuge-protobuf');
    await waitFor(f, 'open');
    const closed = new Promise<number>((r) => f.once('close', (code) => r(code)));
    // a first message announced as 127 bytes with at most 64 present: never well-formed, whatever follows
    f.send(Buffer.concat([Buffer.from([0x7f]), Buffer.from(bytes)]), { binary: true });
    assert.equal(await closed, 3501);
  }
  const again = waitFor(ws, 'message');
  await node.sb.publish('c2', { still: 'alive' });
  assert.equal(replies(await again)[0]!.push.channel, 'c2');
});
