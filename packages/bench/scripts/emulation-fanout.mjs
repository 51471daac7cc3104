// Fan-out through one `switchboard serve` process to N raw subscribers per transport, measured in
// one run: server CPU (utime+stime from /proc, Linux) and wall time until every client has all M
// publications (published through the HTTP API, 50 at a time). Build first (`npm run build`), then:
//   N=200 M=1000 ORDER=websocket,http_stream,sse nice -n 10 node packages/bench/scripts/emulation-fanout.mjs
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
const SERVER = fileURLToPath(new URL('../../server/', import.meta.url));
const require = createRequire(join(SERVER, 'package.json'));
const CONFIG = join(tmpdir(), `switchboard-emulation-fanout-${process.pid}.json`);
const WebSocket = require('ws');
const N = Number(process.env.N ?? 200), M = Number(process.env.M ?? 1000);
const PORT = 18000 + Math.floor(Math.random() * 1000);
const SECRET = 'bench-secret-0123456789abcdef0123456789';
writeFileSync(CONFIG, JSON.stringify({
  http_server: { port: PORT, address: '127.0.0.1' }, log: { level: 'error' },
  client: { token: { hmac_secret_key: SECRET }, allowed_origins: ['*'], queue_max_size: 10485760 },
  http_api: { insecure: true }, http_stream: { enabled: true }, sse: { enabled: true },
  channel: { without_namespace: { allow_subscribe_for_client: true } },
}));
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = (sub) => { const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64({ sub }); return `${h}.${p}.${createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url')}`; };
const srv = spawn(process.execPath, [join(SERVER, 'dist/src/cli.js'), 'serve', '--config', CONFIG], { stdio: 'ignore' });
const base = `http://127.0.0.1:${PORT}`;
for (let i = 0; i < 100; i++) { try { if ((await fetch(`${base}/health`)).ok) break; } catch {} await new Promise((r) => setTimeout(r, 100)); }
const cpu = () => { const f = readFileSync(`/proc/${srv.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
function countPubs(text) { let n = 0, i = 0; while ((i = text.indexOf('"pub"', i)) !== -1) { n++; i += 5; } return n; }
async function clients(kind, ch) {
  const counts = new Array(N).fill(0); const closers = [];
  const cmds = (u) => JSON.stringify({ id: 1, connect: { token: token(u) } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: ch } });
  await Promise.all(counts.map(async (_, i) => {
    if (kind === 'websocket') {
      const ws = new WebSocket(`ws://127.0.0.1:${PORT}/connection/websocket`);
      await new Promise((r) => ws.on('open', r));
      let subscribed; const ok = new Promise((r) => (subscribed = r));
      ws.on('message', (d) => { const t = d.toString(); if (t.includes('"id":2')) subscribed(); counts[i] += countPubs(t); });
      ws.send(cmds(`w${i}`)); await ok; closers.push(() => ws.terminate());
    } else {
      const ac = new AbortController();
      const url = kind === 'sse' ? `${base}/connection/sse?cf_connect=${encodeURIComponent(JSON.stringify({ id: 1, connect: { token: token(`s${i}`) } }))}` : `${base}/connection/http_stream`;
      const res = await fetch(url, kind === 'sse' ? { signal: ac.signal } : { method: 'POST', body: cmds(`h${i}`), signal: ac.signal });
      const reader = res.body.getReader(); const dec = new TextDecoder();
      let subscribed; const ok = new Promise((r) => (subscribed = r));
      let sessionSent = false;
      (async () => { try { for (;;) { const { done, value } = await reader.read(); if (done) return; const t = dec.decode(value, { stream: true });
        if (kind === 'sse' && !sessionSent) { const m = /"session":"([^"]+)","node":"([^"]+)"/.exec(t); if (m) { sessionSent = true;
          await fetch(`${base}/emulation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: m[1], node: m[2], data: JSON.stringify({ id: 2, subscribe: { channel: ch } }) }) }); } }
        if (t.includes('"id":2')) subscribed(); counts[i] += countPubs(t); } } catch {} })();
      await ok; closers.push(() => ac.abort());
    }
  }));
  return { counts, close: () => closers.forEach((c) => c()) };
}
const results = {};
for (const kind of (process.env.ORDER ?? 'websocket,http_stream,sse').split(',')) {
  const ch = `bench-${kind}`; const cs = await clients(kind, ch);
  const c0 = cpu(), t0 = performance.now();
  const payload = { text: 'x'.repeat(200) };
  for (let i = 0; i < M; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => fetch(`${base}/api/publish`, { method: 'POST', body: JSON.stringify({ channel: ch, data: { i: i + k, ...payload } }) })));
  while (cs.counts.some((n) => n < M)) await new Promise((r) => setTimeout(r, 10));
  results[kind] = { wall_ms: Math.round(performance.now() - t0), server_cpu_ms: cpu() - c0 };
  cs.close(); await new Promise((r) => setTimeout(r, 500));
}
const ws = results.websocket ?? Object.values(results)[0];
for (const [k, r] of Object.entries(results)) console.log(`${k.padEnd(12)} N=${N} M=${M} wall ${r.wall_ms} ms  server CPU ${r.server_cpu_ms} ms  (CPU ratio vs websocket ${(r.server_cpu_ms / ws.server_cpu_ms).toFixed(2)})`);
srv.kill('SIGKILL');
unlinkSync(CONFIG);
