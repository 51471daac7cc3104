/**
 * The hub on its own: the node's index of connections and subscriptions and
 * its local fan-out. Real Hub, real Subscriber, the real JSON codec; the
 * connections are small HubClient implementations whose queue records what
 * it is given (the hub's side of the OutboundQueue contract).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hub, Subscriber, publicationBytes, type HubClient } from '../src/hub/hub.js';
import type { Codec } from '../src/protocol/codec.js';
import { jsonCodec } from '../src/protocol/json.js';
import type { Publication } from '../src/protocol/types.js';
import type { OutboundQueue } from '../src/transport/connection.js';

class RecordingQueue implements OutboundQueue {
  readonly sent: Buffer[] = [];
  closed = false;
  get pendingBytes(): number {
    return 0;
  }
  enqueue(msg: Buffer): void {
    if (!this.closed) this.sent.push(msg);
  }
  discard(): void {}
  close(): void {
    this.closed = true;
  }
}

let n = 0;
class Client implements HubClient {
  readonly id = `client-${++n}`;
  readonly session = `session-${n}`;
  readonly writer = new RecordingQueue();
  readonly insufficient: string[] = [];
  constructor(
    readonly user: string,
    readonly codec: Codec = jsonCodec,
    private readonly hub?: Hub,
  ) {}
  insufficientState(channel: string): void {
    this.insufficient.push(channel);
    // as a session does: the subscription goes away
    if (this.hub) for (const s of subs.get(this) ?? []) if (s.channel === channel) this.hub.removeSubscriber(s);
  }
  get texts(): string[] {
    return this.writer.sent.map(String);
  }
}
const subs = new Map<Client, Subscriber[]>();

function subscribe(hub: Hub, c: Client, channel: string): { sub: Subscriber; first: boolean } {
  const sub = new Subscriber(c, channel);
  const first = hub.addSubscriber(sub);
  subs.set(c, [...(subs.get(c) ?? []), sub]);
  return { sub, first };
}

/** A second encoding for the tests: JSON bytes, its own cache slot, counting its encodings. */
function countingCodec(slot: number): Codec & { encoded: number } {
  const c = { ...jsonCodec, slot, encoded: 0 };
  c.publicationPush = (channel: string, pub: Publication) => {
    c.encoded++;
    return jsonCodec.publicationPush(channel, pub);
  };
  return c;
}

const pub = (offset: number, data = `{"n":${offset}}`): Publication => ({ offset, data });

test('fan-out: every subscriber of the channel gets the publication, nobody else', () => {
  const hub = new Hub();
  const a = new Client('a');
  const b = new Client('b');
  const c = new Client('c');
  subscribe(hub, a, 'news');
  subscribe(hub, b, 'news');
  subscribe(hub, c, 'other');
  hub.publish('news', pub(0, '{"x":1}'));
  assert.equal(a.writer.sent.length, 1);
  assert.equal(b.writer.sent.length, 1);
  assert.equal(c.writer.sent.length, 0);
  assert.deepEqual(JSON.parse(a.texts[0]!), { push: { channel: 'news', pub: { data: { x: 1 } } } });
  assert.equal(hub.deliveries, 2);
  hub.publish('nobody', pub(0));
  assert.equal(hub.deliveries, 2, 'a channel without subscribers costs nothing');
});

test('fan-out: one encoding per codec per publication, the same bytes shared by its subscribers', () => {
  const hub = new Hub();
  const one = countingCodec(5);
  const two = countingCodec(6);
  const clients = [new Client('a', one), new Client('b', two), new Client('c', one), new Client('d', two), new Client('e', one)];
  for (const c of clients) subscribe(hub, c, 'ch');
  const p = pub(0);
  hub.publish('ch', p);
  assert.equal(one.encoded, 1, 'encoded once for the first codec, though its subscribers are not adjacent');
  assert.equal(two.encoded, 1, 'once for the second');
  const [a, b, c, d, e] = clients.map((x) => x.writer.sent[0]!);
  assert.equal(a, c, 'same codec: the same Buffer');
  assert.equal(a, e);
  assert.equal(b, d);
  assert.notEqual(a, b, 'another codec: bytes of its own');
  // a recovering subscriber's merge later asks for the same publication: served from the cache
  assert.equal(publicationBytes(one, 'ch', p, hub.encodes), a);
  assert.equal(one.encoded, 1);
});

test('subscribers: first and last are reported, counts follow adds and removes, duplicates do not count', () => {
  const hub = new Hub();
  const a = new Client('a');
  const b = new Client('b');
  const sa = subscribe(hub, a, 'ch');
  assert.equal(sa.first, true);
  const sb = subscribe(hub, b, 'ch');
  assert.equal(sb.first, false);
  assert.equal(hub.addSubscriber(sa.sub), false, 'adding the same subscriber again');
  assert.equal(hub.numSubscribers('ch'), 2);
  assert.equal(hub.numSubscriptions, 2);
  assert.equal(hub.numChannels, 1);
  assert.equal(hub.removeSubscriber(sa.sub), false, 'not the last one');
  assert.equal(hub.removeSubscriber(sa.sub), false, 'removing twice changes nothing');
  assert.equal(hub.numSubscriptions, 1);
  assert.equal(hub.removeSubscriber(sb.sub), true, 'the last one');
  assert.equal(hub.hasSubscribers('ch'), false);
  assert.equal(hub.numSubscriptions, 0);
  assert.equal(hub.numChannels, 0);
  assert.equal(subscribe(hub, a, 'ch').first, true, 'a channel emptied and refilled is new again');
});

test('recovery: a buffering subscriber keeps live publications and gets them on activation, once and in order', () => {
  const hub = new Hub();
  const live = new Client('live');
  const rec = new Client('rec');
  const l = subscribe(hub, live, 'ch').sub;
  l.positioned = true;
  l.offset = 4; // where the stream stood when it subscribed
  const r = subscribe(hub, rec, 'ch').sub;
  r.positioned = true;
  r.buffer = [];
  hub.publish('ch', pub(5));
  hub.publish('ch', pub(6));
  assert.equal(rec.writer.sent.length, 0, 'nothing written while recovering');
  assert.equal(live.writer.sent.length, 2);
  assert.equal(hub.deliveries, 2, 'buffered publications are not counted as deliveries');
  // history answered up to offset 5: the session activates the subscription, skipping what recovery covered
  r.offset = 5;
  const buffered = r.buffer;
  r.buffer = null;
  for (const p of buffered) if (p.offset > r.offset) r.deliver(p, publicationBytes(rec.codec, 'ch', p, hub.encodes));
  hub.publish('ch', pub(7));
  assert.deepEqual(
    rec.texts.map((t) => JSON.parse(t).push.pub.offset),
    [6, 7],
  );
  assert.equal(rec.writer.sent[0], live.writer.sent[1], 'the merge reuses the bytes fan-out made');
});

test('offsets: duplicates are dropped; a gap on a positioned subscription asks the client to recover', () => {
  const hub = new Hub();
  const c = new Client('c', jsonCodec, hub);
  const s = subscribe(hub, c, 'ch').sub;
  s.positioned = true;
  hub.publish('ch', pub(1));
  hub.publish('ch', pub(1));
  hub.publish('ch', pub(2));
  assert.equal(c.writer.sent.length, 2);
  hub.publish('ch', pub(4));
  assert.deepEqual(c.insufficient, ['ch']);
  assert.equal(c.writer.sent.length, 2, 'the publication after the gap is not written');
  assert.equal(hub.numSubscribers('ch'), 0);
});

test('join and leave reach only subscribers that asked for them and are not recovering', () => {
  const hub = new Hub();
  const yes = new Client('yes');
  const no = new Client('no');
  const recovering = new Client('recovering');
  subscribe(hub, yes, 'ch').sub.joinLeave = true;
  subscribe(hub, no, 'ch');
  const r = subscribe(hub, recovering, 'ch').sub;
  r.joinLeave = true;
  r.buffer = [];
  hub.join('ch', { user: 'u', client: 'x' });
  hub.leave('ch', { user: 'u', client: 'x' });
  assert.deepEqual(
    yes.texts.map((t) => Object.keys(JSON.parse(t).push).sort()),
    [
      ['channel', 'join'],
      ['channel', 'leave'],
    ],
  );
  assert.equal(no.writer.sent.length, 0);
  assert.equal(recovering.writer.sent.length, 0);
});

test('targets: user, client and session narrow together; a client id finds its connection whoever the user', () => {
  const hub = new Hub();
  const a1 = new Client('alice');
  const a2 = new Client('alice');
  const b = new Client('bob');
  const anon = new Client('');
  for (const c of [a1, a2, b, anon]) hub.addClient(c);
  const ids = (cs: readonly HubClient[]): string[] => cs.map((c) => c.id).sort();
  assert.deepEqual(ids(hub.matching({ user: 'alice' })), ids([a1, a2]));
  assert.deepEqual(ids(hub.matching({ user: 'alice', session: a2.session })), [a2.id]);
  assert.deepEqual(ids(hub.matching({ user: '', client: b.id })), [b.id]);
  assert.deepEqual(ids(hub.matching({ user: 'alice', client: b.id })), []);
  assert.deepEqual(ids(hub.matching({ user: '', session: b.session })), [b.id]);
  assert.deepEqual(ids(hub.matching({ user: 'bob', client: b.id, session: a1.session })), []);
  assert.deepEqual(ids(hub.matching({ user: '' })), [anon.id], 'an empty target is the anonymous connections');
  hub.removeClient(a1);
  assert.deepEqual(ids(hub.matching({ user: 'alice' })), [a2.id]);
  assert.deepEqual(hub.matching({ user: '', client: a1.id }), []);
});

test('resync tells the subscribers of the named channels (or all), each once', () => {
  const hub = new Hub();
  const a = new Client('a', jsonCodec, hub);
  const b = new Client('b', jsonCodec, hub);
  subscribe(hub, a, 'x');
  subscribe(hub, a, 'y');
  subscribe(hub, b, 'y');
  subscribe(hub, b, 'z');
  hub.resync(['y', 'missing']);
  assert.deepEqual(a.insufficient, ['y']);
  assert.deepEqual(b.insufficient, ['y']);
  assert.equal(hub.hasSubscribers('y'), false);
  hub.resync('all');
  assert.deepEqual(a.insufficient, ['y', 'x']);
  assert.deepEqual(b.insufficient, ['y', 'z']);
  assert.equal(hub.numSubscriptions, 0);
});

test('a positioned subscriber at position 0 (a new stream) takes 1 first: a 2 that overtook it is a gap, not the start', () => {
  const hub = new Hub();
  const c = new Client('c');
  const s = subscribe(hub, c, 'fresh').sub;
  s.positioned = true; // its subscribe read the stream at offset 0
  hub.publish('fresh', pub(2));
  assert.deepEqual(c.insufficient, ['fresh'], 'publication 1 was skipped: the client must recover it');
  const d = new Client('d');
  const t = subscribe(hub, d, 'fresh2').sub;
  t.positioned = true;
  hub.publish('fresh2', pub(1));
  hub.publish('fresh2', pub(2));
  assert.deepEqual(d.insufficient, []);
  assert.deepEqual(
    d.texts.map((x) => JSON.parse(x).push.pub.offset),
    [1, 2],
  );
});
