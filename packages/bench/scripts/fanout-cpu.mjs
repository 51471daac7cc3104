// CPU time per delivery of the fan-out hot path alone: hub.publish plus the
// node's flush pass over N real ws connections (their readers live in a
// child process, so only the server side is counted). Compares two builds:
//   node scripts/fanout-cpu.mjs ../server/dist [connections] [publications]
//   node scripts/fanout-cpu.mjs /tmp/base/packages/server/dist   (another commit's build)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';

if (process.argv[2] === 'client') {
  const [port, n] = [Number(process.argv[3]), Number(process.argv[4])];
  let open = 0;
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    ws.on('open', () => {
      if (++open === n) process.send('ready');
    });
    ws.on('message', () => {});
  }
} else {
  const dist = resolve(process.argv[2] ?? '../server/dist');
  const N = Number(process.argv[3] ?? 2000);
  const PUBS = Number(process.argv[4] ?? 400);
  const { Hub, Subscriber } = await import(`${dist}/src/hub/hub.js`);
  const { Writer } = await import(`${dist}/src/transport/writer.js`);
  const { Flusher } = await import(`${dist}/src/transport/flusher.js`);
  const { jsonCodec } = await import(`${dist}/src/protocol/json.js`);
  const flusher = new Flusher();
  const hub = new Hub();
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  let i = 0;
  wss.on('connection', (ws) => {
    const c = { id: `c${i}`, session: `s${i}`, user: '', codec: jsonCodec, writer: new Writer(ws, 1 << 30, flusher), insufficientState() {} };
    i++;
    hub.addSubscriber(new Subscriber(c, 'ch'));
  });
  await new Promise((r) => wss.on('listening', r));
  const child = fork(fileURLToPath(import.meta.url), ['client', String(wss.address().port), String(N)]);
  await new Promise((r) => child.on('message', r));
  const data = JSON.stringify({ x: 'y'.repeat(100) });
  const t0 = process.cpuUsage();
  for (let k = 1; k <= PUBS; k++) {
    hub.publish('ch', { offset: k, data, time: Date.now() });
    // one publication per turn: the flush pass runs in between, as under a steady publish rate
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }
  const d = process.cpuUsage(t0);
  console.log(`${dist}: ${((d.user + d.system) / 1000 / (N * PUBS)) * 1e6 | 0} ns CPU per delivery (${N} connections, ${PUBS} publications)`);
  child.kill();
  process.exit(0);
}
