/**
 * Peer (b): the naive Node broadcast server, a ceiling for what plain `ws`
 * does. Clients connect, their first message names channels
 * (`{"subscribe":["a","b"]}` → `{"subscribed":2}`); a publish (HTTP API or
 * `{"publish":{"channel","data"}}` from a client) is serialized once and sent
 * to every member of the channel's Set.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { apiHandler, portFromArgs } from './http-api.js';

const channels = new Map<string, Set<WebSocket>>();
let connections = 0;

function publish(channel: string, data: unknown): void {
  const set = channels.get(channel);
  if (!set) return;
  const msg = JSON.stringify({ channel, data });
  for (const c of set) c.send(msg);
}

const api = apiHandler(publish, () => connections);
const server = createServer((req, res) => {
  if (!api(req, res)) res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  connections++;
  const mine: string[] = [];
  ws.on('message', (raw) => {
    let msg: { subscribe?: string[]; publish?: { channel: string; data: unknown } };
    try {
      msg = JSON.parse(raw.toString()) as typeof msg;
    } catch {
      ws.close(1003);
      return;
    }
    if (msg.subscribe) {
      for (const ch of msg.subscribe) {
        let set = channels.get(ch);
        if (!set) channels.set(ch, (set = new Set()));
        set.add(ws);
        mine.push(ch);
      }
      ws.send(JSON.stringify({ subscribed: mine.length }));
    } else if (msg.publish) publish(msg.publish.channel, msg.publish.data);
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    connections--;
    for (const ch of mine) {
      const set = channels.get(ch);
      if (!set) continue;
      set.delete(ws);
      if (set.size === 0) channels.delete(ch);
    }
  });
});
server.listen(portFromArgs(), '127.0.0.1');
// a clean exit on SIGTERM, so that --cpu-prof (BENCH_SERVER_NODE_ARGS) writes its profile
process.on('SIGTERM', () => process.exit(0));
