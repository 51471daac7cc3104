/**
 * Fan-out over the unidirectional transports next to the bidirectional
 * WebSocket, in one run on one embedded node: N clients of one transport
 * (server-side subscribed to one channel by the onConnecting hook), M
 * publications, time until every client has every publication. The clients
 * live in the same process (one core for both sides), so read the ratios
 * between transports, not the absolute rates.
 *
 *   npm run build && nice -n 10 node packages/server/dist/scripts/uni-fanout.js [N] [M]
 */
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { Switchboard } from '../src/node.js';

const N = Number(process.argv[2] ?? 500);
const M = Number(process.argv[3] ?? 200);
const PUB = /"pub":/g;

type Kind = 'websocket' | 'uni_websocket' | 'uni_websocket_joined' | 'uni_sse' | 'uni_http_stream';

async function run(kind: Kind): Promise<number> {
  const sb = new Switchboard({
    config: {
      log: { level: 'error' },
      uni_websocket: { enabled: true, join_push_messages: kind === 'uni_websocket_joined' },
      uni_sse: { enabled: true },
      uni_http_stream: { enabled: true },
      client: { allow_anonymous_connect_without_token: true, connection_limit_per_ip: 0 },
    },
    hooks: { onConnecting: () => ({ user: 'bench', channels: ['bench'] }) },
  });
  const server = createServer((req, res) => {
    if (!sb.handleUniRequest(req, res)) res.writeHead(404).end();
  });
  await sb.start();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const counts = new Array<number>(N).fill(0);
  let done = 0;
  let resolveAll: () => void = () => undefined;
  const all = new Promise<void>((r) => (resolveAll = r));
  const onText = (i: number, text: string): void => {
    const before = counts[i]!;
    counts[i] = before + (text.match(PUB)?.length ?? 0);
    if (before < M && counts[i]! >= M && ++done === N) resolveAll();
  };
  const closers: Array<() => void> = [];
  const connected: Array<Promise<unknown>> = [];
  for (let i = 0; i < N; i++) {
    if (kind === 'websocket' || kind === 'uni_websocket' || kind === 'uni_websocket_joined') {
      const ws = new WebSocket(`ws://${base}/connection/${kind === 'websocket' ? kind : 'uni_websocket'}`);
      closers.push(() => ws.terminate());
      connected.push(
        new Promise<void>((r) => {
          ws.once('message', () => r());
          ws.once('open', () => ws.send(kind === 'websocket' ? '{"id":1,"connect":{}}' : '{}'));
          ws.on('message', (d) => onText(i, d.toString()));
          ws.on('ping', () => undefined);
        }),
      );
    } else {
      connected.push(
        new Promise<void>((r) => {
          const req = request(`http://${base}/connection/${kind}`, { method: 'POST' }, (res) => {
            res.setEncoding('utf8');
            res.once('data', () => r());
            res.on('data', (d: string) => onText(i, d));
          });
          closers.push(() => req.destroy());
          req.end('{}');
        }),
      );
    }
  }
  await Promise.all(connected);
  const started = performance.now();
  for (let k = 0; k < M; k++) {
    await sb.publish('bench', { k, text: 'a publication of about a hundred bytes, as the app sends them' });
    if (k % 10 === 9) await new Promise((r) => setImmediate(r));
  }
  await all;
  const ms = performance.now() - started;
  for (const c of closers) c();
  await sb.shutdown();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  return ms;
}

const results: Array<[Kind, number]> = [];
for (const kind of ['websocket', 'uni_websocket', 'uni_websocket_joined', 'uni_sse', 'uni_http_stream'] as const)
  results.push([kind, await run(kind)]);
const ws = results[0]![1];
console.log(`N=${N} clients, M=${M} publications, ${N * M} deliveries per transport`);
for (const [kind, ms] of results) {
  console.log(
    `${kind.padEnd(21)} ${ms.toFixed(0).padStart(6)} ms  ${((N * M) / (ms / 1000)).toFixed(0).padStart(8)} deliveries/s  x${(ws / ms).toFixed(2)} vs websocket`,
  );
}
