/**
 * Lock holders, live, in a map channel with the real SDK
 * (`newMapSubscription('locks:<document>')`): a watcher sees each lease
 * appear (value {user, client, token, expires_at}) and go away on release,
 * on its connection closing and on expiry; on Redis with the holders
 * written by two nodes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mirrorMap } from './helpers/map-sdk.js';
import { connectedClient, subscribe } from './helpers/sdk.js';
import { HOLDERS_NAMESPACE, LOCKS_CONFIG, lockNodes, redisHasMaps, rpc, type EngineKind } from './helpers/locks.js';
import { waitFor } from './helpers/wait.js';

const EXTRA = { channel: { namespaces: [...LOCKS_CONFIG.channel.namespaces.filter((n) => n.name !== 'locks'), HOLDERS_NAMESPACE] } };

for (const kind of ['memory', 'redis'] as EngineKind[]) {
  const skip = kind === 'redis' && !redisHasMaps() && 'the Redis engine has no map role on this branch yet';
  test(`${kind}: a watcher sees who holds which field, live, in the map channel locks:<document>`, { skip }, async (t) => {
    const nodes = await lockNodes(t, kind, kind === 'redis' ? 2 : 1, EXTRA);
    const a = await connectedClient(t, nodes[0]!, 'alice');
    const b = await connectedClient(t, nodes[nodes.length - 1]!, 'bob');
    await subscribe(a, 'quote:7');
    await subscribe(b, 'quote:7');
    const watcher = await connectedClient(t, nodes[0]!, 'carol');
    const m = mirrorMap(watcher, 'locks:quote:7');
    m.sub.subscribe();
    await m.until(() => m.syncs >= 1, 'first sync');
    assert.equal(m.state.size, 0);

    const la = await rpc(a, 'lock.acquire', { key: 'quote:7/premium' });
    await m.until(() => m.state.has('premium'), 'premium held');
    assert.deepEqual(m.state.get('premium'), { user: 'alice', client: la.holder.client, token: la.token, expires_at: la.expires_at });
    const lb = await rpc(b, 'lock.acquire', { key: 'quote:7/notes' });
    await m.until(() => (m.state.get('notes') as { token?: string } | undefined)?.token === lb.token, 'notes held by bob');

    await rpc(a, 'lock.release', { key: 'quote:7/premium', token: la.token });
    await m.until(() => !m.state.has('premium'), 'premium released');
    const gone = waitFor(b, 'disconnected');
    b.disconnect();
    await gone;
    await m.until(() => !m.state.has('notes'), "notes ended with bob's connection");

    const short = await rpc(a, 'lock.acquire', { key: 'quote:7/premium', ttl_ms: 100 });
    await m.until(() => (m.state.get('premium') as { token?: string } | undefined)?.token === short.token, 'short lease shown');
    await m.until(() => !m.state.has('premium'), 'short lease expired');

    // A late watcher gets the current holders in its first state.
    const l2 = await rpc(a, 'lock.acquire', { key: 'quote:7/premium' });
    const late = mirrorMap(await connectedClient(t, nodes[nodes.length - 1]!, 'dave'), 'locks:quote:7');
    late.sub.subscribe();
    await late.until(() => (late.state.get('premium') as { token?: string } | undefined)?.token === l2.token, 'late watcher state');

    // Clients only read the holders map: the server writes it.
    await assert.rejects(m.sub.publish('premium', { user: 'carol' }), (e: any) => e.code === 103);
    await assert.rejects(m.sub.remove('premium'), (e: any) => e.code === 103);
  });
}
