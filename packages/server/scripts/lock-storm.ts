/**
 * Lock storm (not part of `npm test`): C real `centrifuge` SDK clients
 * (default 32) each loop `lock.acquire` → `lock.release` over the client
 * RPC for D seconds (default 5) on F fields of one document (default 8, so
 * clients contend: an acquire of a held field answers 150 and the client
 * tries another field). Memory engine (one node) and Redis (two nodes, the
 * clients split between them), one after the other in the same run.
 * Prints completed acquire/release cycles per second, RPCs per second, the
 * p50/p99 latency of a successful acquire, of a release and of a refused
 * (150) acquire, and the process CPU time per cycle. Clients and nodes
 * share this process, so CPU figures include the clients' side.
 *
 *   npm run build -w @switchboard/server && node packages/server/dist/scripts/lock-storm.js [--clients 32] [--fields 8] [--seconds 5] [--redis redis://127.0.0.1:6379]
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Centrifuge } from 'centrifuge';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import { RedisEngine } from '../src/engine/redis/engine.js';
import { Switchboard } from '../src/node.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '32' },
    fields: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '5' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    engines: { type: 'string', default: 'memory,redis' },
  },
});
const CLIENTS = Number(values.clients);
const FIELDS = Number(values.fields);
const SECONDS = Number(values.seconds);
const SECRET = 'lock-storm-secret-lock-storm-secret';
const DOC = 'quote:storm';

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: 'error' },
    client: { token: { hmac_secret_key: SECRET }, max_protocol_errors: 0 },
    locks: { enabled: true, max_per_connection: 4 },
    channel: { namespaces: [{ name: 'quote', allow_subscribe_for_client: true }] },
    ...extra,
  };
}

async function node(engine?: RedisEngine): Promise<{ sb: Switchboard; url: string; close(): Promise<void> }> {
  const sb = new Switchboard({ config: config(), engine });
  const server = createServer();
  await sb.start();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/connection/websocket`;
  return {
    sb,
    url,
    close: async () => {
      await sb.shutdown();
      server.closeAllConnections();
      server.close();
    },
  };
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function storm(name: string, urls: string[]): Promise<void> {
  const clients: Centrifuge[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const token = await new SignJWT({ sub: `stormer-${i}` }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    const c = new Centrifuge(urls[i % urls.length]!, { websocket: WebSocket, token, timeout: 10_000 });
    const connected = once(c as unknown as NodeJS.EventEmitter, 'connected');
    c.connect();
    await connected;
    const sub = c.newSubscription(DOC);
    const ok = once(sub as unknown as NodeJS.EventEmitter, 'subscribed');
    sub.subscribe();
    await ok;
    clients.push(c);
  }
  const acquireMs: number[] = [];
  const releaseMs: number[] = [];
  const refusedMs: number[] = [];
  let cycles = 0;
  let rpcs = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(
    clients.map(async (c, i) => {
      let f = i % FIELDS;
      while (performance.now() < deadline) {
        const key = `${DOC}/f${f}`;
        const a = performance.now();
        try {
          const l = (await c.rpc('lock.acquire', { key })).data as { token: string };
          rpcs++;
          acquireMs.push(performance.now() - a);
          const r = performance.now();
          await c.rpc('lock.release', { key, token: l.token });
          rpcs++;
          releaseMs.push(performance.now() - r);
          cycles++;
        } catch (e) {
          rpcs++;
          if ((e as { code?: number }).code !== 150) throw e;
          refusedMs.push(performance.now() - a);
          f = (f + 1) % FIELDS;
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  for (const c of clients) c.disconnect();
  const f = (x: number) => x.toFixed(2);
  console.log(
    `${name}: ${CLIENTS} clients, ${FIELDS} fields, ${secs.toFixed(1)} s: ` +
      `${Math.round(cycles / secs)} acquire+release cycles/s, ${Math.round(rpcs / secs)} RPC/s; ` +
      `acquire p50 ${f(pct(acquireMs, 50))} ms p99 ${f(pct(acquireMs, 99))} ms; ` +
      `release p50 ${f(pct(releaseMs, 50))} ms p99 ${f(pct(releaseMs, 99))} ms; ` +
      `refused (150) ${refusedMs.length} p99 ${f(pct(refusedMs, 99))} ms; ` +
      `process CPU ${f(cpuMs / Math.max(1, cycles))} ms per cycle (${f(cpuMs / 1000 / secs)} cores)`,
  );
}

const engines = values.engines.split(',');
if (engines.includes('memory')) {
  const n = await node();
  await storm('memory, 1 node', [n.url]);
  await n.close();
}
if (engines.includes('redis')) {
  const prefix = `lockstorm-${randomBytes(3).toString('hex')}`;
  const cfg = () => loadConfig({ object: config({ engine: { type: 'redis', redis: { address: values.redis, prefix } } }) }).config;
  const a = await node(new RedisEngine(cfg()));
  const b = await node(new RedisEngine(cfg()));
  await storm('redis, 2 nodes', [a.url, b.url]);
  await a.close();
  await b.close();
}
process.exit(0);
