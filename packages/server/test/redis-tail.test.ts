/**
 * The Redis engine's recovery tail (engine/redis/tail.ts), alone: what it
 * serves must be exactly what Redis would, or nothing (then Redis is read).
 * The orders below are the ones PUB/SUB and a recovery read in flight can
 * produce on a node.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TAIL_WINDOW_MS, Tail } from '../src/engine/redis/tail.js';
import type { Publication } from '../src/protocol/types.js';

const E = 'ep1';
const now = Date.now();
const pub = (offset: number, time = now): Publication => ({ offset, data: String(offset), time });
const range = (from: number, to: number, time = now): Publication[] => Array.from({ length: to - from + 1 }, (_, i) => pub(from + i, time));
const offsets = (r: { publications: Publication[] } | undefined): number[] | undefined => r?.publications.map((p) => p.offset);

function filled(from: number, to: number, cap = 100): Tail {
  const t = new Tail(cap);
  for (const p of range(from, to)) t.push(E, p);
  return t;
}

describe('recovery tail', () => {
  test('serves what follows a position it holds, with the top as position', () => {
    const t = filled(5, 10);
    const r = t.read({ offset: 7, epoch: E }, undefined, 0, 0);
    assert.deepEqual(offsets(r), [8, 9, 10]);
    assert.deepEqual(r!.position, { offset: 10, epoch: E });
    assert.deepEqual(offsets(t.read({ offset: 4, epoch: E }, undefined, 0, 0)), [5, 6, 7, 8, 9, 10], 'from just before the first');
    assert.deepEqual(offsets(t.read({ offset: 10, epoch: E }, undefined, 0, 0)), [], 'up to date');
    assert.deepEqual(offsets(t.read({ offset: 5, epoch: E }, 2, 0, 0)), [6, 7], 'the limit holds');
  });

  test('answers nothing (ask Redis) for what it cannot know', () => {
    const t = filled(5, 10);
    assert.equal(t.read({ offset: 3, epoch: E }, undefined, 0, 0), undefined, 'older than the first it holds');
    assert.equal(t.read({ offset: 11, epoch: E }, undefined, 0, 0), undefined, 'ahead of it (PUB/SUB still on its way)');
    assert.equal(t.read({ offset: 7, epoch: 'other' }, undefined, 0, 0), undefined, 'another epoch');
    assert.equal(new Tail(10).read({ offset: 0, epoch: E }, undefined, 0, 0), undefined, 'empty');
    assert.equal(t.read({ offset: 5, epoch: E }, undefined, 0, 3), undefined, 'past history_size: the stream no longer has 6');
    assert.deepEqual(offsets(t.read({ offset: 7, epoch: E }, undefined, 0, 3)), [8, 9, 10], 'within history_size');
    assert.equal(t.read({ offset: 5, epoch: E }, undefined, now + 1, 0), undefined, 'older than history_ttl');
  });

  test('push: a gap or a new epoch starts over; a duplicate is ignored', () => {
    const t = filled(1, 3);
    t.push(E, pub(3));
    t.push(E, pub(2));
    assert.deepEqual(offsets(t.read({ offset: 0, epoch: E }, undefined, 0, 0)), [1, 2, 3], 'duplicates ignored');
    t.push(E, pub(5)); // 4 never came: the tail cannot vouch for it
    assert.equal(t.read({ offset: 2, epoch: E }, undefined, 0, 0), undefined);
    assert.deepEqual(offsets(t.read({ offset: 4, epoch: E }, undefined, 0, 0)), [5]);
    t.push('ep2', pub(1));
    assert.equal(t.read({ offset: 4, epoch: E }, undefined, 0, 0), undefined, 'the old epoch is gone');
    assert.deepEqual(offsets(t.read({ offset: 0, epoch: 'ep2' }, undefined, 0, 0)), [1]);
  });

  test('reset (a PUB/SUB reconnect) forgets everything; what comes next starts it again', () => {
    const t = filled(1, 5);
    t.reset('');
    assert.equal(t.read({ offset: 3, epoch: E }, undefined, 0, 0), undefined);
    t.push(E, pub(9));
    assert.deepEqual(offsets(t.read({ offset: 8, epoch: E }, undefined, 0, 0)), [9]);
  });

  test('seed: a complete read joins up with what PUB/SUB brought while it was in flight', () => {
    const t = new Tail(100);
    t.push(E, pub(11)); // arrived during the read
    t.push(E, pub(12));
    t.seed({ offset: 4, epoch: E }, range(5, 10), { offset: 10, epoch: E });
    assert.deepEqual(
      offsets(t.read({ offset: 4, epoch: E }, undefined, 0, 0)),
      range(5, 12).map((p) => p.offset),
    );
  });

  test('seed: a read that saw more than PUB/SUB delivered yet; the late deliveries are not doubled', () => {
    const t = new Tail(100);
    t.seed({ offset: 4, epoch: E }, range(5, 12), { offset: 12, epoch: E });
    t.push(E, pub(11)); // PUB/SUB catching up
    t.push(E, pub(12));
    t.push(E, pub(13));
    assert.deepEqual(
      offsets(t.read({ offset: 4, epoch: E }, undefined, 0, 0)),
      range(5, 13).map((p) => p.offset),
    );
  });

  test('seed ignores reads it cannot vouch for', () => {
    const cut = new Tail(100);
    cut.seed({ offset: 4, epoch: E }, range(5, 7), { offset: 10, epoch: E }); // cut by a limit
    assert.equal(cut.read({ offset: 4, epoch: E }, undefined, 0, 0), undefined);
    const aged = new Tail(100);
    aged.seed({ offset: 4, epoch: E }, range(7, 10), { offset: 10, epoch: E }); // 5 and 6 left out by age
    assert.equal(aged.read({ offset: 4, epoch: E }, undefined, 0, 0), undefined);
    const otherEpoch = new Tail(100);
    otherEpoch.seed({ offset: 4, epoch: 'old' }, range(5, 10), { offset: 10, epoch: E });
    assert.equal(otherEpoch.read({ offset: 4, epoch: E }, undefined, 0, 0), undefined);
    const gap = new Tail(100);
    gap.push(E, pub(13)); // 11 and 12 missing between the read and PUB/SUB
    gap.seed({ offset: 4, epoch: E }, range(5, 10), { offset: 10, epoch: E });
    assert.equal(gap.read({ offset: 4, epoch: E }, undefined, 0, 0), undefined, 'not joined over a gap');
    assert.deepEqual(offsets(gap.read({ offset: 12, epoch: E }, undefined, 0, 0)), [13]);
    const stale = new Tail(100);
    stale.push('old', pub(20));
    stale.seed({ offset: 4, epoch: E }, range(5, 10), { offset: 10, epoch: E });
    assert.equal(stale.read({ offset: 4, epoch: E }, undefined, 0, 0), undefined, 'holding another epoch: left alone');
  });

  test('seed never replaces what it holds with an older copy', () => {
    const t = filled(3, 10);
    t.seed(
      { offset: 4, epoch: E },
      range(5, 10).map((p) => ({ ...p, data: 'x' })),
      { offset: 10, epoch: E },
    );
    assert.deepEqual(
      t.read({ offset: 2, epoch: E }, undefined, 0, 0)!.publications.map((p) => p.data),
      ['3', '4', '5', '6', '7', '8', '9', '10'],
    );
  });

  test('expire drops what is older than the window, keeps the rest contiguous', () => {
    const t = new Tail(100);
    for (const p of range(1, 3, now - TAIL_WINDOW_MS - 1000)) t.push(E, p);
    for (const p of range(4, 6, now)) t.push(E, p);
    t.expire(now);
    assert.equal(t.length, 3);
    assert.equal(t.read({ offset: 2, epoch: E }, undefined, 0, 0), undefined);
    assert.deepEqual(offsets(t.read({ offset: 3, epoch: E }, undefined, 0, 0)), [4, 5, 6]);
    t.expire(now + TAIL_WINDOW_MS + 1);
    assert.equal(t.length, 0);
  });

  test('the cap bounds it (trimmed in batches), and reads past the trimmed part go to Redis', () => {
    const t = new Tail(4);
    for (const p of range(1, 5)) t.push(E, p);
    assert.equal(t.length, 5, 'up to cap + cap/4 before a trim');
    t.push(E, pub(6));
    assert.equal(t.length, 4);
    assert.equal(t.read({ offset: 1, epoch: E }, undefined, 0, 0), undefined);
    assert.deepEqual(offsets(t.read({ offset: 2, epoch: E }, undefined, 0, 0)), [3, 4, 5, 6]);
    const seeded = new Tail(4);
    seeded.seed({ offset: 0, epoch: E }, range(1, 10), { offset: 10, epoch: E });
    assert.equal(seeded.length, 4, 'a large read is trimmed too');
  });
});
