/**
 * One engine suite, run unchanged against the memory engine and against the
 * Redis engine on a real Redis (the machine's, with a key prefix of this
 * run's own), and against the Redis engine with engine.broker "nats" (a
 * nats-server of the file's own), with history in Redis and in JetStream
 * (engine.nats.history "jetstream"). What the session and hub rely on: offsets and epochs,
 * history windows, idempotent publish, ordered delivery, presence,
 * join/leave and control messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { MemoryEngine } from '../src/engine/memory/engine.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import type { ControlMessage, Engine, EngineHandlers, PublishOptions } from '../src/engine/types.js';
import type { ClientInfo, Publication } from '../src/protocol/types.js';
import { OwnNats } from './helpers/nats.js';
import { SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { scope } from './helpers/scope.js';

class Recorder implements EngineHandlers {
  pubs: Array<[string, Publication]> = [];
  joins: Array<[string, ClientInfo]> = [];
  leaves: Array<[string, ClientInfo]> = [];
  controls: ControlMessage[] = [];
  private waiters: Array<() => void> = [];

  onPublication(ch: string, pub: Publication): void {
    this.pubs.push([ch, pub]);
    this.wake();
  }
  onJoin(ch: string, info: ClientInfo): void {
    this.joins.push([ch, info]);
    this.wake();
  }
  onLeave(ch: string, info: ClientInfo): void {
    this.leaves.push([ch, info]);
    this.wake();
  }
  onControl(msg: ControlMessage): void {
    this.controls.push(msg);
    this.wake();
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves when `cond` holds (checked after every event); rejects after 3 s. */
  async until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 3000;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  of(ch: string): Publication[] {
    return this.pubs.filter(([c]) => c === ch).map(([, p]) => p);
  }
}

// The NATS broker's own nats-server (JetStream on) for the whole file.
const files = scope();
after(() => files.close());
const natsUrl = (await OwnNats.start(files)).url;

const HIST: PublishOptions = { historySize: 10, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
const READ = { historyTtlMs: 60_000, historyMetaTtlMs: 0 };

const engines: Array<[string, () => Engine]> = [
  ['memory', () => new MemoryEngine()],
  [
    'redis',
    () =>
      new RedisEngine(
        loadConfig({
          object: {
            log: { level: 'error' },
            engine: { type: 'redis', redis: { address: SHARED_REDIS, prefix: uniquePrefix('contract') } },
          },
        }).config,
      ),
  ],
  [
    'redis+nats',
    () =>
      new RedisEngine(
        loadConfig({
          object: {
            log: { level: 'error' },
            engine: {
              type: 'redis',
              broker: 'nats',
              redis: { address: SHARED_REDIS, prefix: uniquePrefix('contract-nats') },
              nats: { url: natsUrl },
            },
          },
        }).config,
      ),
  ],
  [
    'redis+nats+jetstream',
    () =>
      new RedisEngine(
        loadConfig({
          object: {
            log: { level: 'error' },
            engine: {
              type: 'redis',
              broker: 'nats',
              redis: { address: SHARED_REDIS, prefix: uniquePrefix('contract-js') },
              nats: { url: natsUrl, prefix: 'contractjs', history: 'jetstream' },
            },
          },
        }).config,
      ),
  ],
];

let n = 0;
const ch = (name: string): string => `${name}-${++n}`;

for (const [kind, make] of engines) {
  describe(`engine contract: ${kind}`, () => {
    let engine: Engine;
    const rec = new Recorder();

    before(async () => {
      engine = make();
      await engine.start(rec);
      assert.equal(engine.healthy(), true, `${kind} engine healthy after start`);
    });
    after(() => engine.close());

    test('offsets grow by one from 1 under one epoch; history returns them in order', async () => {
      const c = ch('offsets');
      const results = [];
      for (let i = 1; i <= 5; i++) results.push(await engine.broker.publish(c, JSON.stringify({ i }), HIST));
      assert.deepEqual(
        results.map((r) => r.offset),
        [1, 2, 3, 4, 5],
      );
      assert.equal(new Set(results.map((r) => r.epoch)).size, 1);
      assert.ok(results[0]!.epoch.length > 0);
      const h = await engine.history.read(c, READ);
      assert.deepEqual(h.position, { offset: 5, epoch: results[0]!.epoch });
      assert.deepEqual(
        h.publications.map((p) => p.offset),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(
        h.publications.map((p) => JSON.parse(p.data).i),
        [1, 2, 3, 4, 5],
      );
    });

    test('since, limit and reverse', async () => {
      const c = ch('window');
      let epoch = '';
      for (let i = 1; i <= 8; i++) epoch = (await engine.broker.publish(c, String(i), HIST)).epoch;
      const since = await engine.history.read(c, { ...READ, since: { offset: 5, epoch } });
      assert.deepEqual(
        since.publications.map((p) => p.offset),
        [6, 7, 8],
      );
      const limited = await engine.history.read(c, { ...READ, since: { offset: 2, epoch }, limit: 2 });
      assert.deepEqual(
        limited.publications.map((p) => p.offset),
        [3, 4],
      );
      const rev = await engine.history.read(c, { ...READ, reverse: true, limit: 3 });
      assert.deepEqual(
        rev.publications.map((p) => p.offset),
        [8, 7, 6],
      );
      const top = await engine.history.read(c, { ...READ, limit: 0 });
      assert.deepEqual(top, { publications: [], position: { offset: 8, epoch } });
      const upToDate = await engine.history.read(c, { ...READ, since: { offset: 8, epoch } });
      assert.deepEqual(upToDate.publications, []);
    });

    test('a since position of another epoch returns no publications and the current position', async () => {
      const c = ch('epoch');
      const r = await engine.broker.publish(c, '1', HIST);
      const h = await engine.history.read(c, { ...READ, since: { offset: 0, epoch: 'not-this-one' } });
      assert.deepEqual(h.publications, []);
      assert.deepEqual(h.position, { offset: 1, epoch: r.epoch });
    });

    test('history_size keeps only the newest publications; offsets go on', async () => {
      const c = ch('trim');
      for (let i = 1; i <= 15; i++) await engine.broker.publish(c, String(i), { ...HIST, historySize: 4 });
      const h = await engine.history.read(c, READ);
      assert.deepEqual(
        h.publications.map((p) => p.offset),
        [12, 13, 14, 15],
      );
      assert.equal(h.position.offset, 15);
    });

    test('reading an empty stream fixes its epoch: the first publication keeps it', async () => {
      const c = ch('empty');
      const h = await engine.history.read(c, { ...READ, limit: 0 });
      assert.equal(h.position.offset, 0);
      assert.ok(h.position.epoch.length > 0);
      const r = await engine.broker.publish(c, '1', HIST);
      assert.deepEqual(r, { offset: 1, epoch: h.position.epoch });
    });

    test('publications older than history_ttl are not returned', async () => {
      const c = ch('ttl');
      await engine.broker.publish(c, '"old"', HIST);
      const oldDone = Date.now();
      await new Promise((r) => setTimeout(r, 300));
      const newStart = Date.now();
      await engine.broker.publish(c, '"new"', HIST);
      // A window that holds "new" however slow this machine is, and not "old" (published 300 ms before "new" began).
      const ttl = (): number => Date.now() - newStart + 100;
      assert.ok(newStart - oldDone >= 200);
      const h = await engine.history.read(c, { ...READ, historyTtlMs: ttl() });
      assert.deepEqual(
        h.publications.map((p) => p.data),
        ['"new"'],
      );
      const limited = await engine.history.read(c, { ...READ, historyTtlMs: ttl(), limit: 1 });
      assert.deepEqual(
        limited.publications.map((p) => p.data),
        ['"new"'],
      );
    });

    test('removeHistory drops publications but keeps offset and epoch', async () => {
      const c = ch('remove');
      await engine.broker.publish(c, '1', HIST);
      const r = await engine.broker.publish(c, '2', HIST);
      await engine.history.remove(c);
      const h = await engine.history.read(c, READ);
      assert.deepEqual(h.publications, []);
      assert.deepEqual(h.position, { offset: r.offset, epoch: r.epoch });
      const next = await engine.broker.publish(c, '3', HIST);
      assert.deepEqual(next, { offset: 3, epoch: r.epoch });
    });

    test('removeHistory on a subscribed channel: a recovery read no longer returns the removed publications', async () => {
      const c = ch('remove-sub');
      await engine.broker.subscribe(c);
      let r = await engine.broker.publish(c, '1', HIST);
      for (const d of ['2', '3']) r = await engine.broker.publish(c, d, HIST);
      await rec.until(() => rec.of(c).length === 3, '3 publications');
      const since = { offset: 1, epoch: r.epoch };
      const before = await engine.history.read(c, { ...READ, since, recovery: true });
      assert.deepEqual(
        before.publications.map((p) => p.offset),
        [2, 3],
      );
      await engine.history.remove(c);
      const after = await engine.history.read(c, { ...READ, since, recovery: true });
      assert.deepEqual(after.publications, [], 'removed publications are not recovered');
      assert.deepEqual(after.position, { offset: 3, epoch: r.epoch });
      await engine.broker.unsubscribe(c);
    });

    test('subscribed channel: every publication arrives once, in order, with data, info and tags intact', async () => {
      const c = ch('live');
      await engine.broker.subscribe(c);
      const info: ClientInfo = { user: 'u1', client: 'c1', connInfo: '{"name":"Ann"}', chanInfo: '[1,2]' };
      const data = '{"text":"héllo ✓","n":[1,2,{"x":null}]}';
      await engine.broker.publish(c, data, { ...HIST, info, tags: { k: 'v' } });
      const sent = await Promise.all(Array.from({ length: 50 }, (_, i) => engine.broker.publish(c, String(i), HIST)));
      await rec.until(() => rec.of(c).length === 51, '51 publications');
      const got = rec.of(c);
      assert.equal(got[0]!.data, data);
      assert.deepEqual(got[0]!.info, info);
      assert.deepEqual(got[0]!.tags, { k: 'v' });
      assert.ok(typeof got[0]!.time === 'number' && Math.abs(got[0]!.time - Date.now()) < 5000);
      assert.deepEqual(
        got.map((p) => p.offset),
        Array.from({ length: 51 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        sent.map((r) => r.offset).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 2),
      );
      await engine.broker.unsubscribe(c);
    });

    test('without history a publication has offset 0 and is still delivered', async () => {
      const c = ch('nohist');
      await engine.broker.subscribe(c);
      const r = await engine.broker.publish(c, '"x"', { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: 0 });
      assert.equal(r.offset, 0);
      await rec.until(() => rec.of(c).length === 1, 'the publication');
      assert.equal(rec.of(c)[0]!.offset, 0);
      await engine.broker.unsubscribe(c);
    });

    test('idempotent publish: a retry with the same key returns the first result and publishes nothing', async () => {
      const c = ch('idem');
      await engine.broker.subscribe(c);
      const first = await engine.broker.publish(c, '"a"', { ...HIST, idempotencyKey: 'k1' });
      const again = await engine.broker.publish(c, '"a"', { ...HIST, idempotencyKey: 'k1' });
      assert.equal(first.duplicate, undefined);
      assert.deepEqual(again, { offset: first.offset, epoch: first.epoch, duplicate: true });
      const other = await engine.broker.publish(c, '"b"', { ...HIST, idempotencyKey: 'k2' });
      assert.equal(other.offset, first.offset + 1);
      await rec.until(() => rec.of(c).length >= 2, 'two publications');
      const h = await engine.history.read(c, READ);
      assert.deepEqual(
        h.publications.map((p) => p.data),
        ['"a"', '"b"'],
      );
      assert.equal(rec.of(c).length, 2);
      await engine.broker.unsubscribe(c);
    });

    test('presence: add, list, stats, remove', async () => {
      const c = ch('presence');
      await engine.presence.add(c, { user: 'u1', client: 'a', connInfo: '{"x":1}' });
      await engine.presence.add(c, { user: 'u1', client: 'b' });
      await engine.presence.add(c, { user: 'u2', client: 'c', chanInfo: '"ci"' });
      const m = await engine.presence.get(c);
      assert.deepEqual([...m.keys()].sort(), ['a', 'b', 'c']);
      assert.equal(m.get('a')!.connInfo, '{"x":1}');
      assert.equal(m.get('c')!.chanInfo, '"ci"');
      assert.deepEqual(await engine.presence.stats(c), { numClients: 3, numUsers: 2 });
      await engine.presence.remove(c, 'a', 'u1');
      assert.deepEqual(await engine.presence.stats(c), { numClients: 2, numUsers: 2 });
      await engine.presence.remove(c, 'b', 'u1');
      await engine.presence.remove(c, 'c', 'u2');
      assert.deepEqual(await engine.presence.stats(c), { numClients: 0, numUsers: 0 });
    });

    test('join and leave reach the subscribed node', async () => {
      const c = ch('joinleave');
      await engine.broker.subscribe(c);
      const info: ClientInfo = { user: 'u9', client: 'c9', connInfo: '{"a":1}' };
      await engine.broker.publishJoin(c, info);
      await engine.broker.publishLeave(c, info);
      await rec.until(() => rec.joins.some(([x]) => x === c) && rec.leaves.some(([x]) => x === c), 'join and leave');
      assert.deepEqual(rec.joins.find(([x]) => x === c)![1], info);
      assert.deepEqual(rec.leaves.find(([x]) => x === c)![1], info);
      await engine.broker.unsubscribe(c);
    });

    test('control messages reach the sender too', async () => {
      const msg: ControlMessage = { type: 'disconnect', user: `user-${kind}`, code: 3503, reason: 'bye' };
      await engine.broker.publishControl(msg);
      await rec.until(() => rec.controls.some((m) => m.type === 'disconnect' && m.user === msg.user), 'the control message');
      assert.deepEqual(
        rec.controls.find((m) => m.type === 'disconnect' && m.user === msg.user),
        msg,
      );
    });

    test('the engine is a composition of its roles', () => {
      for (const role of ['broker', 'history', 'presence', 'revocations'] as const) assert.ok(engine[role], role);
    });

    test("revocations: by token id, and a user's tokens issued before a time", async () => {
      const now = Date.now();
      const user = `rv-${kind}-${++n}`;
      const jti = `jti-${user}`;
      const r = engine.revocations;
      assert.equal(await r.isRevoked({ user, jti, issuedAt: now }), false);
      await r.revokeToken(jti, now + 60_000);
      assert.equal(await r.isRevoked({ user, jti, issuedAt: now }), true, 'by id');
      assert.equal(await r.isRevoked({ user: 'someone-else', jti }), true, 'by id, whoever presents it');
      assert.equal(await r.isRevoked({ user, jti: `${jti}-other`, issuedAt: now }), false, 'another id');
      await r.invalidateUser(user, now - 1000, now + 60_000);
      assert.equal(await r.isRevoked({ user, issuedAt: now - 2000 }), true, 'issued before');
      assert.equal(await r.isRevoked({ user, issuedAt: now }), false, 'issued after');
      assert.equal(await r.isRevoked({ user }), true, 'without iat it cannot show it is newer');
      assert.equal(await r.isRevoked({ user: `${user}-b`, issuedAt: now - 2000 }), false, 'another user');
      await r.invalidateUser(user, now - 5000, now + 60_000);
      assert.equal(await r.isRevoked({ user, issuedAt: now - 2000 }), true, 'an earlier time does not undo a later one');
    });

    test('revocations expire; one that expired already is not kept', async () => {
      const now = Date.now();
      const user = `rvx-${kind}-${++n}`;
      await engine.revocations.revokeToken(`${user}-gone`, now - 1);
      assert.equal(await engine.revocations.isRevoked({ user, jti: `${user}-gone` }), false);
      await engine.revocations.revokeToken(`${user}-soon`, now + 100);
      await engine.revocations.invalidateUser(user, now, now + 100);
      assert.equal(await engine.revocations.isRevoked({ user, jti: `${user}-soon`, issuedAt: now }), true);
      await new Promise((res) => setTimeout(res, 150)); // the expiry is the event: time has to pass
      assert.equal(await engine.revocations.isRevoked({ user, jti: `${user}-soon`, issuedAt: now - 1 }), false);
    });

    test('node registry, when the engine has one: announce, list, channels', async (t) => {
      const reg = engine.nodes;
      if (!reg) return t.skip(`${kind}: one node only (the node answers with its own info)`);
      const uid = `node-${kind}-${++n}`;
      await reg.announce({ uid, name: uid, version: 't', numClients: 0, numUsers: 0, numSubs: 0, numChannels: 0, uptime: 0 });
      assert.ok((await reg.list()).some((x) => x.uid === uid));
      const c = ch('listed');
      await engine.broker.subscribe(c);
      assert.ok((await reg.channels()).includes(c));
      await engine.broker.unsubscribe(c);
    });

    test('shared limiter, when the engine has one: a token bucket per key', async (t) => {
      const lim = engine.limiter;
      if (!lim) return t.skip(`${kind}: limits are node-local`);
      const key = `bucket-${kind}-${++n}`;
      assert.deepEqual([await lim.take(key, 1, 2), await lim.take(key, 1, 2), await lim.take(key, 1, 2)], [true, true, false]);
      assert.equal(await lim.take(`${key}-other`, 1, 2), true, 'buckets are per key');
    });
  });
}
