/**
 * The Redis engine between several nodes (engine instances sharing a key
 * prefix), client-side sharding over two Redis servers, and its faults:
 * Redis killed and restarted, Redis hung (circuit breaker).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import type { ControlMessage, EngineHandlers, NodeInfo, PublishOptions } from '../src/engine/types.js';
import { EngineUnavailableError } from '../src/engine/errors.js';
import type { ClientInfo, Publication } from '../src/protocol/types.js';
import { OwnRedis, SHARED_REDIS, redisCommand, uniquePrefix, waitUntil, type TestContextLike } from './helpers/redis.js';

const HIST: PublishOptions = { historySize: 100, historyTtlMs: 60_000, historyMetaTtlMs: 0 };
const READ = { historyTtlMs: 60_000, historyMetaTtlMs: 0 };

class Events implements EngineHandlers {
  pubs: Array<[string, Publication]> = [];
  controls: ControlMessage[] = [];
  resyncs: Array<readonly string[] | 'all'> = [];
  onPublication(ch: string, pub: Publication): void {
    this.pubs.push([ch, pub]);
  }
  onJoin(): void {}
  onLeave(): void {}
  onControl(msg: ControlMessage): void {
    this.controls.push(msg);
  }
  onResync(channels: readonly string[] | 'all'): void {
    this.resyncs.push(channels);
  }
  of(ch: string): Publication[] {
    return this.pubs.filter(([c]) => c === ch).map(([, p]) => p);
  }
}

async function engine(t: TestContextLike, redis: Record<string, unknown>): Promise<{ e: RedisEngine; ev: Events }> {
  const config = loadConfig({ object: { log: { level: 'fatal' }, engine: { type: 'redis', redis } } }).config;
  const e = new RedisEngine(config);
  const ev = new Events();
  t.after(() => e.close());
  await e.start(ev);
  return { e, ev };
}

function nodeInfo(uid: string): NodeInfo {
  return { uid, name: uid, version: 't', numClients: 1, numUsers: 1, numSubs: 0, numChannels: 0, uptime: 1 };
}

test('two nodes: publications from one reach the other in order, with the same offsets and history', async (t) => {
  const prefix = uniquePrefix('nodes');
  const a = await engine(t, { address: SHARED_REDIS, prefix });
  const b = await engine(t, { address: SHARED_REDIS, prefix });
  await a.e.broker.subscribe('room');
  const results = [];
  for (let i = 0; i < 20; i++) results.push(await b.e.broker.publish('room', String(i), HIST));
  await waitUntil('20 publications on node A', 3000, async () => a.ev.of('room').length === 20);
  assert.deepEqual(
    a.ev.of('room').map((p) => p.offset),
    results.map((r) => r.offset),
  );
  assert.deepEqual(
    a.ev.of('room').map((p) => p.data),
    results.map((_, i) => String(i)),
  );
  assert.equal(b.ev.of('room').length, 0, 'node B did not subscribe, so it gets nothing');
  const ha = await a.e.history.read('room', READ);
  const hb = await b.e.history.read('room', READ);
  assert.deepEqual(ha, hb);
  assert.equal(ha.position.offset, 20);
});

test('recovery reads: a storm of recoveries on one node costs one Redis read; what it has not seen comes from Redis', async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('tail');
  const a = await engine(t, { address: own.url, prefix });
  const b = await engine(t, { address: own.url, prefix });
  for (let i = 1; i <= 5; i++) await b.e.broker.publish('room', String(i), HIST); // before A subscribed: A never saw these
  await a.e.broker.subscribe('room');
  for (let i = 6; i <= 10; i++) await b.e.broker.publish('room', String(i), HIST);
  await waitUntil('A got 6..10 through PUB/SUB', 3000, async () => a.ev.of('room').length === 5);
  const epoch = (await a.e.history.read('room', { ...READ, limit: 0 })).position.epoch;
  const scriptCalls = async (): Promise<number> => {
    const info = await redisCommand(own.port, 'INFO', 'commandstats');
    return [...info.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const recover = (offset: number, limit = 301) =>
    a.e.history.read('room', { ...READ, since: { offset, epoch }, limit, recovery: true }).then((h) => ({
      data: h.publications.map((p) => p.data),
      offsets: h.publications.map((p) => p.offset),
      top: h.position,
    }));
  const upTo10 = (from: number) => Array.from({ length: 10 - from }, (_, i) => String(from + 1 + i));

  const calls0 = await scriptCalls();
  const seen = await recover(7);
  assert.deepEqual(seen.data, upTo10(7), 'served from what A saw');
  assert.deepEqual(seen.top, { offset: 10, epoch });
  assert.equal(await scriptCalls(), calls0, 'no Redis read for what A saw itself');

  const older = await recover(2);
  assert.deepEqual(older.data, upTo10(2), 'older than what A saw: read from Redis');
  assert.equal(await scriptCalls(), calls0 + 1);
  for (let i = 0; i < 100; i++) {
    const from = 2 + (i % 9);
    assert.deepEqual((await recover(from)).data, upTo10(from));
  }
  assert.deepEqual((await recover(2, 3)).offsets, [3, 4, 5], 'the limit holds');
  assert.equal(await scriptCalls(), calls0 + 1, 'the Redis read joined up with PUB/SUB: 101 more recoveries, no more reads');

  // New publications extend it; an unknown epoch, an offset from before, or a plain history read go to Redis.
  await b.e.broker.publish('room', '11', HIST); // a script call of its own
  await waitUntil('A got 11', 3000, async () => a.ev.of('room').length === 6);
  assert.deepEqual((await recover(9)).data, ['10', '11']);
  assert.equal(await scriptCalls(), calls0 + 2);
  assert.deepEqual((await recover(0)).data, upTo10(0).concat('11'));
  const other = await a.e.history.read('room', { ...READ, since: { offset: 9, epoch: 'other' }, limit: 301, recovery: true });
  assert.equal(other.position.epoch, epoch, 'the stream position comes from Redis');
  const plain = await a.e.history.read('room', { ...READ, since: { offset: 9, epoch } });
  assert.deepEqual(
    plain.publications.map((p) => p.data),
    ['10', '11'],
  );
  assert.equal(await scriptCalls(), calls0 + 5, 'those three read Redis');

  // Unsubscribed: nothing is kept any more.
  await a.e.broker.unsubscribe('room');
  await recover(9);
  assert.equal(await scriptCalls(), calls0 + 6);
});

test('recovery reads agree with Redis: random publishing, recovering, limits and resubscribing', async (t) => {
  const prefix = uniquePrefix('tailprop');
  const a = await engine(t, { address: SHARED_REDIS, prefix });
  const b = await engine(t, { address: SHARED_REDIS, prefix });
  let seed = 20261201;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  await a.e.broker.subscribe('feed');
  let subscribed = true;
  let top = 0;
  let checks = 0;
  for (let step = 0; step < 400; step++) {
    const op = rand(10);
    if (op < 5) {
      for (let k = 1 + rand(4); k > 0; k--) top = (await b.e.broker.publish('feed', String(top + 1), HIST)).offset;
    } else if (op < 9) {
      const epoch = (await b.e.history.read('feed', { ...READ, limit: 0 })).position.epoch;
      const since = { offset: rand(top + 1), epoch };
      const limit = rand(3) === 0 ? 1 + rand(5) : 301;
      const got = await a.e.history.read('feed', { ...READ, since, limit, recovery: true, historySize: HIST.historySize });
      const truth = await b.e.history.read('feed', { ...READ, since, limit });
      // A may trail Redis by publications still on their way through PUB/SUB; what it returns must be exactly Redis's.
      assert.equal(got.position.epoch, truth.position.epoch);
      assert.ok(got.position.offset <= truth.position.offset && got.position.offset >= since.offset, `step ${step}: position`);
      const want = truth.publications.filter((p) => p.offset <= got.position.offset);
      assert.deepEqual(
        got.publications.map((p) => [p.offset, p.data]),
        want.map((p) => [p.offset, p.data]),
        `step ${step}: since ${since.offset} limit ${limit}`,
      );
      checks++;
    } else if (subscribed) {
      await a.e.broker.unsubscribe('feed');
      subscribed = false;
    } else {
      await a.e.broker.subscribe('feed');
      subscribed = true;
    }
  }
  assert.ok(checks > 100, `${checks} recoveries compared`);
});

test('two nodes: presence, channels, control messages and the node registry are shared', async (t) => {
  const prefix = uniquePrefix('shared');
  const a = await engine(t, { address: SHARED_REDIS, prefix, node_info_ttl: '1s' });
  const b = await engine(t, { address: SHARED_REDIS, prefix, node_info_ttl: '1s' });
  const info: ClientInfo = { user: 'ann', client: 'c-a' };
  await a.e.presence.add('lobby', info);
  await b.e.presence.add('lobby', { user: 'bob', client: 'c-b' });
  assert.deepEqual(await b.e.presence.stats('lobby'), { numClients: 2, numUsers: 2 });
  assert.deepEqual((await a.e.presence.get('lobby')).get('c-a'), info);

  await a.e.broker.subscribe('x');
  await b.e.broker.subscribe('y');
  const chans = await a.e.nodes.channels();
  assert.ok(chans.includes('x') && chans.includes('y'), `channels ${chans}`);

  await b.e.broker.publishControl({ type: 'unsubscribe', user: 'ann', channel: 'lobby' });
  await waitUntil('control on both nodes', 3000, async () => a.ev.controls.length === 1 && b.ev.controls.length === 1);

  await a.e.nodes.announce(nodeInfo('node-a'));
  await b.e.nodes.announce(nodeInfo('node-b'));
  await a.e.nodes.announce(nodeInfo('ghost')); // announced once, never again: it must vanish after node_info_ttl
  assert.deepEqual((await b.e.nodes.list()).map((n) => n.uid).sort(), ['ghost', 'node-a', 'node-b']);
  await waitUntil('the ghost node to expire', 3000, async () => {
    await a.e.nodes.announce(nodeInfo('node-a'));
    await b.e.nodes.announce(nodeInfo('node-b'));
    return !(await a.e.nodes.list()).some((n) => n.uid === 'ghost');
  });
  await b.e.close(); // a node that stops cleanly leaves the registry at once
  assert.deepEqual(
    (await a.e.nodes.list()).map((n) => n.uid),
    ['node-a'],
  );
});

test("a dead node's presence entries expire; a live node's are refreshed", async (t) => {
  const prefix = uniquePrefix('presence');
  const live = await engine(t, { address: SHARED_REDIS, prefix, presence_ttl: '1s' });
  const dying = await engine(t, { address: SHARED_REDIS, prefix, presence_ttl: '1s' });
  await live.e.presence.add('ch', { user: 'u1', client: 'live' });
  await dying.e.presence.add('ch', { user: 'u2', client: 'dead' });
  await dying.e.close(); // stops refreshing, as a killed node would
  const started = Date.now();
  await waitUntil('the dead entry to expire', 4000, async () => !(await live.e.presence.get('ch')).has('dead'));
  assert.ok(Date.now() - started >= 500, 'not before its TTL');
  await new Promise((r) => setTimeout(r, 1200)); // past one TTL: the live entry was refreshed
  assert.deepEqual([...(await live.e.presence.get('ch')).keys()], ['live']);
});

test('client-side sharding over two Redis servers: channels spread, every publication arrives', async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('shards');
  const address = [SHARED_REDIS, own.url];
  const a = await engine(t, { address, prefix });
  const b = await engine(t, { address, prefix });
  const channels = Array.from({ length: 16 }, (_, i) => `s${i}`);
  for (const c of channels) await a.e.broker.subscribe(c);
  for (const c of channels) for (let i = 0; i < 3; i++) await b.e.broker.publish(c, String(i), HIST);
  await waitUntil('48 publications', 3000, async () => a.ev.pubs.length === 48);
  for (const c of channels)
    assert.deepEqual(
      a.ev.of(c).map((p) => p.offset),
      [1, 2, 3],
    );
  const ownKeys = Number((await redisCommand(own.port, 'DBSIZE')).slice(1));
  assert.ok(ownKeys > 0 && ownKeys < 32, `second shard holds some of the 16 streams (+meta): ${ownKeys} keys`);
  assert.equal((await a.e.nodes.channels()).filter((c) => c.startsWith('s')).length, 16);
});

test('Redis killed: commands fail fast with 100, not healthy; back: resubscribed, subscribers resynced', async (t) => {
  const own = await OwnRedis.start(t);
  const { e, ev } = await engine(t, {
    address: own.url,
    prefix: uniquePrefix('kill'),
    io_timeout: '1s',
    circuit_breaker_cooldown: '200ms',
  });
  await e.broker.subscribe('feed');
  await e.broker.publish('feed', '1', HIST);
  await own.stop();
  await waitUntil('engine to notice', 3000, async () => !e.healthy());
  const t0 = Date.now();
  await assert.rejects(
    e.broker.publish('feed', '2', HIST),
    (err: unknown) => err instanceof EngineUnavailableError && err.kind === 'disconnected',
  );
  await assert.rejects(
    e.history.read('feed', READ),
    (err: unknown) => err instanceof EngineUnavailableError && err.kind === 'disconnected',
  );
  await assert.rejects(e.broker.subscribe('other'), (err: unknown) => err instanceof EngineUnavailableError && err.kind === 'disconnected');
  assert.ok(Date.now() - t0 < 500, `failed fast (${Date.now() - t0} ms)`);

  await own.start();
  await waitUntil('resync after Redis returns', 5000, async () => ev.resyncs.length > 0);
  assert.deepEqual(ev.resyncs[0], ['feed']);
  await waitUntil('healthy again', 3000, async () => e.healthy());
  const r = await e.broker.publish('feed', '3', HIST);
  assert.equal(r.offset, 1, 'Redis came back empty: a new stream');
  await waitUntil('the new publication delivered after resubscribe', 3000, async () => ev.of('feed').some((p) => p.data === '3'));
});

test('Redis hung: commands time out at io_timeout, the breaker opens and fails fast, a probe closes it', async (t) => {
  const own = await OwnRedis.start(t);
  const { e } = await engine(t, {
    address: own.url,
    prefix: uniquePrefix('hang'),
    io_timeout: '200ms',
    circuit_breaker_threshold: 2,
    circuit_breaker_cooldown: '300ms',
  });
  await e.broker.publish('c', '1', HIST);
  own.pause();
  t.after(() => own.resume());
  for (let i = 0; i < 2; i++) {
    const t0 = Date.now();
    await assert.rejects(e.history.read('c', READ), (err: unknown) => err instanceof EngineUnavailableError && err.kind === 'timeout');
    const took = Date.now() - t0;
    assert.ok(took >= 150 && took < 1500, `timed out near io_timeout (${took} ms)`);
  }
  assert.equal(e.healthy(), false, 'breaker open: not healthy');
  const t1 = Date.now();
  await assert.rejects(e.history.read('c', READ), (err: unknown) => err instanceof EngineUnavailableError && err.kind === 'circuit_open');
  assert.ok(Date.now() - t1 < 50, 'breaker open: rejected without asking Redis');
  own.resume();
  await waitUntil('the probe to close the breaker', 3000, async () => e.healthy());
  const h = await e.history.read('c', READ);
  assert.equal(h.publications[0]!.data, '1');
});

test('revocations: a node started later knows earlier ones; each leaves Redis with its expiry; a check is one command', async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('revoke');
  const a = await engine(t, { address: own.url, prefix });
  const now = Date.now();
  await a.e.revocations.revokeToken('t-1', now + 60_000);
  await a.e.revocations.invalidateUser('ann', now, now + 120_000);
  const b = await engine(t, { address: own.url, prefix }); // started after the revocations
  assert.equal(await b.e.revocations.isRevoked({ user: 'bob', jti: 't-1', issuedAt: now }), true);
  assert.equal(await b.e.revocations.isRevoked({ user: 'ann', jti: 't-2', issuedAt: now - 1 }), true);
  assert.equal(await b.e.revocations.isRevoked({ user: 'ann', jti: 't-2', issuedAt: now + 1 }), false);
  const keys = (await redisCommand(own.port, 'KEYS', `${prefix}.{revoked}.*`)).split('\r\n').filter((l) => l.startsWith(prefix));
  assert.equal(keys.length, 2, `one key per revocation: ${keys}`);
  for (const k of keys) {
    const pttl = Number((await redisCommand(own.port, 'PTTL', k)).slice(1));
    assert.ok(pttl > 0 && pttl <= 120_000, `${k}: PTTL ${pttl}`);
  }
  const mgets = async (): Promise<number> =>
    Number(/cmdstat_mget:calls=(\d+)/.exec(await redisCommand(own.port, 'INFO', 'commandstats'))?.[1] ?? 0);
  const before = await mgets();
  await b.e.revocations.isRevoked({ user: 'carl', jti: 't-3', issuedAt: now });
  assert.equal(await mgets(), before + 1);
});

test('hot path: a publish is one script call and delivery to a subscribed node costs no command', async (t) => {
  const own = await OwnRedis.start(t);
  const prefix = uniquePrefix('hot');
  const a = await engine(t, { address: own.url, prefix });
  const b = await engine(t, { address: own.url, prefix });
  await a.e.broker.subscribe('hot');
  const commands = async (): Promise<Map<string, number>> => {
    const info = await redisCommand(own.port, 'INFO', 'commandstats');
    const out = new Map<string, number>();
    for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) if (m[1] !== 'info') out.set(m[1]!, Number(m[2]));
    return out;
  };
  const before = await commands();
  for (let i = 1; i <= 100; i++) await b.e.broker.publish('hot', String(i), { ...HIST, info: { user: 'u', client: 'c' } });
  await waitUntil('100 publications on node A', 3000, async () => a.ev.of('hot').length === 100);
  const after = await commands();
  const spent: Record<string, number> = {};
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) spent[k] = v - (before.get(k) ?? 0);
  // Redis counts the commands a script calls too: those are in the script's one round trip.
  const { eval: evals = 0, evalsha = 0, ...inScript } = spent;
  assert.equal(evals + evalsha, 100, 'one script call per publish');
  const publishScript = new Set(['hget', 'hmget', 'hset', 'hincrby', 'del', 'pexpire', 'xadd', 'publish']);
  for (const cmd of Object.keys(inScript)) assert.ok(publishScript.has(cmd), `${cmd}: a command outside the publish script`);
  assert.equal(inScript.publish, 100);
});
