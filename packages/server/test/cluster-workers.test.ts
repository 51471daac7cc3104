/**
 * `switchboard serve --workers 2`: two worker processes, each a node,
 * sharing one port and a Redis. Connections spread over both; every client
 * gets every publication; a killed worker is replaced; SIGTERM drains all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { offsetsOf, range, subscribedClient } from './helpers/sdk.js';
import { startServer } from './helpers/server.js';
import { until } from './helpers/wait.js';

interface NodeRow {
  name: string;
  num_clients: number;
}

test('--workers 2: clients on both workers get every publication in order; a killed worker is replaced; SIGTERM drains', async (t) => {
  const cfg = nodeConfig(SHARED_REDIS, uniquePrefix('workers'), { engine: { redis: { node_info_ttl: '2s' } } });
  const primary = await startServer(t, cfg, { raw: true, args: ['--workers', '2'] });
  const nodes = async (): Promise<NodeRow[]> => (await primary.call('info')).result.nodes as NodeRow[];
  await until('two workers to answer', 20_000, async () => (await primary.waitReady(true), (await nodes()).length === 2));
  const workers = (await nodes()).map((n) => Number(n.name.split('-').pop()));
  t.after(() => {
    for (const pid of workers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });

  const clients = [];
  for (let i = 0; i < 6; i++) clients.push(await subscribedClient(t, primary, `w${i}`, 'all'));
  await until('connections on both workers', 10_000, async () => {
    const rows = await nodes();
    return rows.length === 2 && rows.every((n) => n.num_clients > 0) && rows.reduce((s, n) => s + n.num_clients, 0) === 6;
  });

  for (let i = 1; i <= 20; i++) assert.equal((await primary.call('publish', { channel: 'all', data: { i } })).result.offset, i);
  await Promise.all(clients.map((c) => c.until(20)));
  for (const c of clients) assert.deepEqual(offsetsOf(c), range(1, 20));

  // A worker dies: the primary starts another; its clients reconnect and recover.
  process.kill(workers[0]!, 'SIGKILL');
  // A request in flight on the dead worker fails; the backend retries with
  // the same idempotency key, so a publish that did land is not repeated.
  for (let i = 21; i <= 30; i++) {
    let r;
    for (let attempt = 0; !r; attempt++) {
      r = await primary.call('publish', { channel: 'all', data: { i }, idempotency_key: `p${i}` }).catch((e: unknown) => {
        if (attempt > 20) throw e;
        return undefined;
      });
    }
    assert.equal(r.result?.offset, i, JSON.stringify(r));
  }
  await Promise.all(clients.map((c) => c.until(30)));
  for (const c of clients) assert.deepEqual(offsetsOf(c), range(1, 30));
  await until('a replacement worker', 20_000, async () => {
    const names = (await nodes()).map((n) => Number(n.name.split('-').pop()));
    if (names.length === 2 && !names.includes(workers[0]!)) {
      workers.push(...names);
      return true;
    }
    return false;
  });

  primary.kill('SIGTERM');
  assert.deepEqual(await primary.exited, { code: 0, signal: null });
  for (const c of clients) await until('the 3001 drain', 5000, async () => c.reconnectCodes.includes(3001));
});
