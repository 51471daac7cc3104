#!/usr/bin/env node
/**
 * `node dist/src/delivery.js [--scenarios priorities,conflation] [--quick] [--out file.json]`
 *
 * Delivery under pressure (issue 13), each variant against a freshly started
 * Switchboard (packages/server/dist), loopback only, bounded in time:
 *
 * - priorities: CONNS raw protocol clients, each subscribed to a bulk and an
 *   urgent channel, read at a fixed byte rate below what the bulk stream
 *   sends, so every connection's queue backs up. Urgent publications carry
 *   their send time; we report their delivery latency (p50/p99/max) with the
 *   namespaces' priority classes (urgent: high, bulk: low) and without
 *   (both normal: one FIFO), in the same run.
 * - conflation: one `centrifuge` SDK subscriber reading at 1/10 of the
 *   publish byte rate, over 100 keys. We report bytes sent to it, staleness
 *   (age of the value it holds per key, sampled every 100 ms), messages and
 *   disconnects, with conflation (namespace conflation_key "/k") and without.
 *
 * On loopback the kernel's send buffer grows to tcp_wmem's max (4 MiB) for a
 * receiver that stops reading, and that backlog is ahead of anything the
 * server's queue can reorder or replace. docs/PERFORMANCE.md runs this in a
 * network namespace of its own with net.ipv4.tcp_notsent_lowat set (what a
 * deployment should do too), and also without, for comparison.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { freePort, installExitHooks, killAllSync, sleep, spawnTracked, type Spawned } from './proc.js';
import { SWITCHBOARD_CLI } from './sut/systems.js';

const API_KEY = 'bench-key';

function arg(name: string): string | undefined {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = process.argv[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : process.argv[i + 1];
}

interface Server {
  proc: Spawned;
  port: number;
  ws: string;
  dir: string;
}

async function startServer(namespaces: Record<string, unknown>[], queueMax: number): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-delivery-'));
  const config = {
    http_server: { port, address: '127.0.0.1' },
    client: { allow_anonymous_connect_without_token: true, queue_max_size: queueMax, token: { hmac_secret_key: 'bench-secret' } },
    http_api: { key: API_KEY },
    channel: { without_namespace: { allow_subscribe_for_anonymous: true }, namespaces },
    log: { level: 'warn' },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const proc = spawnTracked(process.execPath, [SWITCHBOARD_CLI, 'serve', '--config', join(dir, 'config.json')]);
  for (let i = 0; i < 200; i++) {
    if (proc.exited()) throw new Error(`server exited: ${proc.tail()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) {
        return { proc, port, ws: `ws://127.0.0.1:${port}/connection/websocket`, dir };
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`server not healthy: ${proc.tail()}`);
}

async function stopServer(s: Server): Promise<void> {
  await s.proc.stop();
  rmSync(s.dir, { recursive: true, force: true });
}

async function api(s: Server, method: string, params: unknown): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${s.port}/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify(params),
  });
  const body = (await r.json()) as { error?: unknown; replies?: Array<{ error?: unknown }> };
  const failed = body.error ?? body.replies?.find((x) => x.error)?.error;
  if (r.status !== 200 || failed) throw new Error(`${method}: HTTP ${r.status} ${JSON.stringify(failed)}`);
  return body;
}

async function metric(s: Server, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Reads a socket at `bytesPerSec`: after each message it counts the bytes,
 * and pauses the socket once this 50 ms tick's allowance is spent.
 */
class Throttle {
  private debt = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly ws: WebSocket,
    private readonly bytesPerSec: number,
  ) {
    this.timer = setInterval(() => this.tick(), 50);
  }
  got(bytes: number): void {
    this.debt += bytes;
    if (this.debt >= this.bytesPerSec / 20 && !this.ws.isPaused) this.ws.pause();
  }
  private tick(): void {
    this.debt = Math.max(0, this.debt - this.bytesPerSec / 20);
    if (this.debt < this.bytesPerSec / 20 && this.ws.isPaused) this.ws.resume();
  }
  stop(): void {
    clearInterval(this.timer);
    if (this.ws.isPaused) this.ws.resume();
  }
}

/** Publishes `make(i)` batches every 20 ms at `rate` per second until `ms` have passed. */
async function publishAt(s: Server, rate: number, ms: number, make: (i: number) => Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < ms) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    if (due > sent) {
      const commands = [];
      for (; sent < due && commands.length < 1000; sent++) commands.push({ publish: make(sent) });
      await api(s, 'batch', { commands });
    }
    await sleep(20);
  }
  return sent;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------------------------------------------------------------- priorities

interface PrioritiesRow {
  variant: string;
  conns: number;
  urgentSent: number;
  urgentGot: number;
  p50: number;
  p99: number;
  max: number;
  bulkMBps: number;
  disconnects: number;
}

async function priorities(quick: boolean, prioritized: boolean): Promise<PrioritiesRow> {
  const conns = 10;
  const ms = quick ? 10_000 : 20_000;
  const bulkRate = 100; // publications/s of 32 KiB: 3.2 MB/s per connection
  const readRate = 2_000_000; // bytes/s a client reads: the bulk stream backs up by ~1.2 MB/s per connection
  const urgentRate = 10;
  const ns = (name: string, priority: string) => ({
    name,
    priority: prioritized ? priority : 'normal',
    allow_subscribe_for_anonymous: true,
  });
  const s = await startServer([ns('urgent', 'high'), ns('bulk', 'low')], 256 * 1024 * 1024);
  const latencies: number[] = [];
  let bulkBytes = 0;
  let closes = 0;
  const clients: Array<{ ws: WebSocket; th: Throttle }> = [];
  try {
    for (let i = 0; i < conns; i++) {
      const ws = new WebSocket(s.ws);
      await new Promise((r, j) => ws.once('open', r).once('error', j));
      const th = new Throttle(ws, readRate);
      ws.on('message', (data: Buffer) => {
        th.got(data.length);
        const text = data.toString();
        for (const line of text.split('\n')) {
          if (line.startsWith('{"push":{"channel":"urgent:')) {
            latencies.push(Date.now() - (JSON.parse(line).push.pub.data.t as number));
          } else if (line.startsWith('{}')) {
            ws.send('{}');
          } else bulkBytes += line.length;
        }
      });
      ws.on('close', () => closes++);
      ws.send(
        [
          { id: 1, connect: {} },
          { id: 2, subscribe: { channel: 'bulk:feed' } },
          { id: 3, subscribe: { channel: 'urgent:alerts' } },
        ]
          .map((c) => JSON.stringify(c))
          .join('\n'),
      );
      clients.push({ ws, th });
    }
    const pad = 'b'.repeat(32 * 1024);
    const [, urgentSent] = await Promise.all([
      publishAt(s, bulkRate, ms, (n) => ({ channel: 'bulk:feed', data: { n, pad } })),
      publishAt(s, urgentRate, ms, (n) => ({ channel: 'urgent:alerts', data: { n, t: Date.now() } })),
    ]);
    // Urgent publications still queued are counted as not delivered within the run.
    await sleep(500);
    latencies.sort((a, b) => a - b);
    return {
      variant: prioritized ? 'priority classes (urgent high, bulk low)' : 'one FIFO (both normal)',
      conns,
      urgentSent: urgentSent * conns,
      urgentGot: latencies.length,
      p50: pct(latencies, 50),
      p99: pct(latencies, 99),
      max: latencies.at(-1) ?? NaN,
      bulkMBps: bulkBytes / conns / (ms / 1000) / 1e6,
      disconnects: closes,
    };
  } finally {
    for (const c of clients) {
      c.th.stop();
      c.ws.terminate();
    }
    await stopServer(s);
  }
}

// ---------------------------------------------------------------- conflation

interface ConflationRow {
  variant: string;
  published: number;
  received: number;
  bytesSent: number;
  ageP50: number;
  ageP99: number;
  ageMax: number;
  disconnects3008: number;
  reconnects: number;
  /** Resubscribes after a reconnect that could not recover (the gap passed recovery_max_publication_limit). */
  unrecovered: number;
}

/** The SDK's WebSocket, read at a fixed byte rate. */
function throttledWebSocket(bytesPerSec: number, made: Throttle[]): typeof WebSocket {
  return class extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { allowSynchronousEvents: false });
      const th = new Throttle(this, bytesPerSec);
      made.push(th);
      this.on('message', (d: Buffer) => th.got(d.length));
    }
  } as typeof WebSocket;
}

async function conflation(quick: boolean, conflate: boolean): Promise<ConflationRow> {
  const keys = 100;
  const rate = 2000; // publications/s over all keys: 20 per key per second
  const ms = quick ? 10_000 : 20_000;
  const pad = 'v'.repeat(900);
  const pubBytes = 1030; // the push as it goes on the wire, about
  const ns = {
    name: 'quotes',
    allow_subscribe_for_anonymous: true,
    history_size: 100_000,
    history_ttl: '600s',
    force_recovery: true,
    ...(conflate ? { conflation_key: '/k' } : {}),
  };
  const s = await startServer([ns], 1024 * 1024);
  const throttles: Throttle[] = [];
  const c = new Centrifuge(s.ws, {
    websocket: throttledWebSocket((rate * pubBytes) / 10, throttles),
    minReconnectDelay: 100,
    maxReconnectDelay: 500,
  });
  const held = new Map<number, number>();
  let received = 0;
  let reconnects = 0;
  c.on('connecting', (ctx) => {
    if (ctx.code !== 0) reconnects++;
  });
  const sub = c.newSubscription('quotes:book');
  let unrecovered = 0;
  sub.on('subscribed', (ctx) => {
    if (ctx.wasRecovering && !ctx.recovered) unrecovered++;
  });
  sub.on('publication', (ctx) => {
    received++;
    held.set(ctx.data.k as number, ctx.data.t as number);
  });
  const subscribed = new Promise((r) => sub.once('subscribed', r));
  sub.subscribe();
  c.connect();
  await subscribed;
  const bytes0 = await metric(s, 'switchboard_transport_bytes_out_total');
  const drops0 = await metric(s, 'switchboard_disconnects_total', 'code="3008"');
  const ages: number[] = [];
  const sampler = setInterval(() => {
    const now = Date.now();
    for (let k = 0; k < keys; k++) {
      const t = held.get(k);
      if (t !== undefined) ages.push(now - t);
    }
  }, 100);
  try {
    const published = await publishAt(s, rate, ms, (n) => ({ channel: 'quotes:book', data: { k: n % keys, n, t: Date.now(), pad } }));

    clearInterval(sampler);
    ages.sort((a, b) => a - b);
    return {
      variant: conflate ? 'conflation_key /k' : 'no conflation',
      published,
      received,
      bytesSent: (await metric(s, 'switchboard_transport_bytes_out_total')) - bytes0,
      ageP50: pct(ages, 50),
      ageP99: pct(ages, 99),
      ageMax: ages.at(-1) ?? NaN,
      disconnects3008: (await metric(s, 'switchboard_disconnects_total', 'code="3008"')) - drops0,
      reconnects,
      unrecovered,
    };
  } finally {
    clearInterval(sampler);
    c.disconnect();
    throttles.forEach((t) => t.stop());
    await stopServer(s);
  }
}

// ---------------------------------------------------------------- main

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

async function main(): Promise<void> {
  installExitHooks();
  const quick = process.argv.includes('--quick');
  const scenarios = (arg('scenarios') ?? 'priorities,conflation').split(',');
  const load = os.loadavg()[0] ?? 0;
  if (load > 1) process.stderr.write(`note: load average is ${load.toFixed(1)} before starting; other work will skew the figures\n`);
  const out: Record<string, unknown> = { startedAt: new Date().toISOString(), quick, loadAvgAtStart: load };
  const lines: string[] = [];
  if (scenarios.includes('priorities')) {
    const rows = [await priorities(quick, false), await priorities(quick, true)];
    out.priorities = rows;
    lines.push('priorities: urgent latency while a bulk stream saturates the same connections');
    lines.push('variant                                    conns  urgent got/sent  p50 ms  p99 ms  max ms  bulk MB/s/conn  closes');
    for (const r of rows) {
      lines.push(
        `${r.variant.padEnd(43)}${String(r.conns).padStart(5)}  ${`${r.urgentGot}/${r.urgentSent}`.padStart(15)}  ${fmt(r.p50).padStart(6)}  ${fmt(r.p99).padStart(6)}  ${fmt(r.max).padStart(6)}  ${fmt(r.bulkMBps, 2).padStart(14)}  ${String(r.disconnects).padStart(6)}`,
      );
    }
    const [fifo, prio] = rows;
    lines.push(`urgent p99 ratio (one FIFO / priority classes): ${fmt(fifo!.p99 / prio!.p99, 1)}x`, '');
  }
  if (scenarios.includes('conflation')) {
    const rows = [await conflation(quick, false), await conflation(quick, true)];
    out.conflation = rows;
    lines.push('conflation: one SDK subscriber reading at 1/10 of the publish rate (~200 KB/s), 100 keys, 2000 publications/s of ~1 KB');
    lines.push('variant               published  received  bytes sent  age p50 ms  age p99 ms  age max ms  3008  reconnects  unrecovered');
    for (const r of rows) {
      lines.push(
        `${r.variant.padEnd(20)}${String(r.published).padStart(11)}${String(r.received).padStart(10)}${String(r.bytesSent).padStart(12)}${fmt(r.ageP50).padStart(12)}${fmt(r.ageP99).padStart(12)}${fmt(r.ageMax).padStart(12)}${String(r.disconnects3008).padStart(6)}${String(r.reconnects).padStart(12)}${String(r.unrecovered).padStart(13)}`,
      );
    }
  }
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  const dir = fileURLToPath(new URL('../../results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = arg('out') ?? `${dir}delivery${quick ? '-quick' : ''}.json`;
  writeFileSync(file, JSON.stringify({ ...out, table: text }, null, 2));
  process.stdout.write(`\nresults: ${file}\n`);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`\ndelivery bench failed: ${String((e as Error)?.stack ?? e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAllSync();
    // the SDK's and fetch's timers would keep the process alive for a while
    process.exit();
  });
