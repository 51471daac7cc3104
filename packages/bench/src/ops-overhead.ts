#!/usr/bin/env node
/**
 * `npm run bench:ops -w @switchboard/bench [-- --subs 1000 --pubs 300 --rounds 3]`
 *
 * What tracing and webhooks cost a node, in one run: the same
 * `switchboard serve` started as four variants (plain, tracing on, webhooks
 * for every event, both), in alternating order for several rounds, each
 * exporting to / delivering to a sink process of the harness's own. For each
 * start it measures the server's CPU (its process tree, from /proc) in two
 * windows: `subs` clients connecting and subscribing to one channel, then
 * `pubs` API publishes fanned out to all of them. Reports medians and the
 * ratio to the plain variant measured in the same run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { freePort, installExitHooks, sleep, spawnTracked, treeCpuSeconds, type Spawned } from './proc.js';
import { SWITCHBOARD_CLI } from './sut/systems.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const SUBS = arg('subs', 1000);
const PUBS = arg('pubs', 300);
const ROUNDS = arg('rounds', 3);
const EVENTS = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'channel_occupied', 'channel_vacated'];

type Variant = 'plain' | 'traced' | 'webhooks' | 'both';
const VARIANTS: Variant[] = ['plain', 'traced', 'webhooks', 'both'];

interface Sample {
  connectUs: number;
  fanoutUs: number;
}

async function waitHealthy(proc: Spawned, url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exited()) throw new Error(`exited: ${proc.tail()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`not healthy: ${proc.tail()}`);
}

async function startNode(v: Variant, sinkPort: number, dir: string): Promise<{ proc: Spawned; port: number }> {
  const port = await freePort();
  const cfg: Record<string, unknown> = {
    http_server: { port, address: '127.0.0.1' },
    client: { allow_anonymous_connect_without_token: true, queue_max_size: 10_485_760 },
    http_api: { key: 'bench-key' },
    channel: { without_namespace: { allow_subscribe_for_anonymous: true, allow_subscribe_for_client: true } },
    log: { level: 'warn' },
  };
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (v === 'traced' || v === 'both') {
    cfg.opentelemetry = { enabled: true };
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `http://127.0.0.1:${sinkPort}/v1/traces`;
  }
  if (v === 'webhooks' || v === 'both') {
    cfg.webhooks = { secret: 'bench', endpoints: [{ name: 'sink', url: `http://127.0.0.1:${sinkPort}/hook`, events: EVENTS }] };
  }
  const file = join(dir, `${v}-${port}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  const proc = spawnTracked(process.execPath, [SWITCHBOARD_CLI, 'serve', '--config', file], env);
  await waitHealthy(proc, `http://127.0.0.1:${port}/health`);
  return { proc, port };
}

/** SUBS raw-protocol clients on one channel, 50 connecting at a time; resolves with the sockets and a publication counter. */
async function subscribe(port: number): Promise<{ socks: WebSocket[]; received: () => number }> {
  let received = 0;
  const socks: WebSocket[] = [];
  let i = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const one = (): void => {
      if (i >= SUBS) return;
      i++;
      const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
      socks.push(ws);
      ws.on('error', reject);
      ws.on('open', () => ws.send(`{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"bench"}}`));
      ws.on('message', (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          if (line.includes('"pub"')) received++;
          else if (line === '{}')
            ws.send('{}'); // the server's ping: answer, or it disconnects us (3012)
          else if (line.startsWith('{"id":2')) {
            if (++done === SUBS) resolve();
            else one();
          }
        }
      });
    };
    for (let k = 0; k < 50; k++) one();
  });
  return { socks, received: () => received };
}

async function measure(v: Variant, sinkPort: number, dir: string): Promise<Sample> {
  const { proc, port } = await startNode(v, sinkPort, dir);
  try {
    const c0 = treeCpuSeconds(proc.pid);
    const { socks, received } = await subscribe(port);
    await sleep(500); // webhook deliveries of the connect phase finish inside the window
    const c1 = treeCpuSeconds(proc.pid);
    const payload = JSON.stringify({ channel: 'bench', data: { text: 'x'.repeat(100) } });
    for (let p = 0; p < PUBS; p++) {
      const r = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: 'POST',
        headers: { 'x-api-key': 'bench-key', 'content-type': 'application/json' },
        body: payload,
      });
      await r.arrayBuffer();
    }
    const deadline = Date.now() + 300_000;
    while (received() < PUBS * SUBS) {
      if (Date.now() > deadline) throw new Error(`${v}: ${received()} of ${PUBS * SUBS} deliveries after 5 minutes`);
      await sleep(20);
    }
    const c2 = treeCpuSeconds(proc.pid);
    for (const s of socks) s.terminate();
    return { connectUs: ((c1 - c0) / SUBS) * 1e6, fanoutUs: ((c2 - c1) / PUBS) * 1e6 };
  } finally {
    await proc.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<void> {
  installExitHooks();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-ops-bench-'));
  const sinkPort = await freePort();
  const sink = spawnTracked(process.execPath, [fileURLToPath(new URL('./peers/sink.js', import.meta.url)), '--port', String(sinkPort)]);
  await waitHealthy(sink, `http://127.0.0.1:${sinkPort}/health`);
  const samples = new Map<Variant, Sample[]>(VARIANTS.map((v) => [v, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate the order each round, so drift in the machine's load spreads over all variants.
      const order = r % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const v of order) {
        const s = await measure(v, sinkPort, dir);
        samples.get(v)!.push(s);
        process.stderr.write(
          `round ${r + 1} ${v}: connect ${s.connectUs.toFixed(0)} µs CPU/client, fan-out ${s.fanoutUs.toFixed(0)} µs CPU/publication\n`,
        );
      }
    }
  } finally {
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = {
    connect: median(samples.get('plain')!.map((s) => s.connectUs)),
    fanout: median(samples.get('plain')!.map((s) => s.fanoutUs)),
  };
  const lines = [
    `${SUBS} subscribers on one channel, ${PUBS} API publishes, ${ROUNDS} rounds; server CPU (process tree), medians`,
    '',
    'variant    connect+subscribe    ×plain   fan-out per publication   per delivery   ×plain',
    '---------  -------------------  -------  -----------------------  -------------  -------',
  ];
  for (const v of VARIANTS) {
    const c = median(samples.get(v)!.map((s) => s.connectUs));
    const f = median(samples.get(v)!.map((s) => s.fanoutUs));
    lines.push(
      `${v.padEnd(9)}  ${`${c.toFixed(0)} µs`.padStart(19)}  ${(c / base.connect).toFixed(2).padStart(7)}  ${`${(f / 1000).toFixed(2)} ms`.padStart(23)}  ${`${(f / SUBS).toFixed(2)} µs`.padStart(13)}  ${(f / base.fanout).toFixed(2).padStart(7)}`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
