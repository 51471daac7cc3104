/**
 * Exactness of field locks under races, a property test: N real SDK clients
 * (spread over two nodes on Redis) race for one field in rounds; each
 * round's lease ends by release, by expiry or by its connection closing.
 * Checked with the server's own times and tokens, never with timing:
 * - tokens strictly increase in the order leases were issued (store clock);
 * - lease k ended (release time, or its expiry) no later than lease k+1 began:
 *   at most one holder at any moment;
 * - each lease's end is told once, across nodes;
 * - the previous holder's publication with its old token is refused (151).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { connectedClient, subscribe } from './helpers/sdk.js';
import { lockNodes, recordHolders, refusal, type EngineKind, type LockNode } from './helpers/locks.js';
import { until, waitFor } from './helpers/wait.js';
import type { TestContextLike } from './helpers/scope.js';

const CLIENTS = 6;
const ROUNDS = 24;
const KEY = 'quote:race/premium';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Acquired {
  token: bigint;
  acquiredAt: number;
  expiresAt: number;
  client: number;
}

async function racer(t: TestContextLike, nodes: LockNode[], i: number, user: number): Promise<Centrifuge> {
  const c = await connectedClient(t, nodes[i % nodes.length]!, `racer-${user}`);
  await subscribe(c, 'quote:race');
  return c;
}

async function run(t: TestContextLike, kind: EngineKind): Promise<void> {
  const nodes = await lockNodes(t, kind, kind === 'redis' ? 2 : 1);
  const events = recordHolders(nodes);
  const clients: Centrifuge[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await racer(t, nodes, i, i));
  let nextUser = CLIENTS;
  const acquired: Acquired[] = [];
  let prev: { client: Centrifuge; token: string } | undefined;
  let staleRefused = 0;
  let lastWinner = -1;

  for (let round = 0; round < ROUNDS; round++) {
    let winner: { i: number; token: string } | undefined;
    // The holder of a lease left to expire sits the next round out (its acquire would be a renew).
    const sitOut = round % 3 === 2 ? lastWinner : -1;
    await Promise.all(
      clients.map(async (c, i) => {
        while (!winner && i !== sitOut) {
          try {
            const l = (await c.rpc('lock.acquire', { key: KEY, ttl_ms: round % 3 === 1 ? 150 : 10_000 })).data as {
              token: string;
              acquired_at: number;
              expires_at: number;
            };
            acquired.push({ token: BigInt(l.token), acquiredAt: l.acquired_at, expiresAt: l.expires_at, client: i });
            winner ??= { i, token: l.token };
          } catch (e) {
            if ((e as { code?: number }).code !== 150)
              throw Object.assign(new Error(`round ${round} client ${i}: ${JSON.stringify(e)}`), { e });
            await sleep(Math.random() * 8);
          }
        }
      }),
    );
    const w = winner!;
    lastWinner = w.i;
    // The last holder still writing with its token: refused, the current lease is newer.
    if (prev && prev.client.state === 'connected') {
      const e = await refusal(prev.client.publish('quote:race', { premium: round, $fence: { key: KEY, token: prev.token } }));
      assert.equal(e.code, 151, `round ${round}: stale token publish refused`);
      staleRefused++;
    }
    await clients[w.i]!.publish('quote:race', { premium: round, $fence: { key: KEY, token: w.token } });
    prev = { client: clients[w.i]!, token: w.token };
    switch (round % 3) {
      case 0:
        await clients[w.i]!.rpc('lock.release', { key: KEY, token: w.token });
        break;
      case 1:
        break; // it expires: the next round's racers wait for it (150s until then)
      case 2: {
        const gone = waitFor(clients[w.i]!, 'disconnected');
        clients[w.i]!.disconnect();
        await gone;
        clients[w.i] = await racer(t, nodes, w.i, nextUser++);
        break;
      }
    }
  }
  const last = acquired.reduce((m, a) => (a.token > m ? a.token : m), 0n);
  await until('the last lease ends', 5000, () => events.some((e) => e.op === 'remove' && BigInt(e.token) === last));

  // Tokens: unique, and strictly increasing in issue order.
  const byToken = [...acquired].sort((a, b) => (a.token < b.token ? -1 : 1));
  assert.equal(new Set(acquired.map((a) => a.token)).size, acquired.length, 'each token issued once');
  assert.equal(acquired.length, ROUNDS, 'one lease per round');
  const ended = new Map<bigint, number[]>();
  for (const e of events) if (e.op === 'remove') ended.set(BigInt(e.token), [...(ended.get(BigInt(e.token)) ?? []), e.endedAt]);
  for (let k = 0; k < byToken.length; k++) {
    const a = byToken[k]!;
    const ends = ended.get(a.token) ?? [];
    assert.equal(ends.length, 1, `lease ${a.token}: its end told once (got ${ends.length})`);
    assert.ok(ends[0]! <= a.expiresAt, `lease ${a.token} ended no later than its expiry`);
    if (k + 1 < byToken.length) {
      const b = byToken[k + 1]!;
      assert.ok(b.acquiredAt >= a.acquiredAt, `token ${b.token} issued after ${a.token}`);
      assert.ok(
        ends[0]! <= b.acquiredAt,
        `lease ${a.token} ended (${ends[0]}) before ${b.token} began (${b.acquiredAt}): one holder at a time`,
      );
    }
  }
  assert.ok(staleRefused >= ROUNDS / 2, `stale publications refused (${staleRefused})`);
}

test('memory: N clients race for one field in rounds: one holder at a time, tokens increase, stale writes refused', (t) =>
  run(t, 'memory'));

test('redis, two nodes: N clients race for one field in rounds: one holder at a time, tokens increase, stale writes refused', (t) =>
  run(t, 'redis'));
