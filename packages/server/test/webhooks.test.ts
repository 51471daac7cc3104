/**
 * Webhooks on one node (memory engine), end to end: a real client connects,
 * subscribes, unsubscribes and leaves; a real HTTP receiver verifies every
 * delivery's HMAC signature. Retries after 5xx keep the event id; a receiver
 * that is down fills a bounded outbox (counted) while fan-out goes on.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import type { Switchboard } from '../src/node.js';
import { WebhookHeaders, signWebhook, verifyWebhook } from '../src/webhooks/sign.js';
import { SECRET, embedded } from './helpers/embedded.js';
import { freePort } from './helpers/net.js';
import { RawClient } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { until, waitFor } from './helpers/wait.js';
import { WebhookReceiver } from './helpers/webhook-receiver.js';

const HOOK_SECRET = 'webhook-test-secret';
const ALL = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'];

function config(endpoints: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    channel: {
      without_namespace: { allow_subscribe_for_client: true },
      namespaces: [{ name: 'chat', allow_subscribe_for_client: true }],
    },
    webhooks: { secret: HOOK_SECRET, retry_min_delay: '50ms', retry_max_delay: '200ms', poll_interval: '100ms', endpoints, ...extra },
  };
}

async function metric(sb: Switchboard, name: string, labels: Record<string, string>): Promise<number> {
  const m = await sb.metrics.registry.getSingleMetric(name)!.get();
  return m.values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((s, v) => s + v.value, 0);
}

test('signature: sha256 HMAC over "<timestamp>.<body>"; verify refuses a changed body, an old timestamp, another key', () => {
  const body = '{"id":"1"}';
  const ts = Math.floor(Date.now() / 1000);
  const sig = signWebhook('k', ts, body);
  assert.equal(sig, 'sha256=' + createHmac('sha256', 'k').update(`${ts}.${body}`).digest('hex'));
  assert.equal(verifyWebhook('k', body, sig, String(ts)), true);
  assert.equal(verifyWebhook('k', body + ' ', sig, String(ts)), false);
  assert.equal(verifyWebhook('other', body, sig, String(ts)), false);
  assert.equal(verifyWebhook('k', body, signWebhook('k', ts - 3600, body), String(ts - 3600)), false, 'replayed an hour later');
  assert.equal(verifyWebhook('k', body, undefined, String(ts)), false);
});

test('connect, subscribe, occupied, unsubscribe, vacated, disconnect: signed, one id each, filtered by namespace', async (t) => {
  const all = await WebhookReceiver.start(t, HOOK_SECRET);
  const chatOnly = await WebhookReceiver.start(t, 'chat-secret');
  const node = await embedded(
    t,
    config([
      { name: 'all', url: all.url, events: ALL },
      { name: 'chat', url: chatOnly.url, events: ['subscribe', 'channel_occupied'], namespaces: ['chat'], secret: 'chat-secret' },
    ]),
  );
  const c = await RawClient.open(t, node);
  const connected = await c.connect(await mintToken(SECRET, { sub: 'alice' }));
  const client = connected.client as string;
  assert.ok((await c.command('subscribe', { channel: 'news' })).subscribe);
  assert.ok((await c.command('subscribe', { channel: 'chat:1' })).subscribe);
  await c.command('unsubscribe', { channel: 'news' });
  const types = (): string[] => all.events.map((e) => `${e.type}${e.channel ? ' ' + e.channel : ''}`).sort();
  await until('events up to the unsubscribe arrive', 10_000, () => all.of('channel_vacated').length === 1);
  c.ws.close();
  // Leaving ends the remaining subscription too: unsubscribe and vacated for chat:1.
  await until('disconnect, and chat:1 left', 10_000, () => all.of('disconnect').length === 1 && all.of('channel_vacated').length === 2);
  assert.deepEqual(types(), [
    'channel_occupied chat:1',
    'channel_occupied news',
    'channel_vacated chat:1',
    'channel_vacated news',
    'connect',
    'disconnect',
    'subscribe chat:1',
    'subscribe news',
    'unsubscribe chat:1',
    'unsubscribe news',
  ]);
  for (const e of all.events) {
    assert.equal(e.node, node.sb.nodeId);
    if (e.type.startsWith('channel_')) assert.equal(e.client, undefined);
    else assert.deepEqual([e.client, e.user], [client, 'alice'], `${e.type} names the client and user`);
  }
  assert.equal(new Set(all.events.map((e) => e.id)).size, all.events.length, 'an id per event');
  assert.ok(all.requests.every((r) => r.signatureOk && r.headers[WebhookHeaders.eventId] === r.event.id));
  assert.ok(all.requests.every((r) => r.headers[WebhookHeaders.event] === r.event.type));
  // The chat endpoint: its own secret, only chat: channels, only the events it asked for.
  await until('chat endpoint events', 10_000, () => chatOnly.events.length === 2);
  assert.deepEqual(chatOnly.events.map((e) => `${e.type} ${e.channel}`).sort(), ['channel_occupied chat:1', 'subscribe chat:1']);
  assert.ok(chatOnly.requests.every((r) => r.signatureOk));
});

test('a 5xx is retried with backoff under the same event id until the receiver takes it', async (t) => {
  const rcv = await WebhookReceiver.start(t, HOOK_SECRET);
  rcv.respond = (_e, n) => (n < 3 ? 500 : 200);
  const node = await embedded(t, config([{ name: 'flaky', url: rcv.url, events: ['connect'] }]));
  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: 'bob' }));
  const ev = await waitFor(rcv, 'event', { ms: 15_000 });
  assert.equal(rcv.requests.length, 4, 'three refusals, then the delivery');
  assert.deepEqual(
    rcv.requests.map((r) => r.status),
    [500, 500, 500, 200],
  );
  assert.equal(new Set(rcv.requests.map((r) => r.event.id)).size, 1, 'the same event id on every attempt');
  assert.equal(new Set(rcv.requests.map((r) => r.body)).size, 1, 'the same body');
  assert.equal(ev.user, 'bob');
  assert.equal(await metric(node.sb, 'switchboard_webhook_deliveries_total', { endpoint: 'flaky', result: 'retry' }), 3);
  await until(
    'the delivery counted once the node read the answer',
    5000,
    async () => (await metric(node.sb, 'switchboard_webhook_deliveries_total', { endpoint: 'flaky', result: 'ok' })) === 1,
  );
  await until('outbox empty after the ack', 5000, async () => (await node.sb.engine.outbox!.size()) === 0);
});

test('a 4xx other than 408/429 is final: given up after one attempt, counted, removed from the outbox', async (t) => {
  const rcv = await WebhookReceiver.start(t, HOOK_SECRET);
  rcv.respond = () => 400;
  const node = await embedded(t, config([{ name: 'strict', url: rcv.url, events: ['connect'] }]));
  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: 'carol' }));
  await waitFor(rcv, 'request', { ms: 10_000 });
  await until(
    'counted as failed',
    5000,
    async () => (await metric(node.sb, 'switchboard_webhook_deliveries_total', { result: 'failed' })) === 1,
  );
  await until('outbox empty', 5000, async () => (await node.sb.engine.outbox!.size()) === 0);
  assert.equal(rcv.requests.length, 1);
});

test('receiver down: the outbox stays bounded, drops are counted, and fan-out to subscribers is unaffected', async (t) => {
  const deadPort = await freePort(); // nothing listens there
  const node = await embedded(
    t,
    config([{ name: 'down', url: `http://127.0.0.1:${deadPort}/hook`, events: ['subscribe', 'unsubscribe'] }], {
      outbox_max_size: 5,
      retry_min_delay: '10s',
    }),
  );
  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: 'dave' }));
  for (let i = 0; i < 30; i++) assert.ok((await c.command('subscribe', { channel: `ch${i}` })).subscribe, `subscribed ch${i}`);
  await until('every subscribe event accounted for', 10_000, async () => {
    const queued = await metric(node.sb, 'switchboard_webhook_events_total', { event: 'subscribe', result: 'queued' });
    const dropped = await metric(node.sb, 'switchboard_webhook_events_total', { event: 'subscribe', result: 'dropped_full' });
    return queued + dropped === 30;
  });
  assert.equal(await metric(node.sb, 'switchboard_webhook_events_total', { event: 'subscribe', result: 'queued' }), 5);
  assert.equal(await metric(node.sb, 'switchboard_webhook_events_total', { event: 'subscribe', result: 'dropped_full' }), 25);
  assert.equal(await node.sb.engine.outbox!.size(), 5, 'bounded');
  await until(
    'delivery attempts fail and are counted',
    10_000,
    async () => (await metric(node.sb, 'switchboard_webhook_deliveries_total', { endpoint: 'down', result: 'retry' })) >= 1,
  );
  // Fan-out goes on as if there were no webhooks.
  for (let i = 0; i < 30; i++) {
    const got = waitFor(c, 'message', { ms: 5000, filter: (m: any) => m.push?.channel === `ch${i}` && m.push?.pub });
    await node.sb.publish(`ch${i}`, { i });
    assert.deepEqual((await got).push.pub.data, { i });
  }
  const text = await node.sb.metrics.registry.metrics();
  assert.match(text, /switchboard_webhook_outbox_size 5/);
});

test('no endpoint configured: no webhook machinery, no outbox entries', async (t) => {
  const node = await embedded(t, config([]));
  const c = await RawClient.open(t, node);
  await c.connect(await mintToken(SECRET, { sub: 'erin' }));
  assert.ok((await c.command('subscribe', { channel: 'news' })).subscribe);
  assert.equal(await node.sb.engine.outbox!.size(), 0);
  assert.equal(await metric(node.sb, 'switchboard_webhook_events_total', {}), 0);
});

test('an endpoint without any secret, or with a URL that is not http(s), is refused with a clear error', () => {
  return import('../src/node.js').then(({ Switchboard }) => {
    assert.throws(
      () =>
        new Switchboard({
          config: { log: { level: 'error' }, webhooks: { endpoints: [{ name: 'x', url: 'http://127.0.0.1:1/', events: ['connect'] }] } },
        }),
      /webhooks\.endpoints\.0\.secret: needed to sign deliveries/,
    );
    assert.throws(
      () =>
        new Switchboard({
          config: {
            log: { level: 'error' },
            webhooks: { secret: 's', endpoints: [{ name: 'x', url: 'ftp://example.com/', events: ['connect'] }] },
          },
        }),
      /webhooks\.endpoints\.0\.url: must be an http:\/\/ or https:\/\/ URL/,
    );
  });
});
