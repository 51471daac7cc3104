/**
 * Shared poll across two `switchboard serve` processes on the Redis engine.
 * Each node polls the backend for its own trackers (once per key per
 * interval, whatever its number of clients): updates reach the clients of
 * both nodes, and a client moved from one node to the other (behind a TCP
 * proxy playing the load balancer) replays its keys there without getting
 * again what it already had (versioned mode: versions mean the same on
 * every node).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SharedPollSubscription } from 'centrifuge';
import { TcpProxy } from './helpers/net.js';
import { POLL_SECRET, recordUpdates, signer, startPollBackend, type PollBackend } from './helpers/poll-backend.js';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import type { TestContextLike } from './helpers/scope.js';
import { connectedClient } from './helpers/sdk.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { until, waitFor } from './helpers/wait.js';

const CH = 'votes:feed';

function pollConfig(pb: PollBackend, prefix: string, node: string): Record<string, unknown> {
  return nodeConfig(SHARED_REDIS, prefix, {
    shared_poll: { hmac_secret_key: POLL_SECRET },
    channel: {
      proxy: { shared_poll_refresh: { endpoint: `${pb.url}/refresh?node=${node}`, timeout: '1s' } },
      namespaces: [
        {
          name: 'votes',
          subscription_type: 'shared_poll',
          allow_subscribe_for_client: true,
          shared_poll: { refresh_interval: '200ms', mode: 'versioned' },
        },
      ],
    },
  });
}

async function track(t: TestContextLike, server: { ws: string; secret: string }, pb: PollBackend, user: string, keys: string[]) {
  const client = await connectedClient(t, server, user);
  const sub: SharedPollSubscription = client.newSharedPollSubscription(CH, { getSignature: signer(pb, user, CH) });
  const rec = recordUpdates(sub);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  sub.track(keys);
  return { client, sub, rec };
}

test('two nodes: each polls once per key per interval for its own trackers; updates reach both; a client moved across nodes replays', async (t) => {
  const pb = await startPollBackend(t);
  pb.set('k1', { v: 1 });
  pb.set('k2', { v: 1 });
  const prefix = uniquePrefix('sharedpoll');
  const nodes: RunningServer[] = await Promise.all(['a', 'b'].map((n) => startServer(t, pollConfig(pb, prefix, n), { raw: true })));
  const clients: Array<Awaited<ReturnType<typeof track>>> = [];
  for (let i = 0; i < 6; i++) clients.push(await track(t, nodes[i % 2]!, pb, `u${i}`, ['k1', 'k2']));
  await until('every client to have both keys', 10_000, () => clients.every((c) => c.rec.latest.size === 2));

  const cycles = (n: RunningServer) => n.metric('switchboard_shared_poll_cycles_total');
  await until('three cycles on each node', 15_000, async () => (await cycles(nodes[0]!)) >= 3 && (await cycles(nodes[1]!)) >= 3);
  for (const [i, name] of ['a', 'b'].entries()) {
    const polled = ['k1', 'k2'].map((k) => pb.timesPolled(k, `/refresh?node=${name}`));
    const c = await cycles(nodes[i]!);
    for (const n of polled) assert.ok(n >= 1 && n <= c + 1, `node ${name}: a key polled ${n} times in ${c} cycles with 3 trackers`);
  }

  pb.set('k1', { v: 2 });
  await until('the update on both nodes', 10_000, () => clients.every((c) => (c.rec.latest.get('k1') as { v: number }).v === 2));
  for (const c of clients) assert.equal(c.rec.updates.filter((u) => u.key === 'k1').length, 2, 'each version once');

  // A client behind a load balancer lands on node b after a cut.
  const lb = await TcpProxy.start(t, nodes[0]!.port);
  const moving = await track(t, { ws: lb.ws, secret: nodes[0]!.secret }, pb, 'mover', ['k1', 'k2']);
  await until('mover has both keys', 10_000, () => moving.rec.latest.size === 2);
  const updatesBefore = moving.rec.updates.length;
  const signs = pb.signCalls();
  lb.target = nodes[1]!.port;
  const resubscribed = waitFor(moving.sub, 'subscribed', { ms: 10_000 });
  lb.cutAll();
  await resubscribed;
  pb.set('k2', { v: 2 });
  await until('mover gets the update from node b', 10_000, () => (moving.rec.latest.get('k2') as { v: number }).v === 2);
  assert.equal(moving.rec.updates.length, updatesBefore + 1, 'only the new version: nothing it had was sent again');
  assert.equal(pb.signCalls(), signs, 'replayed with the cached signature');
  assert.deepEqual(moving.rec.errors, []);
});
