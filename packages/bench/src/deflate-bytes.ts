#!/usr/bin/env node
/**
 * Bytes on the wire with and without permessage-deflate (websocket.compression),
 * per publication, for the JSON and Protobuf encodings and three payload shapes.
 *
 *   npm run build && node packages/bench/dist/src/deflate-bytes.js [--pubs 200]
 *
 * Starts `switchboard serve` twice (compression off, on; defaults otherwise:
 * compression_min_size 256, level 1), connects the real `centrifuge` SDK over
 * `ws` (which offers permessage-deflate), publishes through the HTTP API one
 * publication at a time (one WebSocket message each, the case deflate without
 * context takeover handles worst), and counts the bytes read on the client's
 * TCP socket. Prints a Markdown table.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';
import { freePort, installExitHooks, killAllSync, sleep, spawnTracked, type Spawned } from './proc.js';
import { SWITCHBOARD_CLI } from './sut/systems.js';

const PUBS = Number(process.argv[process.argv.indexOf('--pubs') + 1] || 200) || 200;

/** A small status event, a typical app event, a larger document (sizes are of their JSON). */
const PAYLOADS: Record<string, (i: number) => unknown> = {
  'small (status, ~60 B)': (i) => ({ type: 'agent.online', agent: `agent-${i % 50}`, at: 1764633600 + i }),
  'medium (quote event, ~750 B)': (i) => ({
    type: 'quote.updated',
    quote: `Q-${100000 + i}`,
    items: Array.from({ length: 10 }, (_, k) => ({ field: `coverage_${k}`, value: k * 100 + i, status: 'pending', locked: false })),
  }),
  'large (document, ~4.7 KB)': (i) => ({
    type: 'quote.snapshot',
    quote: `Q-${100000 + i}`,
    lines: Array.from({ length: 60 }, (_, k) => ({
      id: k,
      product: `product-${k % 7}`,
      premium: Math.round(((k + 1) * 1234.5 + i) * 100) / 100,
      note: `line ${k} of quote ${i}`,
    })),
  }),
};

class CountedWebSocket extends WebSocket {
  static last: CountedWebSocket | undefined;
  tcp: Socket | undefined;
  constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions) {
    super(address, protocols, { ...(options ?? {}), allowSynchronousEvents: false });
    CountedWebSocket.last = this;
    this.once('upgrade', (res: IncomingMessage) => (this.tcp = res.socket as Socket));
  }
}

async function startServer(compression: boolean): Promise<{ proc: Spawned; port: number; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-deflate-'));
  const cfg = {
    http_server: { port, address: '127.0.0.1' },
    client: { allow_anonymous_connect_without_token: true, token: { hmac_secret_key: 'bytes-secret' } },
    http_api: { key: 'bytes-key' },
    channel: { without_namespace: { allow_subscribe_for_anonymous: true } },
    websocket: { compression },
    log: { level: 'warn' },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const proc = spawnTracked(process.execPath, [SWITCHBOARD_CLI, 'serve', '--config', join(dir, 'config.json')]);
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return { proc, port, dir };
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`server did not start: ${proc.tail()}`);
}

async function measure(
  port: number,
  protobuf: boolean,
  channel: string,
  payload: (i: number) => unknown,
): Promise<{ wire: number; json: number; deflate: boolean }> {
  const url = `ws://127.0.0.1:${port}/connection/websocket`;
  const opts = { websocket: CountedWebSocket };
  const c = protobuf ? new ProtobufCentrifuge(url, opts) : new Centrifuge(url, opts);
  const sub = c.newSubscription(channel);
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  sub.on('publication', () => {
    if (++got === PUBS) done();
  });
  const subscribed = new Promise<void>((r) => sub.once('subscribed', () => r()));
  sub.subscribe();
  c.connect();
  await subscribed;
  const ws = CountedWebSocket.last!;
  const wire0 = ws.tcp!.bytesRead;
  let json = 0;
  for (let i = 0; i < PUBS; i++) {
    const data = payload(i);
    json += JSON.stringify(data).length;
    const r = await fetch(`http://127.0.0.1:${port}/api/publish`, {
      method: 'POST',
      headers: { 'X-API-Key': 'bytes-key' },
      body: JSON.stringify({ channel, data }),
    });
    if (!r.ok) throw new Error(`publish: HTTP ${r.status}`);
  }
  await Promise.race([all, sleep(30_000).then(() => Promise.reject(new Error(`${got}/${PUBS} publications arrived`)))]);
  const wire = ws.tcp!.bytesRead - wire0;
  const deflate = ws.extensions.includes('permessage-deflate');
  c.disconnect();
  return { wire, json, deflate };
}

async function main(): Promise<void> {
  installExitHooks();
  const rows: string[] = [];
  const results = new Map<string, number>();
  for (const compression of [false, true]) {
    const { proc, port, dir } = await startServer(compression);
    try {
      for (const protobuf of [false, true]) {
        for (const [name, payload] of Object.entries(PAYLOADS)) {
          const enc = protobuf ? 'Protobuf' : 'JSON';
          const r = await measure(port, protobuf, `${enc}-${name.split(' ')[0]}`, payload);
          if (r.deflate !== compression) throw new Error(`deflate negotiated: ${r.deflate}, expected ${compression}`);
          results.set(`${enc}|${name}|${compression}`, r.wire / PUBS);
          results.set(`${enc}|${name}|json`, r.json / PUBS);
        }
      }
    } finally {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  rows.push('| encoding | payload | payload JSON B | wire B/pub, off | wire B/pub, deflate | on/off |');
  rows.push('|---|---|---:|---:|---:|---:|');
  for (const enc of ['JSON', 'Protobuf'])
    for (const name of Object.keys(PAYLOADS)) {
      const off = results.get(`${enc}|${name}|false`)!;
      const on = results.get(`${enc}|${name}|true`)!;
      const json = results.get(`${enc}|${name}|json`)!;
      rows.push(`| ${enc} | ${name} | ${json.toFixed(0)} | ${off.toFixed(0)} | ${on.toFixed(0)} | ${(on / off).toFixed(2)} |`);
    }
  process.stdout.write(
    `${PUBS} publications per row, one WebSocket message each; wire = bytes read on the client's TCP socket\n\n${rows.join('\n')}\n`,
  );
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`deflate-bytes failed: ${String((e as Error)?.stack ?? e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAllSync());
