/**
 * The node keeps its engine subscribed to exactly the channels its hub has
 * subscribers for. Real Hub and ChannelSubscriptions; the engine side is a
 * small broker that records subscribe/unsubscribe and answers when told, as
 * a remote broker answers after a round trip.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelSubscriptions } from '../src/node/channel-subscriptions.js';
import { Hub, Subscriber, type HubClient } from '../src/hub/hub.js';
import { createLogger } from '../src/observability/logger.js';
import { jsonCodec } from '../src/protocol/json.js';

class SlowBroker {
  readonly calls: string[] = [];
  readonly subscribed = new Set<string>();
  private pending: Array<() => void> = [];
  failNext = false;
  subscribe(ch: string): Promise<void> {
    this.calls.push('sub:' + ch);
    const fail = this.failNext;
    this.failNext = false;
    return new Promise((resolve, reject) =>
      this.pending.push(() => {
        if (fail) return reject(new Error('broker down'));
        this.subscribed.add(ch);
        resolve();
      }),
    );
  }
  unsubscribe(ch: string): Promise<void> {
    this.calls.push('unsub:' + ch);
    return new Promise((resolve) =>
      this.pending.push(() => {
        this.subscribed.delete(ch);
        resolve();
      }),
    );
  }
  /** Answers every request made so far, then lets the node's follow-ups run. */
  async answer(): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const p = this.pending;
      this.pending = [];
      for (const f of p) f();
      await new Promise((r) => setImmediate(r));
    }
  }
}

const client = (id: string): HubClient => ({
  id,
  session: 's-' + id,
  user: 'u',
  codec: jsonCodec,
  writer: { closed: false, pendingBytes: 0, enqueue() {}, discard() {}, close() {} },
  insufficientState() {},
});

function setup(): { hub: Hub; broker: SlowBroker; subs: ChannelSubscriptions } {
  const hub = new Hub();
  const broker = new SlowBroker();
  return { hub, broker, subs: new ChannelSubscriptions(hub, broker, createLogger('none')) };
}

test('the first subscriber subscribes the node once; every add resolves when the engine delivers', async () => {
  const { broker, subs } = setup();
  let resolved = 0;
  const a = subs.add(new Subscriber(client('a'), 'ch')).then(() => resolved++);
  const b = subs.add(new Subscriber(client('b'), 'ch')).then(() => resolved++);
  await new Promise((r) => setImmediate(r));
  assert.equal(resolved, 0, 'nobody is told before the engine answers');
  await broker.answer();
  await Promise.all([a, b]);
  assert.deepEqual(broker.calls, ['sub:ch']);
  assert.ok(broker.subscribed.has('ch'));
});

test('only the last subscriber leaving unsubscribes the node', async () => {
  const { broker, subs } = setup();
  const sa = new Subscriber(client('a'), 'ch');
  const sb = new Subscriber(client('b'), 'ch');
  const added = Promise.all([subs.add(sa), subs.add(sb)]);
  await broker.answer();
  await added;
  subs.remove(sa);
  subs.remove(sa);
  await broker.answer();
  assert.deepEqual(broker.calls, ['sub:ch']);
  subs.remove(sb);
  await broker.answer();
  assert.deepEqual(broker.calls, ['sub:ch', 'unsub:ch']);
  assert.equal(broker.subscribed.size, 0);
});

test('a subscriber arriving while the unsubscribe is in flight resubscribes after it, in order', async () => {
  const { broker, subs } = setup();
  const sa = new Subscriber(client('a'), 'ch');
  const first = subs.add(sa);
  await broker.answer();
  await first;
  subs.remove(sa);
  await new Promise((r) => setImmediate(r)); // the unsubscribe is sent, not answered
  assert.deepEqual(broker.calls, ['sub:ch', 'unsub:ch']);
  let live = false;
  const again = subs.add(new Subscriber(client('b'), 'ch')).then(() => (live = true));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(broker.calls, ['sub:ch', 'unsub:ch'], 'the subscribe waits for the unsubscribe');
  assert.equal(live, false);
  await broker.answer();
  await again;
  assert.deepEqual(broker.calls, ['sub:ch', 'unsub:ch', 'sub:ch']);
  assert.ok(broker.subscribed.has('ch'), 'the node ends subscribed');
});

test('a failed engine subscribe rejects the add and the next subscriber tries again', async () => {
  const { hub, broker, subs } = setup();
  broker.failNext = true;
  const sa = new Subscriber(client('a'), 'ch');
  const failed = assert.rejects(subs.add(sa), /broker down/);
  await broker.answer();
  await failed;
  subs.remove(sa); // the session removes its subscriber when the subscribe fails
  assert.equal(hub.hasSubscribers('ch'), false);
  const ok = subs.add(new Subscriber(client('b'), 'ch'));
  await broker.answer();
  await ok;
  assert.ok(broker.subscribed.has('ch'));
  assert.equal(broker.calls.filter((c) => c === 'sub:ch').length, 2);
});
