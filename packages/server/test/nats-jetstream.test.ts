/**
 * The JetStream facts the JetStream history store (engine.nats.history
 * "jetstream", src/engine/nats/jetstream.ts; docs/SCALING.md, "NATS") rests
 * on, checked on a real nats-server (the version on this machine) through
 * its JSON API. When one of them stops holding (a newer server), this file
 * fails and the design is due again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, createInbox, headers, type Msg, type NatsConnection } from 'nats';
import { jsApi, natsClient, OwnNats } from './helpers/nats.js';
import type { TestContextLike } from './helpers/scope.js';
import { until } from './helpers/wait.js';

async function jsPublish(nc: NatsConnection, subject: string, data: string, h: Record<string, string | number> = {}): Promise<any> {
  const hh = headers();
  for (const [k, v] of Object.entries(h)) hh.set(k, String(v));
  return (await nc.request(subject, data, { timeout: 2000, headers: hh })).json<any>();
}

async function directGet(nc: NatsConnection, stream: string, body: unknown): Promise<Msg> {
  return nc.request(`$JS.API.DIRECT.GET.${stream}`, JSON.stringify(body), { timeout: 2000 });
}

async function server(t: TestContextLike): Promise<[NatsConnection, OwnNats]> {
  const s = await OwnNats.start(t);
  return [await natsClient(t, s.url), s];
}

const HIST = { subjects: ['h.>'], storage: 'memory', allow_direct: true, duplicate_window: 60e9 };

test('JetStream facts: one stream numbers messages across subjects (channel a gets 1, 3, 4), so a channel offset travels in a header', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.all', { name: 'all', ...HIST });
  const seqs = [];
  for (const ch of ['a', 'b', 'a', 'a']) seqs.push((await jsPublish(nc, `h.${ch}`, 'x', { 'Sb-Offset': 1 })).seq);
  assert.deepEqual(seqs, [1, 2, 3, 4]);
  // Stored headers come back with the message, with the stream's own.
  const last = await directGet(nc, 'all', { last_by_subj: 'h.a' });
  assert.equal(last.headers?.get('Sb-Offset'), '1');
  assert.equal(last.headers?.get('Nats-Sequence'), '4');
  assert.equal(last.headers?.get('Nats-Subject'), 'h.a');
  const empty = await directGet(nc, 'all', { last_by_subj: 'h.none' });
  assert.equal(empty.headers?.code, 404, 'an empty subject: 404');
  const prev = await directGet(nc, 'all', { seq: 3 });
  assert.equal(prev.headers?.get('Nats-Subject'), 'h.a');
});

test('JetStream facts: Nats-Expected-Last-Subject-Sequence orders racing publishers per subject (0 = the subject is empty; a stale one is refused with 10071)', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.race', { name: 'race', ...HIST });
  const E = 'Nats-Expected-Last-Subject-Sequence';
  assert.equal((await jsPublish(nc, 'h.a', '1', { [E]: 0 })).seq, 1);
  await jsPublish(nc, 'h.b', 'other subject', { [E]: 0 });
  const lost = await jsPublish(nc, 'h.a', 'also 1', { [E]: 0 });
  assert.equal(lost.error?.err_code, 10071, JSON.stringify(lost));
  assert.equal((await jsPublish(nc, 'h.a', '2', { [E]: 1 })).seq, 3, "another subject's message does not move a's last sequence");
  assert.equal((await jsPublish(nc, 'h.a', 'stale', { [E]: 1 })).error?.err_code, 10071);
});

test('JetStream facts: a JetStream publish reaches core subscribers of its subject even when the stream refuses it or it is a duplicate (live delivery is a separate send)', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.live', { name: 'live', ...HIST });
  const seen: string[] = [];
  nc.subscribe('h.>', { callback: (_e, m) => seen.push(m.string()) });
  await nc.flush();
  const E = 'Nats-Expected-Last-Subject-Sequence';
  await jsPublish(nc, 'h.a', 'stored', { [E]: 0, 'Nats-Msg-Id': 'k' });
  assert.ok((await jsPublish(nc, 'h.a', 'refused', { [E]: 0 })).error);
  assert.equal((await jsPublish(nc, 'h.a', 'stored', { 'Nats-Msg-Id': 'k' })).duplicate, true);
  await until('the core subscriber got all three', 2000, () => seen.length === 3);
  assert.deepEqual(seen, ['stored', 'refused', 'stored']);
});

test('JetStream facts: a duplicate Nats-Msg-Id is acknowledged with the first sequence, before the expected-sequence check (a retry with a stale one is still a duplicate)', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.idem', { name: 'idem', ...HIST });
  const E = 'Nats-Expected-Last-Subject-Sequence';
  const first = await jsPublish(nc, 'h.a', 'x', { [E]: 0, 'Nats-Msg-Id': 'h.a k1' });
  await jsPublish(nc, 'h.a', 'y', { [E]: 1 });
  const again = await jsPublish(nc, 'h.a', 'x', { [E]: 0, 'Nats-Msg-Id': 'h.a k1' });
  assert.deepEqual([first.seq, again.seq, again.duplicate], [1, 1, true]);
  // The id is per stream, not per subject: the store puts the subject into it.
  assert.equal((await jsPublish(nc, 'h.b', 'x', { 'Nats-Msg-Id': 'h.a k1' })).duplicate, true);
});

test('JetStream facts: a recreated stream numbers from 1 again, so only its name tells it apart: Nats-Expected-Stream refuses with 10060, and two streams cannot share subjects (10065)', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.one', { name: 'one', ...HIST });
  await jsPublish(nc, 'h.a', 'x');
  await jsApi(nc, 'STREAM.DELETE.one');
  await jsApi(nc, 'STREAM.CREATE.two', { name: 'two', ...HIST });
  assert.equal((await jsPublish(nc, 'h.a', 'y')).seq, 1, 'numbering starts again');
  assert.equal((await jsPublish(nc, 'h.a', 'z', { 'Nats-Expected-Stream': 'one' })).error?.err_code, 10060);
  const overlap = await jsApi(nc, 'STREAM.CREATE.three', { name: 'three', ...HIST });
  assert.equal(overlap.error?.err_code, 10065);
  assert.deepEqual((await jsApi(nc, 'STREAM.NAMES', { subject: 'h.>' })).streams, ['two'], 'found by its subjects');
});

test('JetStream facts: max_msgs_per_subject trims each subject alone; a purge with a filter and a sequence drops only that subject’s older messages', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.trim', { name: 'trim', ...HIST, max_msgs_per_subject: 3 });
  for (let i = 0; i < 5; i++) await jsPublish(nc, 'h.a', String(i));
  await jsPublish(nc, 'h.b', 'b');
  const marker = await jsPublish(nc, 'h.a', 'marker');
  let info = await jsApi(nc, 'STREAM.INFO.trim', { subjects_filter: '>' });
  assert.deepEqual(info.state.subjects, { 'h.a': 3, 'h.b': 1 });
  const purged = await jsApi(nc, 'STREAM.PURGE.trim', { filter: 'h.a', seq: marker.seq });
  assert.equal(purged.purged, 2);
  info = await jsApi(nc, 'STREAM.INFO.trim', { subjects_filter: '>' });
  assert.deepEqual(info.state.subjects, { 'h.a': 1, 'h.b': 1 });
});

test('JetStream facts: max_age empties a subject (its position is gone: a new epoch), the stream stays; the duplicate window may not be longer', async (t) => {
  const [nc] = await server(t);
  const refused = await jsApi(nc, 'STREAM.CREATE.old', { name: 'old', ...HIST, max_age: 300e6 });
  assert.match(refused.error?.description, /duplicates window can not be larger then max age/, 'the store clamps its window to max_age');
  await jsApi(nc, 'STREAM.CREATE.old', { name: 'old', ...HIST, max_age: 300e6, duplicate_window: 300e6 });
  await jsPublish(nc, 'h.a', 'x');
  await until('the message to age out', 5000, async () => (await jsApi(nc, 'STREAM.INFO.old')).state.messages === 0);
  assert.equal((await directGet(nc, 'old', { last_by_subj: 'h.a' })).headers?.code, 404);
  assert.equal((await jsPublish(nc, 'h.a', 'y', { 'Nats-Expected-Last-Subject-Sequence': 0 })).seq, 2);
});

test('JetStream facts: a memory stream is gone after a nats-server restart (requests find no responders); a file stream keeps its messages and sequences', async (t) => {
  const [nc0, s] = await server(t);
  await jsApi(nc0, 'STREAM.CREATE.mem', { name: 'mem', ...HIST, subjects: ['m.>'] });
  await jsApi(nc0, 'STREAM.CREATE.disk', { name: 'disk', ...HIST, subjects: ['d.>'], storage: 'file' });
  await jsPublish(nc0, 'm.a', 'x');
  await jsPublish(nc0, 'd.a', 'x');
  await nc0.close();
  await s.stop();
  await s.start();
  const nc = await connect({ servers: s.url });
  t.after(() => nc.close());
  await assert.rejects(jsPublish(nc, 'm.a', 'y'), /503|no responders/i);
  assert.deepEqual((await jsApi(nc, 'STREAM.NAMES')).streams, ['disk']);
  assert.equal((await jsPublish(nc, 'd.a', 'y')).seq, 2);
});

test('JetStream facts: an ephemeral consumer filtered to one subject hands over its messages in one batch, each naming its stream sequence and what is left in its reply subject', async (t) => {
  const [nc] = await server(t);
  await jsApi(nc, 'STREAM.CREATE.batch', { name: 'batch', ...HIST });
  for (const ch of ['a', 'b', 'a', 'b', 'a']) await jsPublish(nc, `h.${ch}`, ch);
  const made = await jsApi(nc, 'CONSUMER.CREATE.batch', {
    stream_name: 'batch',
    config: { deliver_policy: 'all', filter_subject: 'h.a', ack_policy: 'none', inactive_threshold: 10e9, mem_storage: true },
  });
  const inbox = createInbox();
  const got: string[][] = [];
  const sub = nc.subscribe(inbox, {
    callback: (_e, m) => {
      if (m.headers && m.headers.code >= 400) return sub.unsubscribe();
      got.push(m.reply!.split('.'));
    },
  });
  nc.publish(`$JS.API.CONSUMER.MSG.NEXT.batch.${made.name}`, JSON.stringify({ batch: 10, no_wait: true }), { reply: inbox });
  await until('the batch', 2000, () => sub.isClosed());
  // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
  assert.deepEqual(
    got.map((r) => [r[0], r[1], r[2], r[5], r[8]]),
    [
      ['$JS', 'ACK', 'batch', '1', '2'],
      ['$JS', 'ACK', 'batch', '3', '1'],
      ['$JS', 'ACK', 'batch', '5', '0'],
    ],
  );
});
