/**
 * Soak test (not part of `npm test`): starts `switchboard serve` in a child
 * process, holds steady subscribers, publishes at a steady rate through the
 * HTTP API and churns connections (close some, open new ones) for N minutes.
 * Prints the server's RSS, heap and open handles over time and fails when
 * RSS grows more than 5% after warm-up, or when handles or connections are
 * left over once every client has gone.
 *
 *   npm run soak -w @switchboard/server -- --minutes 1
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { freePort } from '../test/helpers/net.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    clients: { type: 'string', default: '300' },
    channels: { type: 'string', default: '20' },
    rate: { type: 'string', default: '200' },
    churn: { type: 'string', default: '20' },
    'max-growth': { type: 'string', default: '5' },
  },
});
const MINUTES = Number(values.minutes);
const CLIENTS = Number(values.clients);
const CHANNELS = Number(values.channels);
const RATE = Number(values.rate); // publications per second
const CHURN = Number(values.churn); // connections replaced per second
const MAX_GROWTH = Number(values['max-growth']) / 100;
const DURATION = MINUTES * 60_000;
const WARMUP = Math.min(120_000, Math.max(15_000, DURATION * 0.25));
const SAMPLE_MS = Math.max(2000, Math.min(10_000, DURATION / 30));

/** dist/scripts → dist/src/cli.js */
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const secret = randomBytes(16).toString('hex');
const apiKey = randomBytes(16).toString('hex');

interface Sample {
  t: number;
  rss: number;
  heap: number;
  fds: number;
  conns: number;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

function fdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/**
 * HTTP without keep-alive (agent: false), so the soak's own API and metrics
 * calls leave no idle sockets in the server that would look like leaked handles.
 */
function httpCall(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method: data ? 'POST' : 'GET',
        agent: false,
        headers: { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<void> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-soak-'));
  const cfgFile = join(dir, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      http_server: { port, address: '127.0.0.1' },
      client: { token: { hmac_secret_key: secret }, allowed_origins: ['*'] },
      http_api: { key: apiKey },
      log: { level: 'warn' },
      channel: { without_namespace: { allow_subscribe_for_client: true, history_size: 50, history_ttl: '60s', force_recovery: true } },
    }),
  );
  const server = spawn(process.execPath, [CLI, 'serve', '--config', cfgFile], { stdio: ['ignore', 'inherit', 'inherit'] });
  const pid = server.pid!;
  let serverExited = false;
  server.on('exit', () => (serverExited = true));
  const http = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await httpCall(http + '/health')).status === 200) break;
    } catch {
      /* not yet */
    }
    if (i > 200 || serverExited) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const metricsText = async (): Promise<string> => (await httpCall(http + '/metrics')).text;
  const token = await new SignJWT({ sub: 'soak' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
  const fdsIdle = fdsOf(pid);

  // ---- clients ----
  let received = 0;
  let opened = 0;
  let failures = 0;
  const live = new Set<WebSocket>();
  const open = (n: number): void => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
    const channel = `soak${n % CHANNELS}`;
    ws.on('open', () => {
      ws.send(JSON.stringify({ id: 1, connect: { token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel } }));
      opened++;
    });
    ws.on('message', (d) => {
      const text = d.toString();
      if (text === '{}') return void ws.send('{}');
      for (const line of text.split('\n')) if (line.includes('"push"') && line.includes('"pub"')) received++;
    });
    ws.on('error', () => void failures++);
    ws.on('close', () => live.delete(ws));
    live.add(ws);
  };
  for (let i = 0; i < CLIENTS; i++) open(i);

  // ---- steady publishing through the API ----
  let published = 0;
  let seq = 0;
  const tick = 50;
  const perTick = Math.max(1, Math.round((RATE * tick) / 1000));
  const payload = 'x'.repeat(200);
  const pub = setInterval(() => {
    const commands = Array.from({ length: perTick }, () => ({ publish: { channel: `soak${seq++ % CHANNELS}`, data: { seq, payload } } }));
    httpCall(`${http}/api/batch`, { commands }, { 'x-api-key': apiKey }).then(
      (r) => {
        if (r.status === 200) published += perTick;
        else failures++;
      },
      () => void failures++,
    );
  }, tick);

  // ---- churn: replace CHURN connections per second ----
  let next = CLIENTS;
  const churn = setInterval(() => {
    let closed = 0;
    for (const ws of live) {
      if (closed++ >= CHURN) break;
      ws.close();
    }
    for (let i = 0; i < CHURN; i++) open(next++);
  }, 1000);

  // ---- samples ----
  const samples: Sample[] = [];
  const started = Date.now();
  console.log(
    `soak: ${MINUTES} min, ${CLIENTS} clients on ${CHANNELS} channels, ${RATE} pub/s, churn ${CHURN}/s, warm-up ${WARMUP / 1000}s; server pid ${pid}`,
  );
  console.log('    t   rss MB  heap MB  fds  conns  published  received');
  while (Date.now() - started < DURATION) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    if (serverExited) throw new Error('server exited during the soak');
    const text = await metricsText();
    const s: Sample = {
      t: Date.now() - started,
      rss: rssOf(pid) || metric(text, 'process_resident_memory_bytes'),
      heap: metric(text, 'nodejs_heap_size_used_bytes'),
      fds: fdsOf(pid) || metric(text, 'process_open_fds'),
      conns: metric(text, 'switchboard_connections'),
    };
    samples.push(s);
    console.log(
      `${String(Math.round(s.t / 1000)).padStart(5)}s ${mb(s.rss).padStart(8)} ${mb(s.heap).padStart(8)} ${String(s.fds).padStart(4)} ${String(s.conns).padStart(6)} ${String(published).padStart(10)} ${String(received).padStart(9)}`,
    );
  }
  clearInterval(pub);
  clearInterval(churn);

  // ---- all clients leave: nothing may be left behind ----
  for (const ws of live) ws.close();
  const deadline = Date.now() + 10_000;
  let conns = NaN;
  let fds = NaN;
  while (Date.now() < deadline) {
    conns = metric(await metricsText(), 'switchboard_connections');
    fds = fdsOf(pid);
    if (conns === 0 && live.size === 0 && (Number.isNaN(fdsIdle) || fds <= fdsIdle + 2)) break;
    await new Promise((r) => setTimeout(r, 200));
  }

  // V8 lets garbage pile up until its first major GC; RSS before that says nothing
  // about leaks. Judge growth from the first sample after warm-up and after a major GC
  // (seen as the used heap dropping by a quarter between two samples).
  const gcAt = samples.findIndex((s, i) => i > 0 && s.heap < samples[i - 1]!.heap * 0.75);
  const from = gcAt === -1 ? Infinity : Math.max(WARMUP, samples[gcAt]!.t);
  const after = samples.filter((s) => s.t >= from);
  const problems: string[] = [];
  let growth = NaN;
  if (gcAt === -1) {
    problems.push('no major GC seen during the run, so RSS growth cannot be judged: run longer');
  } else if (after.length >= 4) {
    const k = Math.max(2, Math.floor(after.length / 4));
    const base = median(after.slice(0, k).map((s) => s.rss));
    const end = median(after.slice(-k).map((s) => s.rss));
    growth = (end - base) / base;
    console.log(
      `RSS from ${Math.round(from / 1000)}s (warm-up and first major GC): ${mb(base)} MB → ${mb(end)} MB (${(growth * 100).toFixed(2)}%; limit ${(MAX_GROWTH * 100).toFixed(0)}%)`,
    );
    if (growth > MAX_GROWTH) problems.push(`RSS grew ${(growth * 100).toFixed(2)}% after warm-up`);
  } else {
    problems.push('too few samples after warm-up and the first major GC: run longer');
  }
  console.log(`handles: ${fdsIdle} fds before any client, ${fds} after all left; connections left: ${conns}`);
  console.log(`totals: ${opened} connections opened, ${published} published, ${received} delivered, ${failures} failures`);
  if (conns !== 0) problems.push(`${conns} connections still counted after every client left`);
  if (!Number.isNaN(fdsIdle) && fds > fdsIdle + 2) problems.push(`open fds ${fdsIdle} → ${fds}: handles leaked`);
  if (received === 0 || published === 0) problems.push('nothing was published or delivered');
  if (failures > 0) problems.push(`${failures} client or publish failures`);

  server.kill('SIGTERM');
  await new Promise((r) => (serverExited ? r(undefined) : server.once('exit', r)));
  rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) {
    console.log('SOAK FAILED:\n  ' + problems.join('\n  '));
    process.exitCode = 1;
  } else {
    console.log('SOAK PASSED');
  }
}

main().catch((e: unknown) => {
  console.error('soak:', e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
