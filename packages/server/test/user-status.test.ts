/**
 * User status (Centrifugo PRO's shape) with the real SDK, on the memory
 * engine and on Redis with two nodes: set on connect and by client commands
 * (throttled), `online` / `connected` from presence across nodes, expiry,
 * and the HTTP API, in-process API and the client's `user_status.get` RPC.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { executeApiCommand } from '../src/api/executor.js';
import { connectedClient, subscribe } from './helpers/sdk.js';
import { lockNodes, refusal, rpc, type EngineKind } from './helpers/locks.js';
import { startServer } from './helpers/server.js';
import { nowSec } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';

type Status = { user: string; active?: number; online?: number; connected: boolean };

for (const kind of ['memory', 'redis'] as EngineKind[]) {
  const nodeCount = kind === 'redis' ? 2 : 1;

  test(`${kind}: connect sets active and online; connected follows the user's connections on any node`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount);
    const first = nodes[0]!;
    const last = nodes[nodes.length - 1]!;
    const user = `us-${kind}-1`;
    const before = nowSec();
    assert.deepEqual(await first.sb.getUserStatus([user]), [{ user, connected: false }], 'unknown: no times');

    const a = await connectedClient(t, last, user);
    let s: Status[] = [];
    await until(
      'status after connect',
      3000,
      async () => (s = await first.sb.getUserStatus([user]))[0]!.connected && s[0]!.active !== undefined,
    );
    assert.ok(s[0]!.active! >= before && s[0]!.online! >= before);

    // Another user asks over the client RPC, from the other node.
    const b = await connectedClient(t, first, `us-${kind}-2`);
    const viaRpc = await rpc<{ statuses: Status[] }>(b, 'user_status.get', { users: [user, 'nobody-at-all'] });
    assert.equal(viaRpc.statuses.length, 2);
    assert.equal(viaRpc.statuses[0]!.user, user);
    assert.equal(viaRpc.statuses[0]!.connected, true);
    assert.deepEqual(viaRpc.statuses[1], { user: 'nobody-at-all', connected: false });

    const gone = waitFor(a, 'disconnected');
    a.disconnect();
    await gone;
    await until('not connected after the last connection closed', 5000, async () => !(await first.sb.getUserStatus([user]))[0]!.connected);
    const after = (await first.sb.getUserStatus([user]))[0]!;
    assert.ok(after.online! >= s[0]!.active!, 'online: when last seen connected');
    assert.ok(after.active !== undefined);
  });

  test(`${kind}: client commands mark the user active, throttled; update_user_status RPC and API; delete`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount, { user_status: { update_throttle_ms: 0 } });
    const sb = nodes[0]!.sb;
    const user = `us-${kind}-3`;
    const a = await connectedClient(t, nodes[nodes.length - 1]!, user);
    await until('status after connect', 3000, async () => (await sb.getUserStatus([user]))[0]!.active !== undefined);
    // Backdate, then a command brings it to now (throttle 0: every command writes).
    await sb.deleteUserStatus([user]);
    assert.equal((await sb.getUserStatus([user]))[0]!.active, undefined);
    await subscribe(a, 'notes:x');
    await until('a command set active', 3000, async () => (await sb.getUserStatus([user]))[0]!.active !== undefined);

    await sb.deleteUserStatus([user]);
    assert.deepEqual(await rpc(a, 'update_user_status', {}), {});
    assert.ok((await sb.getUserStatus([user]))[0]!.active! >= nowSec() - 1);

    // HTTP API shapes (through the executor every route uses).
    assert.deepEqual(await executeApiCommand(sb, 'delete_user_status', { users: [user] }), { result: {} });
    assert.deepEqual(await executeApiCommand(sb, 'update_user_status', { users: [user, 'other'] }), { result: {} });
    const got = await executeApiCommand(sb, 'get_user_status', { users: ['other'] });
    assert.ok('result' in got);
    const st = (got.result as { statuses: Status[] }).statuses[0]!;
    assert.equal(st.user, 'other');
    assert.equal(st.connected, false);
    assert.ok(st.active! >= nowSec() - 2);
    assert.equal(st.online, undefined, 'never connected: no online time');
    assert.deepEqual(await executeApiCommand(sb, 'get_user_status', { users: [] }), {
      error: { code: 107, message: 'bad request: users must NOT have fewer than 1 items' },
    });
    assert.equal((await refusal(a.rpc('user_status.get', { users: 'alice' }))).code, 107);
  });

  test(`${kind}: the throttle writes a user's activity at most once per interval per node`, async (t) => {
    const nodes = await lockNodes(t, kind, 1, { user_status: { update_throttle_ms: 60_000 } });
    const sb = nodes[0]!.sb;
    const user = `us-${kind}-4`;
    const a = await connectedClient(t, nodes[0]!, user);
    await until('status after connect', 3000, async () => (await sb.getUserStatus([user]))[0]!.active !== undefined);
    await sb.deleteUserStatus([user]);
    for (let i = 0; i < 5; i++) await subscribe(a, `notes:t${i}`);
    // Commands answered in order: had the throttle let one write through, its write (issued before the reply) is done by now.
    await rpc(a, 'user_status.get', { users: [user] });
    assert.equal((await sb.getUserStatus([user]))[0]!.active, undefined, 'inside the throttle window: no write');
  });
}

test('memory: status entries expire after user_status.expire_s', async (t) => {
  const [n] = await lockNodes(t, 'memory', 1, { user_status: { expire_s: 1 } });
  await n!.sb.updateUserStatus(['short-lived']);
  assert.ok((await n!.sb.getUserStatus(['short-lived']))[0]!.active);
  await until('expired', 5000, async () => (await n!.sb.getUserStatus(['short-lived']))[0]!.active === undefined);
});

test('redis: status entries expire after user_status.expire_s (key TTL)', async (t) => {
  const [n] = await lockNodes(t, 'redis', 1, { user_status: { expire_s: 1 } });
  await n!.sb.updateUserStatus(['short-lived']);
  assert.ok((await n!.sb.getUserStatus(['short-lived']))[0]!.active);
  await until('expired', 5000, async () => (await n!.sb.getUserStatus(['short-lived']))[0]!.active === undefined);
});

test('HTTP API over a real server: update, get, delete user status; off = 108', async (t) => {
  const s = await startServer(t, { user_status: { enabled: true } });
  assert.deepEqual(await s.call('update_user_status', { users: ['http-user'] }), { result: {} });
  const r = (await s.call('get_user_status', { users: ['http-user'] })) as { result: { statuses: Status[] } };
  assert.equal(r.result.statuses[0]!.user, 'http-user');
  assert.ok(r.result.statuses[0]!.active! >= nowSec() - 5);
  assert.deepEqual(await s.call('delete_user_status', { users: ['http-user'] }), { result: {} });
  assert.deepEqual(await s.call('get_user_status', { users: ['http-user'] }), {
    result: { statuses: [{ user: 'http-user', connected: false }] },
  });

  const off = await startServer(t, {});
  assert.deepEqual(await off.call('get_user_status', { users: ['x'] }), { error: { code: 108, message: 'not available' } });
});
