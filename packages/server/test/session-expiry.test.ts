/**
 * The expiry timer used for connections and subscriptions alike. Its clock
 * is a parameter, so a test can show what happens when the timer fires
 * before the clock reaches the deadline (setTimeout may fire a little early).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpiryTimer } from '../src/session/expiry.js';

/** Resolves with the time the timer fired, or rejects after `ms`. */
function firing(ms: number): { timer: (now?: () => number) => ExpiryTimer; fired: Promise<number>; calls: () => number } {
  let n = 0;
  let resolve!: (t: number) => void;
  const fired = new Promise<number>((r) => (resolve = r));
  const guard = setTimeout(() => resolve(-1), ms);
  return {
    timer: (now) =>
      new ExpiryTimer(() => {
        n++;
        clearTimeout(guard);
        resolve(Date.now());
      }, now),
    fired,
    calls: () => n,
  };
}

test('fires once the deadline has passed', async () => {
  const f = firing(2000);
  const t = f.timer();
  const deadline = Date.now() + 30;
  t.set(deadline);
  assert.equal(t.deadline, deadline);
  const at = await f.fired;
  assert.ok(at >= deadline, `fired at ${at}, deadline ${deadline}`);
  assert.equal(f.calls(), 1);
  assert.equal(t.deadline, 0, 'disarmed after firing');
});

test('a timer that fires before its clock reaches the deadline re-arms instead of dropping the expiry', async () => {
  // After arming, the expiry's clock falls 15 ms behind the timers: the timer fires "early".
  let lag = 0;
  const clock = (): number => Date.now() - lag;
  const f = firing(2000);
  const t = f.timer(clock);
  const deadline = clock() + 20;
  t.set(deadline);
  lag = 15;
  const at = await f.fired;
  assert.notEqual(at, -1, 'the expiry never fired');
  assert.ok(clock() >= deadline, 'and not before its clock reached the deadline');
  assert.equal(f.calls(), 1);
});

test('set replaces the deadline, 0 and clear disarm', async () => {
  const f = firing(300);
  const t = f.timer();
  t.set(Date.now() + 20);
  t.set(0);
  assert.equal(t.deadline, 0);
  t.set(Date.now() + 20);
  t.clear();
  assert.equal(await f.fired, -1, 'a cleared timer does not fire');
  assert.equal(f.calls(), 0);

  const g = firing(2000);
  const u = g.timer();
  u.set(Date.now() + 5000);
  const later = Date.now() + 30;
  u.set(later);
  assert.ok((await g.fired) >= later);
  assert.equal(g.calls(), 1, 'only the replacing deadline fires');
});

/** Deadlines beyond ExpiryTimer.farMs wait in the shared per-second wheel; lowered here so a test needs seconds, not minutes. */
async function withFarMs<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const was = ExpiryTimer.farMs;
  ExpiryTimer.farMs = ms;
  try {
    return await fn();
  } finally {
    ExpiryTimer.farMs = was;
  }
}

test('far deadlines (the shared wheel): fire once, after the deadline and within its second; cleared ones never', () =>
  withFarMs(50, async () => {
    const f = firing(4000);
    const t = f.timer();
    const deadline = Date.now() + 1200;
    t.set(deadline);
    const gone = firing(2500);
    gone.timer().set(Date.now() + 300);
    const cleared = gone.timer();
    cleared.set(Date.now() + 400);
    cleared.clear();
    const at = await f.fired;
    assert.notEqual(at, -1, 'the far deadline never fired');
    assert.ok(at >= deadline, `not early (${at - deadline} ms)`);
    assert.ok(at < deadline + 1500, `about its second late at most (${at - deadline} ms)`);
    assert.equal(f.calls(), 1);
    assert.equal(t.deadline, 0);
    await gone.fired;
    assert.equal(gone.calls(), 1, 'of two timers, the cleared one did not fire');
  }));

test('far deadlines: re-armed nearer, the timer fires at the new deadline and not again at the old one', () =>
  withFarMs(100, async () => {
    const f = firing(4000);
    const t = f.timer();
    t.set(Date.now() + 2500);
    const near = Date.now() + 50;
    t.set(near);
    const at = await f.fired;
    assert.ok(at >= near && at < near + 500, `fired for the near deadline (${at - near} ms after it)`);
    await new Promise((r) => setTimeout(r, 2700));
    assert.equal(f.calls(), 1, 'the old far deadline did not fire too');
  }));

test('far deadlines: an expiry that re-arms another timer of the same second moves it, without a second firing', () =>
  withFarMs(50, async () => {
    const second = firing(8000);
    const b = second.timer();
    let aFired = 0;
    const start = Date.now();
    const a = new ExpiryTimer(() => {
      aFired++;
      b.set(Date.now() + 1500); // b waited in the same second; now it waits for another
    });
    const same = Math.ceil((start + 1200) / 1000) * 1000 - 1; // both in the same wheel second
    a.set(same - 5);
    b.set(same);
    const at = await second.fired;
    assert.equal(aFired, 1);
    assert.ok(at - start >= 2500, `b fired at its new deadline, ${at - start} ms after the start`);
    assert.equal(second.calls(), 1);
  }));
