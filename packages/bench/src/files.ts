#!/usr/bin/env node
/**
 * `npm run bench:files -w @switchboard/bench [-- --conns 500 --rate 50 --big-mb 200 --concurrent 20 --each-mb 10 --chunk-mb 8]`
 *
 * File transfer throughput and its effect on fan-out, in one run against one
 * `switchboard serve` (memory engine, files on a temp directory):
 *   1. fan-out alone (baseline p99),
 *   2. fan-out while one large file is uploaded (tus, PATCH chunks with
 *      Upload-Checksum, as tus-js-client sends them),
 *   3. fan-out while many files are uploaded at once.
 * The fan-out subscribers run in a child process (their event loop is not
 * the uploader's); latency is publish-time → receive-time on one clock.
 * Never part of `npm test`.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freePort, sleep } from './proc.js';
import { SWITCHBOARD_CLI } from './sut/systems.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const MB = 1024 * 1024;

// ---- role: fan-out subscribers (child process) ----

interface Sample {
  at: number;
  ms: number;
}

async function fanoutChild(): Promise<void> {
  const port = arg('port', 0);
  const conns = arg('conns', 500);
  const samples: Sample[] = [];
  let connected = 0;
  let closed = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < conns; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
    sockets.push(ws);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, connect: {} }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: 'feed' } })));
    ws.on('close', () => closed++);
    ws.on('message', (raw) => {
      const now = Date.now();
      for (const line of raw.toString().split('\n')) {
        if (!line) continue;
        // The server's ping is an empty command: answer it, or the connection is closed as stale.
        if (line === '{}') {
          ws.send('{}');
          continue;
        }
        const m = JSON.parse(line) as { id?: number; push?: { pub?: { data?: { t?: number } } } };
        if (m.id === 2) connected++;
        const t = m.push?.pub?.data?.t;
        if (t !== undefined) samples.push({ at: now, ms: now - t });
      }
    });
    if (i % 100 === 99) await sleep(50);
  }
  while (connected < conns) await sleep(50);
  process.send!({ ready: true });
  process.on('message', (msg: { from: number; to: number } | { exit: true }) => {
    if ('exit' in msg) {
      for (const ws of sockets) ws.terminate();
      process.exit(0);
    }
    const ms = samples
      .filter((s) => s.at >= msg.from && s.at <= msg.to)
      .map((s) => s.ms)
      .sort((a, b) => a - b);
    const q = (p: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]! : NaN);
    process.send!({ n: ms.length, p50: q(0.5), p99: q(0.99), max: ms[ms.length - 1] ?? NaN, closed });
  });
}

// ---- role: the peer, a plain Node HTTP server appending PUT bodies to a file (no tus, no hashing) ----

async function peerChild(): Promise<void> {
  const { createServer } = await import('node:http');
  const { createWriteStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  const dir = process.argv[process.argv.indexOf('--dir') + 1]!;
  const server = createServer((req, res) => {
    const offset = Number(req.headers['x-offset'] ?? 0);
    const name = join(dir, 'peer-' + String(req.url).replace(/[^a-z0-9]/gi, ''));
    pipeline(req, createWriteStream(name, { flags: offset === 0 ? 'w' : 'r+', start: offset })).then(
      () => res.writeHead(204).end(),
      () => res.writeHead(500).end(),
    );
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
}

// ---- role: driver (the parent) ----

interface Window {
  n: number;
  p50: number;
  p99: number;
  max: number;
  /** Subscriber connections closed so far (slow-consumer or stale disconnects). */
  closed: number;
}

function ask(child: ChildProcess, from: number, to: number): Promise<Window> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Window));
    child.send({ from, to });
  });
}

async function main(): Promise<void> {
  const conns = arg('conns', 500);
  const rate = arg('rate', 50);
  const bigMb = arg('big-mb', 200);
  const concurrent = arg('concurrent', 20);
  const eachMb = arg('each-mb', 10);
  const chunk = arg('chunk-mb', 8) * MB;
  const baselineMs = arg('baseline-s', 10) * 1000;

  const dir = mkdtempSync(join(os.tmpdir(), 'sb-files-bench-'));
  const port = await freePort();
  const apiKey = 'bench-key';
  const secret = 'bench-secret';
  const cfgFile = join(dir, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      http_server: { address: '127.0.0.1', port },
      http_api: { key: apiKey },
      log: { level: 'warn' },
      client: { allow_anonymous_connect_without_token: true, token: { hmac_secret_key: 'unused-hmac-secret-for-bench' } },
      channel: {
        without_namespace: { allow_subscribe_for_anonymous: true, allow_subscribe_for_client: true },
        namespaces: [{ name: 'up', history_size: 100, history_ttl: '300s' }],
      },
      files: { enabled: true, dir: join(dir, 'files'), max_size: (bigMb + 1) * MB, secret },
    }),
  );
  const server = spawn(process.execPath, [SWITCHBOARD_CLI, 'serve', '--config', cfgFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  const http = `http://127.0.0.1:${port}`;
  const cleanup = () => {
    if (server.pid && server.exitCode === null) process.kill(server.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (;;) {
    try {
      if ((await fetch(http + '/health')).ok) break;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  const api = async (method: string, params: unknown): Promise<{ result?: Record<string, string>; error?: unknown }> =>
    (
      await fetch(`${http}/api/${method}`, { method: 'POST', headers: { 'x-api-key': apiKey }, body: JSON.stringify(params) })
    ).json() as never;

  const child = fork(new URL(import.meta.url).pathname, ['--role-fanout', '--port', String(port), '--conns', String(conns)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((r) => child.once('message', r));

  // The publisher: `rate` publications/s for the whole run, each stamped with its send time.
  let publishing = true;
  const publisher = (async () => {
    const every = 1000 / rate;
    let next = Date.now();
    while (publishing) {
      void api('publish', { channel: 'feed', data: { t: Date.now() } });
      next += every;
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  const { result } = await api('file_upload_token', { user: 'bench', channel: 'up:1', ttl: 3600 });
  const auth = { Authorization: `Bearer ${result!.token}`, 'Tus-Resumable': '1.0.0' };
  const data = randomBytes(Math.max(bigMb, eachMb) * MB);
  const sums = new Map<string, string>();
  const checksum = (from: number, to: number): string => {
    const key = `${from}-${to}`;
    let s = sums.get(key);
    if (!s) sums.set(key, (s = createHash('sha256').update(data.subarray(from, to)).digest('base64')));
    return s;
  };
  // Checksums are computed before the clock starts: the client's hashing is not the server's throughput.
  const plan = (size: number) => {
    for (let o = 0; o < size; o += chunk) checksum(o, Math.min(size, o + chunk));
  };
  plan(bigMb * MB);
  plan(eachMb * MB);

  async function upload(size: number): Promise<void> {
    const meta = `channel ${Buffer.from('up:1').toString('base64')},filename ${Buffer.from('bench.bin').toString('base64')}`;
    const created = await fetch(http + '/files/', {
      method: 'POST',
      headers: { ...auth, 'Upload-Length': String(size), 'Upload-Metadata': meta },
    });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
    const url = http + created.headers.get('location')!;
    for (let o = 0; o < size; o += chunk) {
      const end = Math.min(size, o + chunk);
      const r = await fetch(url, {
        method: 'PATCH',
        headers: {
          ...auth,
          'Upload-Offset': String(o),
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Checksum': 'sha256 ' + checksum(o, end),
        },
        body: new Uint8Array(data.buffer, data.byteOffset + o, end - o),
      });
      if (r.status !== 204) throw new Error(`patch at ${o}: ${r.status} ${await r.text()}`);
    }
  }

  await sleep(2000); // warm-up
  const rows: Array<{ phase: string; mbps?: number; seconds?: number; fanout: Window }> = [];

  let from = Date.now();
  await sleep(baselineMs);
  rows.push({ phase: 'fan-out alone', fanout: await ask(child, from, Date.now()) });

  from = Date.now();
  await upload(bigMb * MB);
  let secs = (Date.now() - from) / 1000;
  rows.push({ phase: `1 upload of ${bigMb} MB`, mbps: bigMb / secs, seconds: secs, fanout: await ask(child, from, Date.now()) });

  // The peer, in the same run: the same bytes in the same chunks to a plain HTTP server writing a file.
  const peer = fork(new URL(import.meta.url).pathname, ['--role-peer', '--dir', dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const peerPort = await new Promise<number>((r) => peer.once('message', (m) => r((m as { port: number }).port)));
  from = Date.now();
  for (let o = 0; o < bigMb * MB; o += chunk) {
    const end = Math.min(bigMb * MB, o + chunk);
    const r = await fetch(`http://127.0.0.1:${peerPort}/big`, {
      method: 'PUT',
      headers: { 'x-offset': String(o) },
      body: new Uint8Array(data.buffer, data.byteOffset + o, end - o),
    });
    if (r.status !== 204) throw new Error(`peer: ${r.status}`);
  }
  secs = (Date.now() - from) / 1000;
  rows.push({
    phase: `peer: plain HTTP PUT of ${bigMb} MB to a file`,
    mbps: bigMb / secs,
    seconds: secs,
    fanout: await ask(child, from, Date.now()),
  });
  peer.kill('SIGKILL');

  from = Date.now();
  await Promise.all(Array.from({ length: concurrent }, () => upload(eachMb * MB)));
  secs = (Date.now() - from) / 1000;
  rows.push({
    phase: `${concurrent} concurrent uploads of ${eachMb} MB`,
    mbps: (concurrent * eachMb) / secs,
    seconds: secs,
    fanout: await ask(child, from, Date.now()),
  });

  from = Date.now();
  await sleep(baselineMs);
  rows.push({ phase: 'fan-out alone (again)', fanout: await ask(child, from, Date.now()) });

  publishing = false;
  await publisher;
  child.send({ exit: true });

  const base = rows[0]!.fanout.p99;
  console.log(`fan-out: ${conns} subscribers of one channel, ${rate} publications/s; chunks of ${chunk / MB} MB with Upload-Checksum`);
  console.log(
    '| phase | upload MB/s | upload s | deliveries | fan-out p50 ms | fan-out p99 ms | p99 vs alone | max ms | subscribers closed |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const f = r.fanout;
    console.log(
      `| ${r.phase} | ${r.mbps?.toFixed(1) ?? ''} | ${r.seconds?.toFixed(2) ?? ''} | ${f.n} | ${f.p50} | ${f.p99} | ×${(f.p99 / base).toFixed(2)} | ${f.max} | ${f.closed} |`,
    );
  }
  cleanup();
  process.exit(0);
}

if (process.argv.includes('--role-fanout')) void fanoutChild();
else if (process.argv.includes('--role-peer')) void peerChild();
else
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
