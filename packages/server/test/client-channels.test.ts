/**
 * Channels and permissions with the real `centrifuge` SDK: presence and
 * join/leave, client publish allowed or 103 by namespace, unknown namespace
 * 102, subscription tokens through getToken, server-side subscriptions from
 * the token's `channels` claim, config templates and the personal channel.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { connectedClient, makeClient, subscribe } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken, nowSec } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());
let s: RunningServer;

before(async () => {
  s = await startServer(S, {
    client: {
      subscribe_to_user_personal_channel: { enabled: true, personal_channel_namespace: 'personal' },
      server_side_subscriptions: ['global', 'user:{user}'],
      expired_close_delay: '200ms',
    },
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [
        {
          name: 'room',
          presence: true,
          join_leave: true,
          force_push_join_leave: true,
          allow_subscribe_for_client: true,
          allow_presence_for_subscriber: true,
        },
        { name: 'chat', allow_subscribe_for_client: true, allow_publish_for_subscriber: true, history_size: 10, history_ttl: '60s' },
        { name: 'readonly', allow_subscribe_for_client: true },
        // No allow_subscribe_for_client: only a subscription token lets a client in.
        { name: 'secret', presence: true },
        { name: 'personal' },
        { name: 'user' },
        { name: 'project' },
      ],
    },
  });
});

/** Subscribes and resolves with the subscription once subscribed. */
const subscribeTo = async (c: Centrifuge, channel: string, opts = {}) => (await subscribe(c, channel, opts)).sub;

test('presence, presence_stats and join/leave pushes', async (t) => {
  const ch = 'room:lobby';
  const a = await connectedClient(t, s, 'ann', { info: { name: 'Ann' } });
  const subA = await subscribeTo(a, ch);
  const joins = collect(subA, 'join');
  const leaves = collect(subA, 'leave');

  const b = await connectedClient(t, s, 'bob', { info: { name: 'Bob' } });
  const b2 = await connectedClient(t, s, 'bob');
  const subB = await subscribeTo(b, ch);
  await subscribeTo(b2, ch);
  await joins.until(2);
  assert.deepEqual(joins.items.map((j) => j.info.user).sort(), ['bob', 'bob']);
  const bobJoin = joins.items.find((j) => j.info.connInfo !== undefined)!;
  assert.deepEqual(bobJoin.info.connInfo, { name: 'Bob' });

  const p = await subA.presence();
  const entries = Object.values(p.clients);
  assert.equal(entries.length, 3);
  assert.deepEqual(entries.map((e) => e.user).sort(), ['ann', 'bob', 'bob']);
  assert.deepEqual(entries.find((e) => e.user === 'ann')!.connInfo, { name: 'Ann' });
  const stats = await subA.presenceStats();
  assert.deepEqual(stats, { numClients: 3, numUsers: 2 });

  // The same through the server API.
  const api = await s.call('presence_stats', { channel: ch });
  assert.deepEqual(api, { result: { num_clients: 3, num_users: 2 } });
  const apiPresence = (await s.call('presence', { channel: ch })) as {
    result: { presence: Record<string, { user: string; client: string; conn_info?: unknown }> };
  };
  assert.equal(Object.keys(apiPresence.result.presence).length, 3);
  for (const [id, info] of Object.entries(apiPresence.result.presence)) assert.equal(info.client, id);

  // Leave on unsubscribe and on disconnect.
  subB.unsubscribe();
  const l1 = await leaves.until(1);
  assert.equal(l1[0].info.user, 'bob');
  b2.disconnect();
  await leaves.until(2);
  assert.deepEqual(await subA.presenceStats(), { numClients: 1, numUsers: 1 });
  assert.equal(joins.items.length, 2, 'no extra joins');
});

test('presence is refused to non-subscribers (103) and unavailable where off (108)', async (t) => {
  const c = await connectedClient(t, s, 'carl');
  const raw = await RawClient.open(t, s);
  await raw.connect(await mintToken(s.secret, { sub: 'carl' }));
  assert.equal((await raw.command('presence', { channel: 'room:lobby' })).error.code, 103);
  assert.equal((await raw.command('presence', { channel: 'chat:x' })).error.code, 108);
  const sub = await subscribeTo(c, 'chat:x');
  await assert.rejects(sub.presence(), (e: { code: number }) => e.code === 108);
});

test('client publish is allowed in one namespace and refused with 103 in another', async (t) => {
  const a = await connectedClient(t, s, 'ann', { info: { name: 'Ann' } });
  const b = await connectedClient(t, s, 'bob');
  const subA = await subscribeTo(a, 'chat:general');
  const subB = await subscribeTo(b, 'chat:general');
  const got = waitFor(subB, 'publication');
  await subA.publish({ text: 'hi' });
  const pub = await got;
  assert.deepEqual(pub.data, { text: 'hi' });
  assert.equal(pub.info.user, 'ann');
  assert.deepEqual(pub.info.connInfo, { name: 'Ann' });
  assert.equal(pub.offset, 1);

  const ro = await subscribeTo(a, 'readonly:feed');
  await assert.rejects(ro.publish({ text: 'no' }), (e: { code: number }) => e.code === 103);
  await assert.rejects(a.publish('readonly:feed', { text: 'no' }), (e: { code: number }) => e.code === 103);
  // allow_publish_for_subscriber: a non-subscriber cannot publish into chat either.
  const c = await connectedClient(t, s, 'carl');
  await assert.rejects(c.publish('chat:general', { text: 'no' }), (e: { code: number }) => e.code === 103);
  const h = await s.call('history', { channel: 'chat:general', limit: 10 });
  assert.equal((h.result as { publications: unknown[] }).publications.length, 1, 'refused publications are not stored');
});

test('subscribing to an unknown namespace is 102; a bad channel name is 107', async (t) => {
  const c = await connectedClient(t, s, 'dave');
  const sub = c.newSubscription('nope:thing');
  const unsubscribed = waitFor(sub, 'unsubscribed');
  sub.subscribe();
  const ctx = await unsubscribed;
  assert.equal(ctx.code, 102);
  assert.equal(sub.state, 'unsubscribed');
  await assert.rejects(c.publish('nope:thing', {}), (e: { code: number }) => e.code === 102);

  const raw = await RawClient.open(t, s);
  await raw.connect(await mintToken(s.secret, { sub: 'dave' }));
  assert.equal((await raw.command('subscribe', { channel: 'x'.repeat(300) })).error.code, 107);
  assert.equal((await raw.command('subscribe', { channel: '' })).error.code, 107);
  // The connection survives protocol errors.
  assert.ok((await raw.command('subscribe', { channel: 'fine' })).subscribe);
});

test('a channel that needs a subscription token: getToken on the subscription', async (t) => {
  const c = await connectedClient(t, s, 'erin');
  // Without a token: 103, the subscription stops.
  const denied = c.newSubscription('secret:plans');
  const unsub = waitFor(denied, 'unsubscribed');
  denied.subscribe();
  assert.equal((await unsub).code, 103);
  c.removeSubscription(denied);

  const asked: string[] = [];
  const sub = c.newSubscription('secret:plans', {
    getToken: async (ctx) => {
      asked.push(ctx.channel);
      return mintToken(s.secret, { sub: 'erin', channel: ctx.channel, info: { role: 'reader' }, exp: nowSec() + 3600 });
    },
  });
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  assert.deepEqual(asked, ['secret:plans']);
  const p = await s.call('presence', { channel: 'secret:plans' });
  const infos = Object.values((p.result as { presence: Record<string, { user: string; chan_info?: unknown }> }).presence);
  assert.equal(infos.length, 1);
  assert.deepEqual(infos[0]!.chan_info, { role: 'reader' }, 'info claim becomes chan_info');
  const got = waitFor(sub, 'publication');
  await s.call('publish', { channel: 'secret:plans', data: { n: 1 } });
  assert.deepEqual((await got).data, { n: 1 });
});

test('subscription tokens for another channel or another user are refused with 103', async (t) => {
  const c = await connectedClient(t, s, 'frank');
  for (const claims of [
    { sub: 'frank', channel: 'secret:other' },
    { sub: 'someone-else', channel: 'secret:mine' },
  ]) {
    const sub = c.newSubscription('secret:mine', { token: await mintToken(s.secret, claims) });
    const unsub = waitFor(sub, 'unsubscribed');
    sub.subscribe();
    assert.equal((await unsub).code, 103, JSON.stringify(claims));
    c.removeSubscription(sub);
  }
});

test('an expired subscription token gets 109 and the SDK fetches a new one; a short one is refreshed', async (t) => {
  const c = await connectedClient(t, s, 'gina');
  let calls = 0;
  const sub = c.newSubscription('secret:short', {
    token: await mintToken(s.secret, { sub: 'gina', channel: 'secret:short', exp: nowSec() - 5 }),
    getToken: async (ctx) => {
      calls++;
      // First a 2 s token (so the SDK refreshes it), then a long one.
      return mintToken(s.secret, { sub: 'gina', channel: ctx.channel, exp: nowSec() + (calls === 1 ? 2 : 3600) });
    },
  });
  const errors = collect(sub, 'error');
  const unsubscribed = collect(sub, 'unsubscribed');
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  await ok;
  assert.equal(calls, 1);
  assert.equal(errors.items[0]?.error.code, 109);
  // Past the 2 s token's expiry and the close delay: refreshed, still subscribed.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(calls, 2, 'sub_refresh through getToken');
  assert.equal(sub.state, 'subscribed');
  assert.equal(unsubscribed.items.length, 0);
  const got = waitFor(sub, 'publication');
  await s.call('publish', { channel: 'secret:short', data: { ok: true } });
  assert.deepEqual((await got).data, { ok: true });
});

test('server-side subscriptions: the channels claim, config templates and the personal channel', async (t) => {
  const token = await mintToken(s.secret, { sub: '42', channels: ['project:7', 'news'] });
  const c = makeClient(t, s, { token });
  const subscribed = collect(c, 'subscribed');
  const pubs = collect(c, 'publication');
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  await subscribed.until(5);
  assert.deepEqual(subscribed.items.map((x) => x.channel).sort(), ['global', 'news', 'personal:#42', 'project:7', 'user:42']);

  const channels = ['global', 'news', 'personal:#42', 'project:7', 'user:42'];
  for (const [i, channel] of channels.entries()) await s.call('publish', { channel, data: { i } });
  await pubs.until(channels.length);
  assert.deepEqual(
    pubs.items.map((p) => [p.channel, p.data.i]),
    channels.map((ch, i) => [ch, i]),
  );
  // Someone else's user channel does not reach this client.
  await s.call('publish', { channel: 'user:43', data: { i: 99 } });
  await s.call('publish', { channel: 'global', data: { i: 100 } });
  await pubs.until(channels.length + 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    pubs.items.slice(channels.length).map((p) => p.data.i),
    [100],
  );
});

test('a client cannot subscribe itself to another user\u2019s channel in a namespace that does not allow it', async (t) => {
  const c = await connectedClient(t, s, '42');
  const sub = c.newSubscription('user:43');
  const unsub = waitFor(sub, 'unsubscribed');
  sub.subscribe();
  assert.equal((await unsub).code, 103);
});
