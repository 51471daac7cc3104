/**
 * The engine contract of the map role (engine/map.ts), one suite for every
 * engine: `mapContract('memory', () => new MemoryEngine(...))`. What the
 * session relies on: offsets of every mutation, state pages with cursors,
 * the stream and its recoverability, key TTL with removal publications,
 * key modes, max keys, idempotency, delivery through the engine handlers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ControlMessage, Engine, EngineHandlers, MapPublishOptions } from '../../src/engine/types.js';
import type { ClientInfo, Publication } from '../../src/protocol/types.js';

/** Records what the engine delivers. */
export class MapRecorder implements EngineHandlers {
  pubs: Array<[string, Publication]> = [];
  private waiters: Array<() => void> = [];

  onPublication(ch: string, pub: Publication): void {
    this.pubs.push([ch, pub]);
    for (const w of this.waiters.splice(0)) w();
  }
  onJoin(_ch: string, _info: ClientInfo): void {}
  onLeave(_ch: string, _info: ClientInfo): void {}
  onControl(_msg: ControlMessage): void {}

  of(ch: string): Publication[] {
    return this.pubs.filter(([c]) => c === ch).map(([, p]) => p);
  }

  /** Resolves when `cond` holds (checked after every delivery); rejects after `ms`. */
  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

const STREAM = { streamSize: 100, streamTtlMs: 60_000, metaTtlMs: 0 };
const PUB: MapPublishOptions = { ...STREAM, keyTtlMs: 0 };
const NOSTREAM = { streamSize: 0, streamTtlMs: 0, metaTtlMs: 0 };

/** Runs the map role's contract on the engine `make` builds (started with a recorder, closed after). */
export function mapContract(kind: string, make: () => Engine): void {
  describe(`map engine contract: ${kind}`, () => {
    let engine: Engine;
    const rec = new MapRecorder();
    let n = 0;
    const ch = (name: string): string => `map-${name}-${process.pid}-${Date.now()}-${++n}`;
    const maps = () => {
      assert.ok(engine.maps, `${kind} has a map role`);
      return engine.maps;
    };

    before(async () => {
      engine = make();
      await engine.start(rec);
    });
    after(() => engine.close());

    test('every mutation takes the next offset under one epoch and is delivered with its key, in order', async () => {
      const c = ch('offsets');
      await engine.broker.subscribe(c);
      const r1 = await maps().publish(c, 'a', '{"v":1}', PUB);
      const r2 = await maps().publish(c, 'b', '{"v":2}', { ...PUB, tags: { color: 'red' } });
      const r3 = await maps().publish(c, 'a', '{"v":3}', PUB);
      const r4 = await maps().remove(c, 'b', STREAM);
      assert.deepEqual(
        [r1, r2, r3, r4].map((r) => r.offset),
        [1, 2, 3, 4],
      );
      assert.equal(new Set([r1, r2, r3, r4].map((r) => r.epoch)).size, 1);
      assert.ok(!r4.suppressed);
      await rec.until(() => rec.of(c).length === 4, 'four deliveries');
      const got = rec.of(c);
      assert.deepEqual(
        got.map((p) => [p.offset, p.key, p.removed === true]),
        [
          [1, 'a', false],
          [2, 'b', false],
          [3, 'a', false],
          [4, 'b', true],
        ],
      );
      assert.equal(JSON.parse(got[2]!.data).v, 3);
      assert.deepEqual(got[3]!.tags, { color: 'red' }, 'a removal carries the removed entry tags (tags filters route it)');
      await engine.broker.unsubscribe(c);
    });

    test('state pages: every live key exactly once across pages, latest values, cursor empty on the last page', async () => {
      const c = ch('pages');
      const N = 257;
      for (let i = 0; i < N; i++) await maps().publish(c, `k${i}`, JSON.stringify({ i }), PUB);
      await maps().publish(c, 'k7', '{"i":"seven"}', PUB);
      await maps().remove(c, 'k8', STREAM);
      const seen = new Map<string, string>();
      let cursor = '';
      let pages = 0;
      let position;
      do {
        const page = await maps().readState(c, { cursor, limit: 50, metaTtlMs: 0 });
        position ??= page.position;
        assert.ok(page.entries.length <= 100, 'at most 2x limit per page');
        for (const e of page.entries) {
          assert.ok(!seen.has(e.key!), `key ${e.key} once`);
          assert.ok(e.offset > 0);
          seen.set(e.key!, e.data);
        }
        cursor = page.cursor;
        pages++;
      } while (cursor !== '' && pages < 100);
      assert.equal(seen.size, N - 1);
      assert.equal(JSON.parse(seen.get('k7')!).i, 'seven');
      assert.ok(!seen.has('k8'));
      assert.equal(position!.offset, N + 2);
      const one = await maps().readState(c, { key: 'k7', limit: 1, metaTtlMs: 0 });
      assert.equal(one.entries.length, 1);
      assert.equal(one.entries[0]!.offset, N + 1);
      assert.equal((await maps().readState(c, { key: 'k8', limit: 1, metaTtlMs: 0 })).entries.length, 0);
      assert.deepEqual(await maps().stats(c), { numKeys: N - 1 });
    });

    test('an unknown channel reads empty at offset 0, and its first mutation keeps that epoch', async () => {
      const c = ch('fresh');
      const s = await maps().readState(c, { limit: 10, metaTtlMs: 0 });
      assert.deepEqual(s.entries, []);
      assert.equal(s.cursor, '');
      assert.equal(s.position.offset, 0);
      const r = await maps().publish(c, 'x', '1', PUB);
      assert.equal(r.epoch, s.position.epoch);
      const st = await maps().readStream(c, { since: s.position, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(st.recoverable, true);
      assert.deepEqual(
        st.publications.map((p) => p.key),
        ['x'],
      );
    });

    test('stream: since, limit, position only; trimmed or other-epoch positions are not recoverable', async () => {
      const c = ch('stream');
      let epoch = '';
      for (let i = 1; i <= 8; i++) epoch = (await maps().publish(c, `k${i % 3}`, String(i), { ...PUB, streamSize: 5 })).epoch;
      const from = await maps().readStream(c, { since: { offset: 5, epoch }, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(from.recoverable, true);
      assert.deepEqual(
        from.publications.map((p) => p.offset),
        [6, 7, 8],
      );
      assert.deepEqual(from.position, { offset: 8, epoch });
      const lim = await maps().readStream(c, { since: { offset: 4, epoch }, limit: 2, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.deepEqual(
        lim.publications.map((p) => p.offset),
        [5, 6],
      );
      const top = await maps().readStream(c, { limit: 0, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.deepEqual(top.publications, []);
      assert.deepEqual(top.position, { offset: 8, epoch });
      const upToDate = await maps().readStream(c, { since: { offset: 8, epoch }, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(upToDate.recoverable, true);
      assert.deepEqual(upToDate.publications, []);
      const trimmed = await maps().readStream(c, { since: { offset: 1, epoch }, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(trimmed.recoverable, false, 'offsets 2..3 were trimmed by stream_size 5');
      const other = await maps().readStream(c, { since: { offset: 7, epoch: epoch + 'x' }, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(other.recoverable, false);
      const future = await maps().readStream(c, { since: { offset: 99, epoch }, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(future.recoverable, false);
    });

    test('streamless: offsets count, the stream keeps nothing, only the top position is recoverable', async () => {
      const c = ch('streamless');
      const r1 = await maps().publish(c, 'a', '1', { ...NOSTREAM, keyTtlMs: 0 });
      const r2 = await maps().publish(c, 'b', '2', { ...NOSTREAM, keyTtlMs: 0 });
      assert.deepEqual([r1.offset, r2.offset], [1, 2]);
      const behind = await maps().readStream(c, { since: r1, streamTtlMs: 0, metaTtlMs: 0 });
      assert.equal(behind.recoverable, false);
      const atTop = await maps().readStream(c, { since: r2, streamTtlMs: 0, metaTtlMs: 0 });
      assert.equal(atTop.recoverable, true);
      assert.equal((await maps().readState(c, { limit: 10, metaTtlMs: 0 })).entries.length, 2);
    });

    test('key TTL: a lapsed key leaves the state at once and is removed with a removal publication', async () => {
      const c = ch('ttl');
      await engine.broker.subscribe(c);
      await maps().publish(c, 'short', '1', { ...PUB, keyTtlMs: 300 });
      await maps().publish(c, 'long', '2', PUB);
      await rec.until(() => rec.of(c).some((p) => p.key === 'short' && p.removed), 'removal of the lapsed key');
      const removal = rec.of(c).find((p) => p.removed)!;
      assert.equal(removal.offset, 3);
      const s = await maps().readState(c, { limit: 10, metaTtlMs: 0 });
      assert.deepEqual(
        s.entries.map((e) => e.key),
        ['long'],
      );
      const st = await maps().readStream(c, { since: { offset: 2, epoch: s.position.epoch }, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.deepEqual(
        st.publications.map((p) => [p.key, p.removed]),
        [['short', true]],
      );
      await engine.broker.unsubscribe(c);
    });

    test('a publish again extends the key TTL', async () => {
      const c = ch('ttl-extend');
      await maps().publish(c, 'k', '1', { ...PUB, keyTtlMs: 600 });
      await new Promise((r) => setTimeout(r, 350));
      await maps().publish(c, 'k', '2', { ...PUB, keyTtlMs: 600 });
      await new Promise((r) => setTimeout(r, 350));
      assert.equal(
        (await maps().readState(c, { key: 'k', limit: 1, metaTtlMs: 0 })).entries.length,
        1,
        'alive 700 ms after the first publish',
      );
    });

    test('key modes, remove of an absent key, max keys: suppressed, nothing delivered or appended', async () => {
      const c = ch('modes');
      await engine.broker.subscribe(c);
      const a = await maps().publish(c, 'a', '1', { ...PUB, keyMode: 'if_new' });
      assert.ok(!a.suppressed);
      const again = await maps().publish(c, 'a', '2', { ...PUB, keyMode: 'if_new' });
      assert.deepEqual([again.suppressed, again.suppressReason, again.offset], [true, 'key_exists', 1]);
      const missing = await maps().publish(c, 'b', '1', { ...PUB, keyMode: 'if_exists' });
      assert.deepEqual([missing.suppressed, missing.suppressReason], [true, 'key_not_found']);
      const upd = await maps().publish(c, 'a', '3', { ...PUB, keyMode: 'if_exists' });
      assert.equal(upd.offset, 2);
      const rm = await maps().remove(c, 'nope', STREAM);
      assert.deepEqual([rm.suppressed, rm.suppressReason], [true, 'key_not_found']);
      await maps().publish(c, 'b', '1', { ...PUB, maxKeys: 2 });
      const third = await maps().publish(c, 'c', '1', { ...PUB, maxKeys: 2 });
      assert.deepEqual([third.suppressed, third.suppressReason], [true, 'too_many_keys']);
      const existing = await maps().publish(c, 'b', '2', { ...PUB, maxKeys: 2 });
      assert.ok(!existing.suppressed, 'an existing key may be updated at the limit');
      await rec.until(() => rec.of(c).length === 4, 'four deliveries');
      assert.deepEqual(
        rec.of(c).map((p) => p.offset),
        [1, 2, 3, 4],
      );
      const st = await maps().readStream(c, { streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(st.publications.length, 4);
      await engine.broker.unsubscribe(c);
    });

    test('if_new with refreshTtlOnSuppress keeps the existing key alive without a publication', async () => {
      const c = ch('keepalive');
      await maps().publish(c, 'p', '1', { ...PUB, keyTtlMs: 600, keyMode: 'if_new' });
      await new Promise((r) => setTimeout(r, 350));
      const r = await maps().publish(c, 'p', '1', { ...PUB, keyTtlMs: 600, keyMode: 'if_new', refreshTtlOnSuppress: true });
      assert.equal(r.suppressed, true);
      await new Promise((r2) => setTimeout(r2, 350));
      assert.equal((await maps().readState(c, { key: 'p', limit: 1, metaTtlMs: 0 })).entries.length, 1);
      assert.equal((await maps().readStream(c, { limit: 0, streamTtlMs: 60_000, metaTtlMs: 0 })).position.offset, 1);
    });

    test('idempotency: a repeat inside the window is suppressed and returns the first position', async () => {
      const c = ch('idem');
      const first = await maps().publish(c, 'a', '1', { ...PUB, idempotencyKey: 'op-1' });
      const repeat = await maps().publish(c, 'a', '2', { ...PUB, idempotencyKey: 'op-1' });
      assert.deepEqual(
        [repeat.suppressed, repeat.suppressReason, repeat.offset, repeat.epoch],
        [true, 'idempotency', first.offset, first.epoch],
      );
      const s = await maps().readState(c, { key: 'a', limit: 1, metaTtlMs: 0 });
      assert.equal(s.entries[0]!.data, '1');
      const rm1 = await maps().remove(c, 'a', { ...STREAM, idempotencyKey: 'rm-1' });
      await maps().publish(c, 'a', '3', PUB);
      const rm2 = await maps().remove(c, 'a', { ...STREAM, idempotencyKey: 'rm-1' });
      assert.equal(rm2.suppressReason, 'idempotency');
      assert.equal(rm2.offset, rm1.offset);
      assert.equal((await maps().stats(c)).numKeys, 1);
    });

    test('info, tags and the delta flag are kept on entries and stream', async () => {
      const c = ch('meta');
      const info = { user: 'u1', client: 'c1', connInfo: '{"n":1}' };
      await maps().publish(c, 'k', '{"a":1}', { ...PUB, info, tags: { t: 'x' }, delta: true });
      const e = (await maps().readState(c, { limit: 10, metaTtlMs: 0 })).entries[0]!;
      assert.equal(e.key, 'k');
      assert.deepEqual(e.tags, { t: 'x' });
      assert.equal(e.info?.user, 'u1');
      assert.equal(e.info?.client, 'c1');
      assert.equal(e.delta, true);
      const s = (await maps().readStream(c, { streamTtlMs: 60_000, metaTtlMs: 0 })).publications[0]!;
      assert.equal(s.key, 'k');
      assert.equal(s.info?.user, 'u1');
    });

    test('clear drops state and stream; the next mutation starts a new epoch', async () => {
      const c = ch('clear');
      const r = await maps().publish(c, 'a', '1', PUB);
      await maps().clear(c);
      assert.deepEqual(await maps().stats(c), { numKeys: 0 });
      const after = await maps().publish(c, 'b', '1', PUB);
      assert.equal(after.offset, 1);
      assert.notEqual(after.epoch, r.epoch);
      const st = await maps().readStream(c, { since: r, streamTtlMs: 60_000, metaTtlMs: 0 });
      assert.equal(st.recoverable, false);
    });
  });
}
