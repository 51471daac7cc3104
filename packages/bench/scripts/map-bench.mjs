// Map subscriptions: a map of K keys with S subscribers on one node (memory engine).
// Measures memory per key (heap), snapshot time (subscribe → live, all pages, per subscriber,
// all subscribing at once) and live-update delivery latency (publish → received) p50/p99.
// The subscribers are raw WebSocket clients speaking the JSON protocol (the map flow the SDK
// walks: state pages, then live) in a child process, so only the server runs here.
//   node --expose-gc scripts/map-bench.mjs ../server/dist [keys] [subscribers] [updates]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const CHANNEL = 'board:1';

if (process.argv[2] === 'client') {
  const [url, n, pageSize] = [process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
  const snapshotMs = [];
  const latencies = [];
  let live = 0;
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url);
    let started = 0;
    let nextId = 2;
    let epoch = '';
    let offset = 0;
    let keys = 0;
    const page = (cursor) =>
      ws.send(JSON.stringify({ id: nextId++, subscribe: { channel: CHANNEL, type: 1, phase: 2, limit: pageSize, ...(cursor ? { cursor, epoch, offset } : {}) } }));
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, connect: {} })));
    ws.on('message', (buf) => {
      for (const line of buf.toString().split('\n')) {
        if (!line) continue;
        const m = JSON.parse(line);
        if (m.connect) {
          started = performance.now();
          page('');
        } else if (m.subscribe) {
          const r = m.subscribe;
          keys += r.state?.length ?? 0;
          if (r.phase === 2) {
            if (!epoch) ((epoch = r.epoch), (offset = r.offset));
            page(r.cursor);
          } else {
            snapshotMs.push(performance.now() - started);
            if (++live === n) process.send({ type: 'live', keys });
          }
        } else if (m.push?.pub) {
          const d = m.push.pub.data;
          if (d && d.sent) latencies.push(Date.now() - d.sent);
        } else if (m.error) {
          console.error('error', m.error);
        }
      }
    });
  }
  process.on('message', (msg) => {
    if (msg === 'report') process.send({ type: 'report', snapshotMs, latencies });
  });
} else {
  const dist = resolve(process.argv[2] ?? '../server/dist');
  const K = Number(process.argv[3] ?? 10_000);
  const S = Number(process.argv[4] ?? 1000);
  const U = Number(process.argv[5] ?? 200);
  const PAGE = 1000;
  const { Switchboard } = await import(`${dist}/src/node.js`);
  const sb = new Switchboard({
    config: {
      log: { level: 'error' },
      client: { insecure: true, channel_limit: 10, queue_max_size: 64 << 20 },
      channel: {
        namespaces: [
          { name: 'board', subscription_type: 'map', allow_subscribe_for_anonymous: true, map: { mode: 'persistent', max_page_size: PAGE, stream_size: 1000, subscribe_catch_up_timeout: '300s' } },
        ],
      },
    },
  });
  await sb.start();
  const server = createServer();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  const gc = globalThis.gc ?? (() => {});
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const value = (i) => ({ field: `f${i}`, value: i, by: 'agent-7', note: 'x'.repeat(40) });
  for (let i = 0; i < K; i++) await sb.mapPublish(CHANNEL, `key:${String(i).padStart(6, '0')}`, value(i));
  gc();
  const perKey = (process.memoryUsage().heapUsed - heap0) / K;
  const valueBytes = JSON.stringify(value(K)).length;

  const url = `ws://127.0.0.1:${server.address().port}/connection/websocket`;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const child = fork(fileURLToPath(import.meta.url), ['client', url, String(S), String(PAGE)]);
  const first = await new Promise((r) => child.on('message', r));
  const allLive = performance.now() - t0;
  const cpuSnap = process.cpuUsage(cpu0);
  // live updates: one every 10 ms, each carries its send time
  const cpu1 = process.cpuUsage();
  for (let u = 0; u < U; u++) {
    await sb.mapPublish(CHANNEL, `key:${String(u % K).padStart(6, '0')}`, { sent: Date.now(), u });
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const cpuLive = process.cpuUsage(cpu1);
  child.send('report');
  const rep = await new Promise((r) => child.on('message', (m) => m.type === 'report' && r(m)));
  const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  };
  console.log(
    JSON.stringify(
      {
        keys: K,
        subscribers: S,
        keysPerSnapshot: first.keys,
        heapBytesPerKey: Math.round(perKey),
        valueJsonBytes: valueBytes,
        snapshotMs: { p50: Math.round(pct(rep.snapshotMs, 50)), p99: Math.round(pct(rep.snapshotMs, 99)), allLiveMs: Math.round(allLive) },
        serverCpuSecondsForAllSnapshots: +((cpuSnap.user + cpuSnap.system) / 1e6).toFixed(2),
        liveUpdates: U,
        deliveries: rep.latencies.length,
        liveLatencyMs: { p50: pct(rep.latencies, 50), p99: pct(rep.latencies, 99), max: pct(rep.latencies, 100) },
        serverCpuMsPerUpdate: +((cpuLive.user + cpuLive.system) / 1000 / U).toFixed(2),
      },
      null,
      2,
    ),
  );
  child.kill();
  await sb.shutdown();
  server.close();
  process.exit(0);
}
