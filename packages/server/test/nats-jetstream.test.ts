/**
 * Why history is not kept in JetStream (docs/SCALING.md, "NATS"): the facts
 * the decision rests on, checked on a real nats-server with JetStream (the
 * version on this machine) through its JSON API. When one of them stops
 * holding (a newer server), this file fails and the decision is due again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, headers, type NatsConnection } from 'nats';
import { OwnNats } from './helpers/nats.js';
import { until } from './helpers/wait.js';

async function api(nc: NatsConnection, subject: string, body: unknown = ''): Promise<any> {
  const r = await nc.request(`$JS.API.${subject}`, body === '' ? '' : JSON.stringify(body), { timeout: 2000 });
  return r.json<any>();
}

async function jsPublish(nc: NatsConnection, subject: string, data: string, msgId?: string): Promise<any> {
  const h = headers();
  if (msgId) h.set('Nats-Msg-Id', msgId);
  return (await nc.request(subject, data, { timeout: 2000, headers: h })).json<any>();
}

test('JetStream facts: one stream for all channels numbers messages across channels, so a channel offset needs a stream per channel', async (t) => {
  const server = await OwnNats.start(t);
  const nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  await api(nc, 'STREAM.CREATE.all', { name: 'all', subjects: ['h.>'], storage: 'memory' });
  const seqs = [];
  for (const ch of ['a', 'b', 'a', 'a']) seqs.push((await jsPublish(nc, `h.${ch}`, 'x')).seq);
  assert.deepEqual(seqs, [1, 2, 3, 4]);
  // Channel a's publications are 1, 3, 4: as offsets the SDK and the hub would see a gap after 1.
});

test('JetStream facts: a publish to a channel without its stream is refused (the stream is one more request, not atomic with it)', async (t) => {
  const server = await OwnNats.start(t);
  const nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  await assert.rejects(jsPublish(nc, 'h.fresh', 'x'), /no responders|503/i);
  await api(nc, 'STREAM.CREATE.fresh', { name: 'fresh', subjects: ['h.fresh'], storage: 'memory', max_msgs: 2 });
  const acks = [];
  for (let i = 0; i < 3; i++) acks.push(await jsPublish(nc, 'h.fresh', String(i)));
  assert.deepEqual(
    acks.map((a) => a.seq),
    [1, 2, 3],
  );
  const info = await api(nc, 'STREAM.INFO.fresh');
  assert.deepEqual([info.state.first_seq, info.state.last_seq, info.state.messages], [2, 3, 2], 'max_msgs trims, sequences go on');
});

test('JetStream facts: a duplicate Nats-Msg-Id is acknowledged with the first sequence (idempotency would hold)', async (t) => {
  const server = await OwnNats.start(t);
  const nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  await api(nc, 'STREAM.CREATE.idem', { name: 'idem', subjects: ['h.idem'], storage: 'memory', duplicate_window: 60e9 });
  const first = await jsPublish(nc, 'h.idem', 'x', 'k1');
  await jsPublish(nc, 'h.idem', 'y');
  const again = await jsPublish(nc, 'h.idem', 'x', 'k1');
  assert.equal(first.seq, 1);
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, 1, 'the duplicate names the first publication');
});

test('JetStream facts: a stream outlives its messages (max_age) and nothing expires the stream itself: one stream per channel name ever used stays', async (t) => {
  const server = await OwnNats.start(t);
  const nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  await api(nc, 'STREAM.CREATE.old', { name: 'old', subjects: ['h.old'], storage: 'memory', max_age: 300e6 });
  await jsPublish(nc, 'h.old', 'x');
  await jsPublish(nc, 'h.old', 'y');
  await until('the messages to age out', 5000, async () => (await api(nc, 'STREAM.INFO.old')).state.messages === 0);
  const info = await api(nc, 'STREAM.INFO.old');
  assert.equal(info.state.last_seq, 2, 'the position stays (good for the epoch and offset)');
  assert.ok(info.created, 'the stream is still there');
  const names = await api(nc, 'STREAM.NAMES');
  assert.deepEqual(names.streams, ['old']);
});
