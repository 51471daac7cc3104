/**
 * The token bucket behind every rate limit, the keyed buckets per user and
 * address, and the once-per-interval logger. Time is passed in, so each
 * case states the clock it runs on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedBuckets, LogOnce, TokenBucket } from '../src/session/ratelimit.js';

test('a bucket gives its burst at once, then the rate', () => {
  const b = new TokenBucket(10, 5, 0);
  for (let i = 0; i < 5; i++) assert.ok(b.take(0), `burst token ${i}`);
  assert.equal(b.take(0), false, 'empty after the burst');
  assert.equal(b.take(50), false, 'half a token after 50 ms at 10/s');
  assert.ok(b.take(100), 'one token after 100 ms');
  assert.equal(b.take(100), false);
});

test('a bucket never holds more than its burst, however long it idles', () => {
  const b = new TokenBucket(100, 3, 0);
  assert.ok(b.take(0, 3));
  let n = 0;
  while (b.take(3_600_000)) n++;
  assert.equal(n, 3);
});

test('time going backwards neither refills nor drains a bucket', () => {
  const b = new TokenBucket(1, 2, 10_000);
  assert.ok(b.take(10_000));
  assert.ok(b.take(5_000), 'the token left is still there');
  assert.equal(b.take(5_000), false);
  assert.equal(b.take(10_999), false, 'no refill counted for the backwards jump');
  assert.ok(b.take(11_000));
});

test('a request for more tokens than the bucket holds takes none', () => {
  const b = new TokenBucket(1, 2, 0);
  assert.equal(b.take(0, 3), false);
  assert.ok(b.take(0, 2), 'the failed request took nothing');
});

test('keyed buckets are independent per key, and a disabled rate always allows', () => {
  const k = new KeyedBuckets(1, 1);
  assert.ok(k.take('a', 0));
  assert.equal(k.take('a', 0), false);
  assert.ok(k.take('b', 0), 'another key has its own bucket');
  const off = new KeyedBuckets(0, 0);
  assert.equal(off.enabled, false);
  for (let i = 0; i < 100; i++) assert.ok(off.take('x', 0));
});

test('keyed buckets forget idle keys without changing any outcome', () => {
  const k = new KeyedBuckets(1, 1);
  const t0 = Date.now();
  assert.ok(k.take('idle', t0));
  // Past the sweep interval: the idle bucket was full again, so forgetting it gives the same answer.
  assert.ok(k.take('other', t0 + 61_000));
  assert.ok(k.take('idle', t0 + 61_000));
  assert.equal(k.take('idle', t0 + 61_000), false);
});

test('the once-per-interval logger says yes once per key and interval', () => {
  const l = new LogOnce(1000);
  assert.ok(l.shouldLog('k', 0));
  assert.equal(l.shouldLog('k', 999), false);
  assert.ok(l.shouldLog('other', 999));
  assert.ok(l.shouldLog('k', 1000));
});

test('the once-per-interval logger stays cheap past 10k keys: no scan per new key', () => {
  const l = new LogOnce(60_000);
  const t0 = Date.now();
  const started = performance.now();
  // 40k distinct offenders within one interval: a scan per new key past 10k would be ~10^9 steps.
  for (let i = 0; i < 40_000; i++) assert.ok(l.shouldLog('ip:' + i, t0));
  const ms = performance.now() - started;
  assert.ok(ms < 1000, `40k keys took ${ms.toFixed(0)} ms`);
  assert.equal(l.size, 40_000, 'fresh keys are all remembered within the interval');
  assert.equal(l.shouldLog('ip:1', t0 + 1), false);
  // An interval later one call sweeps what is stale.
  assert.ok(l.shouldLog('late', t0 + 60_000));
  assert.equal(l.size, 1);
});
