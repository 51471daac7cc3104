/**
 * Peer (c): Socket.IO 4 with default settings (polling + websocket, its own
 * 25 s heartbeat); channels are rooms, a publish is `io.to(room).emit`.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { apiHandler, portFromArgs } from './http-api.js';

const server = createServer();
const io = new Server(server, { serveClient: false, perMessageDeflate: false, httpCompression: false });

function publish(channel: string, data: unknown): void {
  io.to(channel).emit('pub', channel, data);
}

const api = apiHandler(publish, () => io.engine.clientsCount);
// socket.io installs its own request listener; ours runs first for the API paths
const ioListeners = server.listeners('request');
server.removeAllListeners('request');
server.on('request', (req, res) => {
  if (api(req, res)) return;
  for (const l of ioListeners) (l as (a: typeof req, b: typeof res) => void).call(server, req, res);
});

io.on('connection', (socket) => {
  socket.on('subscribe', (chs: string[], ack?: (n: number) => void) => {
    void socket.join(chs);
    if (typeof ack === 'function') ack(chs.length);
  });
  socket.on('publish', (channel: string, data: unknown) => publish(channel, data));
});
server.listen(portFromArgs(), '127.0.0.1');
