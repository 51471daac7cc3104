#!/usr/bin/env node
// Scale-out measurements for docs/SCALING.md, run from the repo root after
// `npm run build`:
//
//   node docs/scaling/measure.mjs [--conns 2000] [--seconds 10] [--inflight 8]
//
// Same load for each setup: --conns raw WebSocket subscribers on one
// channel, one API publisher keeping --inflight publishes in flight for
// --seconds; deliveries/s = publications received by all subscribers / s.
// Setups: 1 node (memory engine), 1 node (Redis engine), 2 nodes (Redis,
// clients split, publisher alternates), `serve --workers 2` (Redis).
// Also: Redis round trips per publish (MONITOR lines from the node's
// connections vs from Lua) and RSS per idle subscribed connection.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';

const { values: opt } = parseArgs({
  options: {
    conns: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '8' },
    'idle-conns': { type: 'string', default: '5000' },
  },
});
const CONNS = Number(opt.conns);
const SECONDS = Number(opt.seconds);
const INFLIGHT = Number(opt.inflight);
const IDLE = Number(opt['idle-conns']);
const CLI = new URL('../../packages/server/dist/src/cli.js', import.meta.url).pathname;
const SECRET = 'measure-secret';
const KEY = 'measure-key';
const kids = [];
process.on('exit', () => kids.forEach((k) => k.kill('SIGKILL')));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function token(sub) {
  const h = b64({ alg: 'HS256', typ: 'JWT' });
  const p = b64({ sub });
  return `${h}.${p}.${createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url')}`;
}
function freePort() {
  return new Promise((r) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => r(port));
    });
  });
}
async function redisServer() {
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '20000'], { stdio: 'ignore' });
  kids.push(p);
  for (let i = 0; i < 100; i++) {
    try {
      if ((await redisCmd(port, 'PING')).includes('PONG')) break;
    } catch {}
    await sleep(50);
  }
  return { port, proc: p };
}
function redisCmd(port, ...args) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d;
      if (buf.endsWith('\r\n')) {
        s.end();
        resolve(buf);
      }
    });
    s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
  });
}
async function node(engine, redisPort, args = []) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'measure-'));
  const cfg = {
    log: { level: 'warn' },
    http_server: { port, address: '127.0.0.1' },
    http_api: { key: KEY },
    client: { token: { hmac_secret_key: SECRET }, channel_limit: 16 },
    channel: { without_namespace: { allow_subscribe_for_client: true, history_size: 100, history_ttl: '60s', force_recovery: true } },
    engine: engine === 'redis' ? { type: 'redis', redis: { address: `redis://127.0.0.1:${redisPort}`, prefix: 'measure' } } : { type: 'memory' },
  };
  writeFileSync(join(dir, 'c.json'), JSON.stringify(cfg));
  const proc = spawn(process.execPath, [CLI, 'serve', '-c', join(dir, 'c.json'), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  kids.push(proc);
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/ready`)).ok) break;
    } catch {}
    await sleep(100);
  }
  if (args.includes('--workers')) await sleep(2000); // let every worker come up behind the shared port
  return { port, proc };
}
async function clients(ports, n, channel, counter) {
  const out = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, (_, j) => {
        const port = ports[(i + j) % ports.length];
        return new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
          ws.on('error', reject);
          ws.on('open', () => ws.send(JSON.stringify({ id: 1, connect: { token: token(`u${i + j}`) } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel } })));
          ws.on('message', (d) => {
            const s = d.toString();
            if (s.includes('"id":2')) resolve(ws);
            if (s === '{}') ws.send('{}');
            let k = -1;
            while ((k = s.indexOf('"pub":', k + 1)) !== -1) counter.n++;
          });
        }).then((ws) => out.push(ws));
      }),
    );
  }
  return out;
}
async function publishLoop(ports, channel, seconds) {
  let published = 0;
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  let k = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (Date.now() < end) {
        const port = ports[k++ % ports.length];
        const r = await fetch(`http://127.0.0.1:${port}/api/publish`, {
          method: 'POST',
          headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, data: { t: Date.now(), text: 'hello from the benchmark' } }),
        }).then((x) => x.json());
        if (r.error) failed++;
        else published++;
      }
    }),
  );
  return { published, failed };
}
async function run(name, ports, channel) {
  const counter = { n: 0 };
  const ws = await clients(ports, CONNS, channel, counter);
  await sleep(500);
  const before = counter.n;
  const t0 = Date.now();
  const { published, failed } = await publishLoop(ports, channel, SECONDS);
  await sleep(1000); // let queued deliveries land
  const secs = (Date.now() - t0 - 1000) / 1000;
  const delivered = counter.n - before;
  ws.forEach((w) => w.terminate());
  const row = { setup: name, conns: CONNS, publishesPerSec: Math.round(published / secs), deliveriesPerSec: Math.round(delivered / secs), expected: published * CONNS, delivered, failed };
  console.log(JSON.stringify(row));
  return row;
}
function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

const results = [];
{
  const n = await node('memory');
  results.push(await run('1 node, memory engine', [n.port], 'bench1'));
  n.proc.kill('SIGKILL');
}
{
  const r = await redisServer();
  const n = await node('redis', r.port);
  results.push(await run('1 node, redis engine', [n.port], 'bench2'));
  n.proc.kill('SIGKILL');
  r.proc.kill('SIGKILL');
}
{
  const r = await redisServer();
  const a = await node('redis', r.port);
  const b = await node('redis', r.port);
  results.push(await run('2 nodes, redis engine', [a.port, b.port], 'bench3'));
  a.proc.kill('SIGKILL');
  b.proc.kill('SIGKILL');
  r.proc.kill('SIGKILL');
}
{
  const r = await redisServer();
  const w = await node('redis', r.port, ['--workers', '2']);
  results.push(await run('--workers 2, redis engine', [w.port], 'bench4'));
  w.proc.kill('SIGTERM');
  await sleep(1000);
  r.proc.kill('SIGKILL');
}

// Redis round trips per publish: MONITOR lines from the node's own
// connections (not from Lua) during 200 publishes.
{
  const r = await redisServer();
  const n = await node('redis', r.port);
  await sleep(500);
  const mon = connect(r.port, '127.0.0.1');
  let lines = '';
  mon.on('data', (d) => (lines += d));
  mon.write('*1\r\n$7\r\nMONITOR\r\n');
  await sleep(200);
  const PUBS = 200;
  for (let i = 0; i < PUBS; i++) {
    await fetch(`http://127.0.0.1:${n.port}/api/publish`, {
      method: 'POST',
      headers: { 'x-api-key': KEY },
      body: JSON.stringify({ channel: `rt${i % 10}`, data: { i } }),
    });
  }
  await sleep(300);
  mon.destroy();
  const cmds = lines.split('\r\n').filter((l) => l.startsWith('+1'));
  const fromNode = cmds.filter((l) => !l.includes('[0 lua]'));
  const byName = {};
  for (const l of fromNode) {
    const c = /"([a-zA-Z]+)"/.exec(l)?.[1]?.toLowerCase() ?? '?';
    byName[c] = (byName[c] ?? 0) + 1;
  }
  // The node's own periodic traffic (announce every 3 s, presence refresh) shows too; EVALSHA of the publish script is per publish.
  console.log(JSON.stringify({ roundTripsPerPublish: (byName.evalsha ?? 0) / PUBS, luaCommandsPerPublish: cmds.filter((l) => l.includes('[0 lua]')).length / PUBS, nodeCommandsByName: byName, publishes: PUBS }));
  n.proc.kill('SIGKILL');
  r.proc.kill('SIGKILL');
}

// Memory per idle subscribed connection.
for (const engine of ['memory', 'redis']) {
  const r = engine === 'redis' ? await redisServer() : undefined;
  const n = await node(engine, r?.port);
  await sleep(500);
  const base = rssKb(n.proc.pid);
  const ws = await clients([n.port], IDLE, 'idle', { n: 0 });
  await sleep(2000);
  const after = rssKb(n.proc.pid);
  console.log(JSON.stringify({ engine, idleConns: IDLE, rssBeforeMB: Math.round(base / 1024), rssAfterMB: Math.round(after / 1024), kbPerConn: +((after - base) / IDLE).toFixed(1) }));
  ws.forEach((w) => w.terminate());
  n.proc.kill('SIGKILL');
  r?.proc.kill('SIGKILL');
}
process.exit(0);
