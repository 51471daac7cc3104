/**
 * Bytes on the wire with and without fossil delta compression (not part of
 * `npm test`): a ~10 KB JSON document is published N times (default 1,000),
 * each time with a small change, into a channel with four real `centrifuge`
 * SDK subscribers in the same run: JSON and Protobuf, each with
 * `delta: 'fossil'` and without. Counts the TCP bytes each client reads
 * after it subscribed (WebSocket framing included), checks that every
 * client rebuilt every document exactly, and prints the ratios.
 *
 *   npm run build && node packages/server/dist/scripts/delta-bytes.js [--updates 1000]
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { Centrifuge, type Subscription } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { Switchboard } from '../src/node.js';

const { values } = parseArgs({ options: { updates: { type: 'string', default: '1000' } } });
const UPDATES = Number(values.updates);
const SECRET = 'delta-bytes-secret-delta-bytes-secret';
const CHANNEL = 'doc:quote-42';

/** The document at version v: ~10 KB of rows; each version changes one row's value and the timestamp. */
function documentAt(v: number): Record<string, unknown> {
  const rows = Array.from({ length: 148 }, (_, i) => ({
    id: i,
    field: `coverage.item.${i}`,
    value: i === v % 148 ? v : i * 3,
    status: i % 3 === 0 ? 'approved' : 'pending',
  }));
  return { quote: 42, version: v, updatedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, v)).toISOString(), rows };
}

/** A `ws` that counts the TCP bytes its socket reads. */
const counters = new Map<string, () => number>();
function countingSocket(name: string): typeof WebSocket {
  const Counting = class extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      super(address, protocols, { ...(options ?? {}), allowSynchronousEvents: false });
      this.once('open', () => {
        const sock = (this as unknown as { _socket: { bytesRead: number } })._socket;
        counters.set(name, () => sock.bytesRead);
      });
    }
  };
  return Counting as unknown as typeof WebSocket;
}

/** Resolves once every probe has received `n` publications (one update at a time, as an edited document changes). */
let wake: (() => void) | null = null;
function received(probes: readonly Probe[], n: number): Promise<void> {
  if (probes.every((p) => p.got.length >= n)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`update ${n} did not reach everyone: ` + probes.map((p) => `${p.name}=${p.got.length}`).join(' '))),
      30_000,
    );
    wake = () => {
      if (!probes.every((p) => p.got.length >= n)) return;
      clearTimeout(timer);
      wake = null;
      resolve();
    };
  });
}

interface Probe {
  name: string;
  sub: Subscription;
  client: Centrifuge;
  decode: (d: unknown) => unknown;
  got: unknown[];
  startBytes: number;
}

async function main(): Promise<void> {
  const sb = new Switchboard({
    config: {
      log: { level: 'error' },
      client: { token: { hmac_secret_key: SECRET } },
      channel: {
        namespaces: [
          {
            name: 'doc',
            allow_subscribe_for_client: true,
            allowed_delta_types: ['fossil'],
            delta_publish: true,
            history_size: 10,
            history_ttl: '60s',
            force_recovery: true,
          },
        ],
      },
    },
  });
  const server = createServer();
  await sb.start();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/connection/websocket`;
  const token = await new SignJWT({ sub: 'bench' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

  const probes: Probe[] = [];
  for (const enc of ['json', 'protobuf'] as const) {
    for (const delta of [false, true]) {
      const name = `${enc} ${delta ? 'delta' : 'full '}`;
      const Ctor = enc === 'json' ? Centrifuge : (ProtobufCentrifuge as unknown as typeof Centrifuge);
      const client = new Ctor(url, { websocket: countingSocket(name), token });
      const connected = once(client as unknown as NodeJS.EventEmitter, 'connected');
      client.connect();
      await connected;
      const sub = client.newSubscription(CHANNEL, delta ? { delta: 'fossil' } : {});
      const decode = enc === 'json' ? (d: unknown) => d : (d: unknown) => JSON.parse(Buffer.from(d as Uint8Array).toString('utf8'));
      const p: Probe = { name, sub, client, decode, got: [], startBytes: 0 };
      sub.on('publication', (ctx) => {
        p.got.push(p.decode(ctx.data));
        wake?.();
      });
      const ok = once(sub as unknown as NodeJS.EventEmitter, 'subscribed');
      sub.subscribe();
      await ok;
      probes.push(p);
    }
  }
  for (const p of probes) p.startBytes = counters.get(p.name)!();

  const docBytes = Buffer.byteLength(JSON.stringify(documentAt(1)));
  for (let v = 1; v <= UPDATES; v++) {
    await sb.publish(CHANNEL, documentAt(v));
    await received(probes, v);
  }
  for (const p of probes) {
    for (let v = 1; v <= UPDATES; v++) {
      if (!isDeepStrictEqual(p.got[v - 1], documentAt(v))) throw new Error(`${p.name}: document ${v} differs`);
    }
  }
  const bytes = new Map(probes.map((p) => [p.name, counters.get(p.name)!() - p.startBytes]));
  console.log(`document: ${docBytes} bytes of JSON, ${UPDATES} updates, every client rebuilt every version exactly`);
  for (const p of probes) {
    const st = p.sub.deltaStats();
    const extra = p.name.includes('delta') ? ` (${st.numDeltaPayloads} deltas, ${st.numFullPayloads} whole)` : '';
    console.log(`${p.name}: ${bytes.get(p.name)} bytes read${extra}`);
  }
  for (const enc of ['json', 'protobuf']) {
    const full = bytes.get(`${enc} full `)!;
    const delta = bytes.get(`${enc} delta`)!;
    console.log(`${enc}: ${(full / delta).toFixed(1)}x fewer bytes with delta`);
  }
  for (const p of probes) p.client.disconnect();
  await sb.shutdown();
  server.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
