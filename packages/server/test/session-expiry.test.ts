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
