/**
 * Collaborative field locks with the real SDK (`centrifuge.rpc`), on the
 * memory engine (one node) and on Redis (two nodes, clients on both):
 * acquire / renew / release, the lease ending on disconnect and on expiry
 * (told once across nodes), fencing of publications (client `$fence` and
 * the API's `fence`), and bad input answered with clear codes and counted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { BrowserLikeWebSocket, connectedClient, subscribe } from './helpers/sdk.js';
import { mintToken } from './helpers/tokens.js';
import { lockNodes, recordHolders, refusal, rpc, type EngineKind } from './helpers/locks.js';
import { until, waitFor } from './helpers/wait.js';
import { executeApiCommand } from '../src/api/executor.js';

async function counter(
  sb: { metrics: { registry: { getSingleMetric(n: string): unknown } } },
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = sb.metrics.registry.getSingleMetric(name) as {
    get(): Promise<{ values: Array<{ labels: Record<string, unknown>; value: number }> }>;
  };
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

for (const kind of ['memory', 'redis'] as EngineKind[]) {
  const nodeCount = kind === 'redis' ? 2 : 1;

  test(`${kind}: acquire, held by another (150), renew, release; tokens only increase`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount);
    const a = await connectedClient(t, nodes[0]!, 'alice');
    const b = await connectedClient(t, nodes[nodes.length - 1]!, 'bob');
    await subscribe(a, 'quote:1');
    await subscribe(b, 'quote:1');
    const events = recordHolders(nodes);

    const l1 = await rpc(a, 'lock.acquire', { key: 'quote:1/premium', ttl_ms: 5000 });
    assert.equal(l1.key, 'quote:1/premium');
    assert.match(l1.token, /^[0-9]+$/);
    assert.equal(l1.holder.user, 'alice');
    assert.ok(l1.expires_at > l1.acquired_at);
    const held = await refusal(b.rpc('lock.acquire', { key: 'quote:1/premium' }));
    assert.equal(held.code, 150);

    // The holder acquiring again is a renew: same token.
    const again = await rpc(a, 'lock.acquire', { key: 'quote:1/premium', ttl_ms: 6000 });
    assert.equal(again.token, l1.token);
    const renewed = await rpc(a, 'lock.renew', { key: 'quote:1/premium', token: l1.token, ttl_ms: 8000 });
    assert.equal(renewed.token, l1.token);
    assert.ok(renewed.expires_at >= again.expires_at);
    // Not the holder: 152 even with the right token.
    assert.equal((await refusal(b.rpc('lock.renew', { key: 'quote:1/premium', token: l1.token }))).code, 152);
    assert.equal((await refusal(b.rpc('lock.release', { key: 'quote:1/premium', token: l1.token }))).code, 152);

    const holders = await rpc(b, 'lock.get', { document: 'quote:1' });
    assert.deepEqual(
      holders.holders.map((h: any) => [h.field, h.user, h.token]),
      [['premium', 'alice', l1.token]],
    );

    const rel = await rpc(a, 'lock.release', { key: 'quote:1/premium', token: l1.token });
    assert.ok(rel.released_at >= l1.acquired_at);
    assert.equal((await refusal(a.rpc('lock.release', { key: 'quote:1/premium', token: l1.token }))).code, 152);
    const l2 = await rpc(b, 'lock.acquire', { key: 'quote:1/premium' });
    assert.ok(BigInt(l2.token) > BigInt(l1.token), 'a new lease gets a larger token');
    assert.equal((await rpc(a, 'lock.get', { document: 'quote:1' })).holders[0].user, 'bob');

    await until('holder changes told', 3000, () => events.filter((e) => e.op === 'remove').length === 1);
    const removes = events.filter((e) => e.op === 'remove');
    assert.deepEqual(
      removes.map((e) => [e.channel, e.field, (e as { token: string }).token]),
      [['locks:quote:1', 'premium', l1.token]],
    );
    assert.ok(events.some((e) => e.op === 'set' && e.value.token === l2.token && e.value.user === 'bob'));
  });

  test(`${kind}: a lease ends when its connection closes, and at its expiry (told once across nodes)`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount);
    const events = recordHolders(nodes);
    const a = await connectedClient(t, nodes[0]!, 'alice');
    const b = await connectedClient(t, nodes[nodes.length - 1]!, 'bob');
    await subscribe(a, 'quote:2');
    await subscribe(b, 'quote:2');

    const la = await rpc(a, 'lock.acquire', { key: 'quote:2/a' });
    const lb = await rpc(a, 'lock.acquire', { key: 'quote:2/b' });
    const gone = waitFor(a, 'disconnected');
    a.disconnect();
    await gone;
    await until(
      'both leases of the closed connection ended',
      5000,
      async () => (await rpc(b, 'lock.get', { document: 'quote:2' })).holders.length === 0,
    );
    const lb2 = await rpc(b, 'lock.acquire', { key: 'quote:2/b', ttl_ms: 100 });
    assert.ok(BigInt(lb2.token) > BigInt(lb.token));
    assert.ok(la.token !== lb.token || la.key !== lb.key);

    // Expiry: no release, no renew: the sweep ends it, one node tells it.
    await until('lease expired', 5000, () => events.some((e) => e.op === 'remove' && e.token === lb2.token));
    await new Promise((r) => setTimeout(r, 200)); // several sweeps of every node
    const told = events.filter((e) => e.op === 'remove' && e.token === lb2.token);
    assert.equal(told.length, 1, 'the expiry is told once, by one node');
    assert.equal((told[0] as { endedAt: number }).endedAt, lb2.expires_at);
    assert.equal(
      (await refusal(b.rpc('lock.renew', { key: 'quote:2/b', token: lb2.token }))).code,
      152,
      'an expired lease cannot be renewed',
    );
    const lb3 = await rpc(b, 'lock.acquire', { key: 'quote:2/b' });
    assert.ok(BigInt(lb3.token) > BigInt(lb2.token), 'tokens increase across expiry');
  });

  test(`${kind}: fencing: a publication with an older token is refused with 151, the current one goes through`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount);
    const a = await connectedClient(t, nodes[0]!, 'alice');
    const b = await connectedClient(t, nodes[nodes.length - 1]!, 'bob');
    const { sub } = await subscribe(a, 'quote:3');
    await subscribe(b, 'quote:3');
    const got: unknown[] = [];
    sub.on('publication', (ctx) => got.push(ctx.data));

    const old = await rpc(a, 'lock.acquire', { key: 'quote:3/premium' });
    await a.publish('quote:3', { premium: 100, $fence: { key: 'quote:3/premium', token: old.token } });
    await rpc(a, 'lock.release', { key: 'quote:3/premium', token: old.token });
    const cur = await rpc(b, 'lock.acquire', { key: 'quote:3/premium' });

    // a still thinks it may write: refused.
    const stale = await refusal(a.publish('quote:3', { premium: 1, $fence: { key: 'quote:3/premium', token: old.token } }));
    assert.equal(stale.code, 151);
    // A token never issued.
    const forged = String(BigInt(cur.token) + 1000n);
    assert.equal((await refusal(b.publish('quote:3', { premium: 2, $fence: { key: 'quote:3/premium', token: forged } }))).code, 152);
    // A fenced namespace needs $fence; a fence must name a field of the channel.
    assert.equal((await refusal(b.publish('quote:3', { premium: 3 }))).code, 107);
    assert.equal((await refusal(b.publish('quote:3', { premium: 3, $fence: { key: 'quote:9/premium', token: cur.token } }))).code, 107);
    await b.publish('quote:3', { premium: 200, $fence: { key: 'quote:3/premium', token: cur.token } });

    // The API's publish: explicit fence param.
    const sb = nodes[0]!.sb;
    assert.equal(
      (await refusal(sb.publish('quote:3', { premium: 4 }, { fence: { key: 'quote:3/premium', token: old.token } }))).error.code,
      151,
    );
    const api = await executeApiCommand(sb, 'publish', {
      channel: 'quote:3',
      data: { premium: 5 },
      fence: { key: 'quote:3/premium', token: old.token },
    });
    assert.deepEqual(api, { error: { code: 151, message: 'stale fencing token' } });
    await sb.publish('quote:3', { premium: 300 }, { fence: { key: 'quote:3/premium', token: cur.token } });

    // Unfenced namespace: $fence checked when present, absent is fine.
    await subscribe(a, 'notes:3');
    await a.publish('notes:3', { text: 'free' });
    await rpc(a, 'lock.acquire', { key: 'notes:3/x' }).then((l) =>
      refusal(b.publish('notes:3', { text: 'old', $fence: { key: 'notes:3/x', token: String(BigInt(l.token) - 1n) } })).then((e) =>
        assert.equal(e.code, 151),
      ),
    );

    await until('publications delivered', 3000, () => got.length === 3);
    assert.deepEqual(
      got.map((d: any) => d.premium),
      [100, 200, 300],
      'only the publications with the current token were published',
    );
  });

  test(`${kind}: bad input: keys, ttl, tokens, too many locks, no subscription → clear codes, counted`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount, { locks: { max_per_connection: 2, max_key_length: 40 } });
    const sb = nodes[0]!.sb;
    const a = await connectedClient(t, nodes[0]!, 'alice');
    await subscribe(a, 'quote:4');
    const badKeys = await counter(sb, 'switchboard_bad_input_total', { kind: 'lock_bad_key' });

    for (const key of ['', 'quote:4', 'quote:4/', '/premium', 'quote:4/pre mium', 'quote:4/' + 'x'.repeat(40), 42]) {
      assert.equal((await refusal(a.rpc('lock.acquire', { key }))).code, 107, `key ${JSON.stringify(key)}`);
    }
    assert.equal(await counter(sb, 'switchboard_bad_input_total', { kind: 'lock_bad_key' }), badKeys + 7);
    for (const ttl_ms of [10, 60001, 1.5, '100']) {
      assert.equal((await refusal(a.rpc('lock.acquire', { key: 'quote:4/a', ttl_ms }))).code, 107, `ttl ${ttl_ms}`);
    }
    assert.ok((await counter(sb, 'switchboard_bad_input_total', { kind: 'lock_bad_ttl' })) >= 4);
    for (const token of ['abc', '-1', 7, '1'.repeat(30)]) {
      assert.equal((await refusal(a.rpc('lock.renew', { key: 'quote:4/a', token }))).code, 107, `token ${JSON.stringify(token)}`);
    }
    // Forged but well-formed: not held.
    assert.equal((await refusal(a.rpc('lock.release', { key: 'quote:4/a', token: '123456789' }))).code, 152);
    assert.equal((await refusal(a.rpc('lock.acquire', 'not an object'))).code, 107);

    // A document the connection is not subscribed to.
    assert.equal((await refusal(a.rpc('lock.acquire', { key: 'quote:5/a' }))).code, 103);

    // max_per_connection: 2
    await rpc(a, 'lock.acquire', { key: 'quote:4/a' });
    const lb = await rpc(a, 'lock.acquire', { key: 'quote:4/b' });
    assert.equal((await refusal(a.rpc('lock.acquire', { key: 'quote:4/c' }))).code, 106);
    assert.ok((await counter(sb, 'switchboard_limit_hits_total', { limit: 'locks_per_connection' })) >= 1);
    await rpc(a, 'lock.acquire', { key: 'quote:4/a' }); // renewing one held is not a new lock
    await rpc(a, 'lock.release', { key: 'quote:4/b', token: lb.token });
    await rpc(a, 'lock.acquire', { key: 'quote:4/c' });
    assert.ok((await counter(sb, 'switchboard_locks_total', { op: 'acquire', result: 'limit' })) >= 1);

    // Other methods still reach the RPC hook (none here: 108).
    assert.equal((await refusal(a.rpc('quote.price', {}))).code, 108);
  });

  test(`${kind}: the server API and the in-process API hold locks for the backend`, async (t) => {
    const nodes = await lockNodes(t, kind, nodeCount);
    const sb = nodes[nodes.length - 1]!.sb;
    const a = await connectedClient(t, nodes[0]!, 'alice');
    await subscribe(a, 'quote:6');

    const r = await executeApiCommand(sb, 'lock_acquire', { key: 'quote:6/premium', ttl_ms: 2000, user: 'pricing-bot' });
    assert.ok('result' in r);
    const lease = r.result as { token: string; holder: { user: string; client: string } };
    assert.deepEqual(lease.holder, { user: 'pricing-bot', client: 'api' });
    assert.equal((await refusal(a.rpc('lock.acquire', { key: 'quote:6/premium' }))).code, 150);
    assert.deepEqual(await executeApiCommand(sb, 'lock_acquire', { key: 'quote:6/premium', client: 'other' }), {
      error: { code: 150, message: 'lock held' },
    });
    const renewed = await executeApiCommand(sb, 'lock_renew', { key: 'quote:6/premium', token: lease.token, ttl_ms: 3000 });
    assert.ok('result' in renewed);
    const got = await executeApiCommand(sb, 'lock_get', { document: 'quote:6' });
    assert.ok('result' in got);
    assert.equal((got.result as { holders: Array<{ field: string }> }).holders[0]!.field, 'premium');
    assert.deepEqual(await executeApiCommand(sb, 'lock_renew', { key: 'quote:6/premium', token: 'x' }), {
      error: { code: 107, message: 'bad request: token must match pattern "^[0-9]{1,20}$"' },
    });
    const rel = await executeApiCommand(sb, 'lock_release', { key: 'quote:6/premium', token: lease.token });
    assert.ok('result' in rel);
    assert.deepEqual(await executeApiCommand(sb, 'lock_release', { key: 'quote:6/premium', token: lease.token }), {
      error: { code: 152, message: 'lock not held' },
    });

    // In-process.
    const l = await sb.lockAcquire('quote:6/notes', { user: 'svc' });
    assert.equal((await sb.lockGet('quote:6'))[0]!.token, l.token);
    await sb.lockRelease('quote:6/notes', l.token);
    assert.deepEqual(await sb.lockGet('quote:6'), []);
  });
}

test('locks off: the lock methods are not available (108) and reach no store', async (t) => {
  const [n] = await lockNodes(t, 'memory', 1, {
    locks: { enabled: false },
    channel: { namespaces: [{ name: 'quote', allow_subscribe_for_client: true }] },
  });
  const a = await connectedClient(t, n!, 'alice');
  assert.equal((await refusal(a.rpc('lock.acquire', { key: 'quote:1/a' }))).code, 108);
  assert.deepEqual(await executeApiCommand(n!.sb, 'lock_acquire', { key: 'quote:1/a' }), {
    error: { code: 108, message: 'not available' },
  });
});

test('memory: a Protobuf client locks with JSON bytes, and its fenced publication is checked', async (t) => {
  const [n] = await lockNodes(t, 'memory', 1);
  const token = await mintToken(n!.secret, { sub: 'pb-user' });
  const c = new ProtobufCentrifuge(n!.ws, { websocket: BrowserLikeWebSocket, token, timeout: 5000 });
  t.after(() => c.disconnect());
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  const sub = c.newSubscription('quote:pb');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const l = JSON.parse(Buffer.from((await c.rpc('lock.acquire', bytes({ key: 'quote:pb/premium' }))).data as Uint8Array).toString('utf8'));
  assert.equal(l.holder.user, 'pb-user');
  await c.publish('quote:pb', bytes({ premium: 1, $fence: { key: 'quote:pb/premium', token: l.token } }));
  const old = String(BigInt(l.token) - 1n);
  assert.equal((await refusal(c.publish('quote:pb', bytes({ premium: 2, $fence: { key: 'quote:pb/premium', token: old } })))).code, 151);
  assert.equal((await refusal(c.rpc('lock.acquire', new Uint8Array([0x7b])))).code, 107);
});
