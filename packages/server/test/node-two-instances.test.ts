/**
 * Two Switchboard nodes in one process (an app embedding two, or tests)
 * keep their own transport counters: bytes and frames one node writes are
 * not counted by the other.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawClient } from './helpers/raw.js';
import { mintToken } from './helpers/tokens.js';
import { waitFor } from './helpers/wait.js';
import { SECRET, embedded } from './helpers/embedded.js';
import type { Switchboard } from '../src/node.js';

const CONFIG = { channel: { without_namespace: { allow_subscribe_for_client: true } } };

async function counter(sb: Switchboard, name: 'bytesOut' | 'framesOut'): Promise<number> {
  sb.collectMetrics();
  const m = await sb.metrics[name].get();
  return m.values.reduce((s, v) => s + v.value, 0);
}

test('bytes and frames written by one node are not counted by another in the same process', async (t) => {
  const a = await embedded(t, CONFIG);
  const b = await embedded(t, CONFIG);
  const bBytesBefore = await counter(b.sb, 'bytesOut');
  const bFramesBefore = await counter(b.sb, 'framesOut');
  const aBytesBefore = await counter(a.sb, 'bytesOut');

  const c = await RawClient.open(t, a);
  await c.connect(await mintToken(SECRET, { sub: 'u' }));
  const sub = await c.command('subscribe', { channel: 'news' });
  assert.ok(sub.subscribe, 'subscribed');
  const payload = { text: 'y'.repeat(1000) };
  for (let i = 0; i < 20; i++) {
    const got = waitFor(c, 'message', { ms: 5000, filter: (m: any) => m.push?.pub !== undefined });
    await a.sb.publish('news', { ...payload, i });
    await got;
  }

  const aBytes = (await counter(a.sb, 'bytesOut')) - aBytesBefore;
  assert.ok(aBytes > 20 * 1000, `node a counted what it wrote (${aBytes} bytes)`);
  assert.equal((await counter(b.sb, 'bytesOut')) - bBytesBefore, 0, 'node b wrote nothing and counts nothing');
  assert.equal((await counter(b.sb, 'framesOut')) - bFramesBefore, 0);
});
