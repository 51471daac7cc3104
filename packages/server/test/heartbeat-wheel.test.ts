/**
 * The heartbeat wheel on its own, on real timers: one timer for every
 * connection, a ping per connection per interval, a missing pong reported
 * once, and connections added or removed from inside a tick's callbacks
 * handled as if they came between ticks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeartbeatWheel, type Heartbeat } from '../src/transport/heartbeat.js';
import { within } from './helpers/wait.js';

const INTERVAL = 200; // ticks of 20 ms, 10 slots
const PONG = 100; // 5 ticks

class Conn implements Heartbeat {
  awaitingPong = false;
  hbSlot = -1;
  hbPongSlot = -1;
  readonly pings: number[] = [];
  readonly noPongs: number[] = [];
  onPing: (() => void) | undefined;
  onLate: (() => void) | undefined;
  private waiters: Array<() => void> = [];
  constructor(readonly answers: boolean) {}
  sendPing(): void {
    this.pings.push(performance.now());
    this.onPing?.();
    // the client's answer arrives later (a session clears the flag on any frame)
    if (this.answers) setImmediate(() => (this.awaitingPong = false));
    this.wake();
  }
  onNoPong(): void {
    this.noPongs.push(performance.now());
    this.onLate?.();
    this.wake();
  }
  /** Resolves when `cond` holds (checked after each ping or missing pong). */
  until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    return within(
      new Promise<void>((resolve) => {
        const check = (): void => (cond() ? resolve() : void this.waiters.push(check));
        check();
      }),
      ms,
      what,
    );
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

function wheel(t: { after(f: () => unknown): void }): HeartbeatWheel {
  const w = new HeartbeatWheel(INTERVAL, PONG);
  w.start();
  t.after(() => w.stop());
  return w;
}

test('each connection is pinged once per interval', async (t) => {
  const w = wheel(t);
  const conns = [new Conn(true), new Conn(true), new Conn(true)];
  const added = performance.now();
  for (const c of conns) w.add(c);
  for (const c of conns) await c.until(() => c.pings.length >= 3, 'three pings');
  for (const c of conns) {
    assert.ok(c.pings[0]! - added >= INTERVAL * 0.75, `first ping about an interval after add (${(c.pings[0]! - added).toFixed(0)} ms)`);
    for (let i = 1; i < c.pings.length; i++) {
      const gap = c.pings[i]! - c.pings[i - 1]!;
      assert.ok(gap >= INTERVAL * 0.75 && gap < INTERVAL * 3, `pings an interval apart (${gap.toFixed(0)} ms)`);
    }
    assert.deepEqual(c.noPongs, [], 'a connection that answers is never late');
  }
});

test('a connection that does not answer is reported once, after the pong timeout', async (t) => {
  const w = wheel(t);
  const silent = new Conn(false);
  const fine = new Conn(true);
  w.add(silent);
  w.add(fine);
  silent.onLate = () => w.remove(silent); // as a session does: it disconnects and leaves the wheel
  await silent.until(() => silent.noPongs.length === 1, 'the missing pong is reported');
  const late = silent.noPongs[0]! - silent.pings[0]!;
  assert.ok(late >= PONG * 0.75 && late < PONG + INTERVAL, `reported about the pong timeout after the ping (${late.toFixed(0)} ms)`);
  await fine.until(() => fine.pings.length >= 3, 'the other connection goes on');
  assert.equal(silent.noPongs.length, 1);
  assert.equal(silent.pings.length, 1, 'a removed connection is not pinged again');
  assert.deepEqual(fine.noPongs, []);
});

test('a connection added from inside a tick is pinged an interval later, not in that tick', async (t) => {
  const w = wheel(t);
  const first = new Conn(true);
  const late = new Conn(true);
  let addedAt = 0;
  let afterTheTick: (n: number) => void;
  const pingsInTheSameTick = new Promise<number>((r) => (afterTheTick = r));
  first.onPing = () => {
    if (addedAt !== 0) return;
    addedAt = performance.now();
    w.add(late);
    setImmediate(() => afterTheTick(late.pings.length));
  };
  w.add(first);
  assert.equal(await within(pingsInTheSameTick, 5000, 'the first tick'), 0, 'not pinged in the tick it was added in');
  await late.until(() => late.pings.length >= 1, 'the added connection is pinged');
  const after = late.pings[0]! - addedAt;
  assert.ok(after >= INTERVAL * 0.75, `first ping about an interval after it was added (${after.toFixed(0)} ms)`);
});

test('a connection removed from inside a tick is not pinged or reported late afterwards', async (t) => {
  const w = wheel(t);
  // all three sit in the same slot (added between the same two ticks)
  const a = new Conn(false);
  const b = new Conn(false);
  const c = new Conn(false);
  w.add(a);
  w.add(b);
  w.add(c);
  // a's ping removes b (not yet pinged in this tick); c's ping removes c itself (a connection closing as it is pinged)
  a.onPing = () => w.remove(b);
  c.onPing = () => w.remove(c);
  await a.until(() => a.noPongs.length === 1, 'a is reported late');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(b.pings, [], 'b was removed before its turn in the tick');
  assert.equal(c.pings.length, 1);
  assert.deepEqual(c.noPongs, [], 'c removed itself during its ping: no missing pong for it');
});

test('a connection removed while the missing pongs of a tick are reported is not reported', async (t) => {
  const w = wheel(t);
  const a = new Conn(false);
  const b = new Conn(false);
  // added last to the same slot: reported in the same tick, after the other two
  const witness = new Conn(false);
  w.add(a);
  w.add(b);
  w.add(witness);
  // the first one reported removes the other (same pong slot, same tick)
  let removedOther = false;
  const removeOther = (self: Conn, other: Conn) => () => {
    w.remove(self);
    if (!removedOther) {
      removedOther = true;
      w.remove(other);
    }
  };
  a.onLate = removeOther(a, b);
  b.onLate = removeOther(b, a);
  witness.onLate = () => w.remove(witness);
  await witness.until(() => witness.noPongs.length === 1, 'the tick reported its missing pongs');
  assert.equal(a.noPongs.length + b.noPongs.length, 1, 'only the first is reported; the one it removed is not');
});
