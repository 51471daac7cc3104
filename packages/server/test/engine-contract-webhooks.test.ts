/**
 * The webhook roles of the engine contract, run unchanged against the memory
 * engine and the Redis engine on a real Redis: the outbox (bounded append,
 * claim, reclaim of a dead consumer's entries, touch, ack) and channel
 * occupancy (first and last node of a channel, lapse of a dead node's entries).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { MemoryEngine } from '../src/engine/memory/engine.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import type { Engine, EngineHandlers } from '../src/engine/types.js';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { until } from './helpers/wait.js';

const handlers: EngineHandlers = { onPublication() {}, onJoin() {}, onLeave() {}, onControl() {} };

const engines: Array<[string, () => Engine]> = [
  ['memory', () => new MemoryEngine()],
  [
    'redis',
    () =>
      new RedisEngine(
        loadConfig({
          object: {
            log: { level: 'error' },
            engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix: uniquePrefix('wh-contract'), node_info_ttl: '1s' } },
          },
        }).config,
      ),
  ],
];

/** A fresh engine of the kind (its own outbox), closed when the test ends. */
async function started(
  t: { after(fn: () => unknown): void },
  make: () => Engine,
): Promise<Engine & Required<Pick<Engine, 'outbox' | 'occupancy'>>> {
  const e = make();
  await e.start(handlers);
  t.after(() => e.close());
  assert.ok(e.outbox && e.occupancy, 'the engine has the webhook roles');
  return e as Engine & Required<Pick<Engine, 'outbox' | 'occupancy'>>;
}

for (const [kind, make] of engines) {
  describe(`engine contract (webhooks): ${kind}`, () => {
    test('outbox: entries come out in append order, once per claim, and ack removes them', async (t) => {
      const { outbox } = await started(t, make);
      for (let i = 1; i <= 3; i++) assert.equal(await outbox.append(`e${i}`, 100), true);
      assert.equal(await outbox.size(), 3);
      const a = await outbox.claim('node-a', 10, 60_000);
      assert.deepEqual(
        a.map((e) => e.body),
        ['e1', 'e2', 'e3'],
      );
      assert.equal(new Set(a.map((e) => e.id)).size, 3, 'distinct ids');
      // Claimed and fresh: nobody else gets them.
      assert.deepEqual(await outbox.claim('node-b', 10, 60_000), []);
      await outbox.ack([a[0]!.id, a[1]!.id]);
      assert.equal(await outbox.size(), 1);
      await outbox.ack([a[2]!.id]);
      assert.equal(await outbox.size(), 0);
    });

    test('outbox: bounded; a full outbox refuses, an ack makes room', async (t) => {
      const { outbox } = await started(t, make);
      for (let i = 0; i < 5; i++) assert.equal(await outbox.append(`x${i}`, 5), true);
      assert.equal(await outbox.append('over', 5), false, 'refused when full');
      assert.equal(await outbox.size(), 5);
      const [first] = await outbox.claim('n', 1, 60_000);
      assert.equal(first?.body, 'x0');
      // Claimed but not acked still counts: it is not delivered.
      assert.equal(await outbox.append('still-over', 5), false);
      await outbox.ack([first!.id]);
      assert.equal(await outbox.append('fits', 5), true);
    });

    test("outbox: a dead consumer's entries are reclaimed after reclaim_after; touched ones are not", async (t) => {
      const { outbox } = await started(t, make);
      await outbox.append('orphan', 100);
      await outbox.append('kept', 100);
      const mine = await outbox.claim('dead-node', 10, 60_000);
      assert.equal(mine.length, 2);
      const kept = mine.find((e) => e.body === 'kept')!;
      // The other node takes over what the dead one left idle for a second; the dead one keeps touching "kept".
      let got: string[] = [];
      await until(
        'orphan reclaimed by another consumer',
        10_000,
        async () => {
          await outbox.touch('dead-node', [kept.id]);
          got = got.concat((await outbox.claim('live-node', 10, 1000)).map((e) => e.body));
          return got.includes('orphan');
        },
        50,
      );
      assert.deepEqual(got, ['orphan'], 'the touched entry stayed with its consumer');
      const again = (await outbox.claim('live-node', 10, 1000)).map((e) => e.body);
      assert.ok(!again.includes('orphan'), 'just reclaimed: not handed out again at once');
    });

    test('occupancy: the first node occupies, the last one vacates, once each', async (t) => {
      const { occupancy } = await started(t, make);
      const ch = 'room-' + kind;
      assert.equal(await occupancy.occupy(ch, 'a'), true, 'first node anywhere');
      assert.equal(await occupancy.occupy(ch, 'b'), false);
      assert.equal(await occupancy.occupy(ch, 'a'), false, 'again: still occupied');
      assert.equal(await occupancy.vacate(ch, 'a'), false, 'b still has it');
      assert.equal(await occupancy.vacate(ch, 'b'), true, 'last node anywhere');
      assert.equal(await occupancy.vacate(ch, 'b'), false, 'vacated once');
      assert.equal(await occupancy.occupy(ch, 'c'), true, 'occupied again');
      assert.equal(await occupancy.vacate(ch, 'c'), true);
    });

    if (kind === 'redis') {
      test("occupancy: a dead node's entries lapse and one sweep reports the channel vacated; a refresh keeps a live node's", async (t) => {
        const { occupancy } = await started(t, make);
        assert.equal(await occupancy.occupy('lapse', 'dead'), true);
        assert.equal(await occupancy.occupy('live', 'alive'), true);
        const vacated: string[] = [];
        await until(
          'the dead node entry lapses (node_info_ttl 1s)',
          15_000,
          async () => {
            await occupancy.refresh(['live'], 'alive');
            vacated.push(...(await occupancy.sweep()));
            return vacated.includes('lapse');
          },
          100,
        );
        assert.deepEqual(vacated, ['lapse'], 'the refreshed channel stayed occupied');
        assert.deepEqual(await occupancy.sweep(), [], 'reported once');
        assert.equal(await occupancy.occupy('lapse', 'new'), true, 'free again');
        assert.equal(await occupancy.occupy('live', 'other'), false, 'still held by the live node');
        assert.equal(await occupancy.vacate('live', 'other'), false);
        // A node that was away (no refresh) lapses too; its next refresh brings the channel back, as occupied again.
        const gone: string[] = [];
        await until(
          'the live entry lapses without refresh',
          15_000,
          async () => {
            gone.push(...(await occupancy.sweep()));
            return gone.includes('live');
          },
          100,
        );
        assert.deepEqual(await occupancy.refresh(['live'], 'alive'), ['live']);
        assert.deepEqual(await occupancy.refresh(['live'], 'alive'), [], 'once');
      });
    }
  });
}
