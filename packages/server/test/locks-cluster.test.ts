/**
 * Field locks and user status on a real Redis Cluster (three masters), two
 * nodes: every script touches one hash slot (a document's bucket, a user's
 * key), so acquire / renew / release / expiry / fencing and user status run
 * on documents and users whose keys live on different masters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOCK_BUCKETS } from '../src/engine/redis/locks.js';
import { hash } from '../src/engine/redis/shard.js';
import { RedisCluster } from './helpers/redis-cluster.js';
import { connectedClient, subscribe } from './helpers/sdk.js';
import { lockNodes, recordHolders, refusal, rpc } from './helpers/locks.js';
import { until } from './helpers/wait.js';

test('Redis Cluster: locks on documents of every master, expiry told once, fencing, user status', async (t) => {
  const cluster = await RedisCluster.start(t, 3, 0);
  const nodes = await lockNodes(t, 'redis', 2, {}, { cluster_addresses: cluster.addresses, address: '' });
  const events = recordHolders(nodes);
  const docs = Array.from({ length: 12 }, (_, i) => `quote:c${i}`);
  // The documents' buckets (hash tag {lk<n>}: the slot of all their keys) spread over the masters.
  const masters = new Set(await Promise.all(docs.map((d) => cluster.masterOf(`{lk${hash(d) % LOCK_BUCKETS}}`))));
  assert.ok(masters.size >= 2, `documents on ${masters.size} masters`);

  const a = await connectedClient(t, nodes[0]!, 'alice');
  const b = await connectedClient(t, nodes[1]!, 'bob');
  for (const d of docs) {
    await subscribe(a, d);
    await subscribe(b, d);
  }
  for (const d of docs) {
    const l = await rpc(a, 'lock.acquire', { key: `${d}/premium`, ttl_ms: 5000 });
    assert.equal((await refusal(b.rpc('lock.acquire', { key: `${d}/premium` }))).code, 150);
    await rpc(a, 'lock.renew', { key: `${d}/premium`, token: l.token });
    await a.publish(d, { v: 1, $fence: { key: `${d}/premium`, token: l.token } });
    await rpc(a, 'lock.release', { key: `${d}/premium`, token: l.token });
    const l2 = await rpc(b, 'lock.acquire', { key: `${d}/premium`, ttl_ms: 60 });
    assert.ok(BigInt(l2.token) > BigInt(l.token));
    assert.equal((await refusal(a.publish(d, { v: 2, $fence: { key: `${d}/premium`, token: l.token } }))).code, 151);
    assert.equal((await rpc(a, 'lock.get', { document: d })).holders[0].user, 'bob');
  }
  await until('every short lease expired', 10_000, () => events.filter((e) => e.op === 'remove').length === docs.length * 2);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(events.filter((e) => e.op === 'remove').length, docs.length * 2, 'each end told once');

  const statuses = await nodes[1]!.sb.getUserStatus(['alice', 'bob', 'carol']);
  assert.deepEqual(
    statuses.map((s) => [s.user, s.connected, s.active !== undefined]),
    [
      ['alice', true, true],
      ['bob', true, true],
      ['carol', false, false],
    ],
  );
});
