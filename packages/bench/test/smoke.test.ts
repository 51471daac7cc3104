/**
 * Smoke test of the harness itself (not a benchmark): a small fan-out
 * through each system must be counted exactly, with nothing lost or doubled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { LoadGenerator } from '../src/load/generator.js';
import { Publisher, SeqBook } from '../src/load/publisher.js';
import { installExitHooks } from '../src/proc.js';
import { Progress } from '../src/progress.js';
import { runScenario } from '../src/scenarios.js';
import { SWITCHBOARD_CLI, systemByName, type SystemDef } from '../src/sut/systems.js';

installExitHooks();

async function fanout(sys: SystemDef, conns: number, rate: number, ms: number, workers: number): Promise<void> {
  const sut = await sys.start({});
  const load = new LoadGenerator({
    kind: sys.kind,
    url: sut.wsUrl,
    transports: sys.transports,
    conns,
    plan: { shared: ['smoke'] },
    workers,
    timeoutMs: 10_000,
  });
  const pub = new Publisher({ apiBase: sut.apiBase, apiKey: sut.apiKey }, new SeqBook());
  try {
    await load.start();
    const c = await load.connect();
    assert.equal(c.failed, 0, `connect errors: ${JSON.stringify(c.errors)}`);
    assert.equal(c.ok, conns);
    assert.equal(load.subs.get('smoke'), conns);
    await load.reset();
    const p = await pub.run([{ channels: ['smoke'], rate }], ms);
    assert.equal(p.errors, 0, p.errorSample);
    assert.ok(p.total >= (rate * ms) / 1000 - 1, `published ${p.total}`);
    const expected = load.expected(p.published);
    assert.equal(expected, p.total * conns);
    const r = await load.drain(expected, 3000, 10_000);
    assert.equal(r.unique, expected, 'every publication reaches every subscriber once');
    assert.equal(r.dup, 0);
    assert.equal(r.gaps, 0);
    assert.equal(r.hist.totalCount, expected);
    assert.ok(r.hist.maxValue < 5_000_000, `max latency ${r.hist.maxValue} µs`);
    assert.equal(r.openConns, conns);
  } finally {
    pub.close();
    await load.stop();
    await sut.stop();
  }
}

test('raw ws peer: 50 conns over 2 workers, 1 s at 50 pubs/s, lost = dup = 0', async () => {
  await fanout(systemByName('raw-ws'), 50, 50, 1000, 2);
});

test('socket.io peer (websocket): 20 conns, 1 s at 20 pubs/s, lost = dup = 0', async () => {
  await fanout(systemByName('socketio-ws'), 20, 20, 1000, 1);
});

test('switchboard: 50 conns over 2 workers, 1 s at 50 pubs/s, lost = dup = 0', async (t) => {
  if (!existsSync(SWITCHBOARD_CLI)) {
    t.skip(`server not built yet (${SWITCHBOARD_CLI} missing)`);
    return;
  }
  await fanout(systemByName('switchboard'), 50, 50, 1000, 2);
});

test('switchboard-protobuf: 50 Protobuf conns over 2 workers, 1 s at 50 pubs/s, lost = dup = 0', async (t) => {
  if (!existsSync(SWITCHBOARD_CLI)) {
    t.skip(`server not built yet (${SWITCHBOARD_CLI} missing)`);
    return;
  }
  await fanout(systemByName('switchboard-protobuf'), 50, 50, 1000, 2);
});

for (const system of ['switchboard', 'switchboard-protobuf'])
  test(`${system}: reconnect storm of 50 conns recovers from history, lost = dup = 0`, async (t) => {
    if (!existsSync(SWITCHBOARD_CLI)) {
      t.skip(`server not built yet (${SWITCHBOARD_CLI} missing)`);
      return;
    }
    const rows = await runScenario(
      systemByName(system),
      { type: 'reconnect', conns: 50, rate: 50, afterMs: 500 },
      { progress: new Progress(true) },
    );
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    assert.equal(r.status, 'ok', r.note);
    assert.ok((r.details?.published as number) > 50, 'published during the storm');
    assert.equal(r.lost, 0, r.note);
    assert.equal(r.dup, 0, r.note);
    assert.equal(r.details?.notRecovered, 0);
  });

test('switchboard: the real centrifuge client sees what the raw driver sees (10 clients, 20 pubs)', async (t) => {
  if (!existsSync(SWITCHBOARD_CLI)) {
    t.skip(`server not built yet (${SWITCHBOARD_CLI} missing)`);
    return;
  }
  const sut = await systemByName('switchboard').start({});
  const pub = new Publisher({ apiBase: sut.apiBase, apiKey: sut.apiKey }, new SeqBook());
  const clients: Centrifuge[] = [];
  try {
    const got: number[][] = [];
    for (let i = 0; i < 10; i++) {
      const c = new Centrifuge(sut.wsUrl, { websocket: WebSocket });
      const seen: number[] = [];
      got.push(seen);
      const sub = c.newSubscription('sanity');
      sub.on('publication', (ctx) => seen.push((ctx.data as { s: number }).s));
      const subscribed = new Promise<void>((resolve, reject) => {
        sub.once('subscribed', () => resolve());
        sub.once('error', (e) => reject(new Error(JSON.stringify(e))));
      });
      sub.subscribe();
      c.connect();
      clients.push(c);
      await subscribed;
    }
    const p = await pub.run([{ channels: ['sanity'], rate: 40 }], 500);
    assert.equal(p.errors, 0, p.errorSample);
    const want = Array.from({ length: p.total }, (_, i) => i + 1);
    const deadline = Date.now() + 5000;
    while (got.some((g) => g.length < want.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // The publisher keeps several requests in flight on separate sockets, so on a busy machine the
    // server may accept seq 3 before seq 2: the guarantee is that every client gets every publication
    // once, in the one order the server accepted them (the same for all clients).
    for (const g of got) {
      assert.deepEqual(
        [...g].sort((a, b) => a - b),
        want,
      );
      assert.deepEqual(g, got[0]);
    }
  } finally {
    for (const c of clients) c.disconnect();
    pub.close();
    await sut.stop();
  }
});
