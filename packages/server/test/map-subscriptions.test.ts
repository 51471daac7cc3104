/**
 * Map subscriptions with the real SDK (`newMapSubscription`) on the memory
 * engine: paginated state then live updates with no gap, recovery of a
 * positioned map, streamless resync, key TTL, client publish/remove rules,
 * bad input answered with clear codes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { embedded, SECRET } from './helpers/embedded.js';
import { mirrorMap } from './helpers/map-sdk.js';
import { connectedClient } from './helpers/sdk.js';

const NAMESPACES = [
  {
    name: 'doc',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: { mode: 'persistent', allow_publish_for_subscriber: true, allow_remove_for_subscriber: true, min_page_size: 10 },
  },
];

async function node(t: any, extra: Record<string, unknown> = {}) {
  const n = await embedded(t, { channel: { namespaces: NAMESPACES }, ...extra });
  return { ...n, secret: SECRET };
}

test('a map subscription gets the state, then live updates', async (t) => {
  const n = await node(t);
  for (let i = 0; i < 25; i++) await n.sb.mapPublish('doc:1', `k${i}`, { i });
  const c = await connectedClient(t, n, 'u1');
  const m = mirrorMap(c, 'doc:1', { pageSize: 10 });
  await m.until(() => m.syncs === 1, 'sync');
  assert.equal(m.state.size, 25);
  assert.deepEqual(m.state.get('k7'), { i: 7 });
  await n.sb.mapPublish('doc:1', 'k7', { i: 'seven' });
  await n.sb.mapRemove('doc:1', 'k8');
  await m.until(() => !m.state.has('k8') && (m.state.get('k7') as any)?.i === 'seven', 'live updates');
});
