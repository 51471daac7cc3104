import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { PROTOBUF_SUBPROTOCOL } from '../protocol/select.js';

/**
 * ws's own choice (the first subprotocol offered), but the Protobuf one as
 * our constant: ws keeps the chosen name on every socket, and a string cut
 * from each request's header is 40 bytes per Protobuf connection.
 */
function chooseSubprotocol(protocols: Set<string>): string | false {
  const first = protocols.values().next().value;
  if (first === undefined) return false;
  return first === PROTOBUF_SUBPROTOCOL ? PROTOBUF_SUBPROTOCOL : first;
}

export interface UpgradeRefusal {
  readonly status: number;
  readonly message: string;
}

export interface WebSocketEndpointOptions {
  readonly path: string;
  /** Frames above this close the connection with 1009 before they are buffered. */
  readonly maxPayload: number;
  /** permessage-deflate, off unless given; memory per connection is bounded by no context takeover and small windows. */
  readonly compression?: { readonly threshold: number; readonly level: number };
  /** Decide before the handshake; a refusal answers the HTTP upgrade with that status. */
  readonly check: (req: IncomingMessage) => UpgradeRefusal | undefined;
  readonly onConnection: (ws: WebSocket, req: IncomingMessage) => void;
}

/**
 * The WebSocket endpoint: attaches to any Node HTTP server's `upgrade`
 * event (plain http, Fastify, Express) and hands accepted sockets over.
 */
export class WebSocketEndpoint {
  private readonly wss: WebSocketServer;
  private readonly servers = new Map<Server, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  private accepting = true;

  constructor(private readonly opts: WebSocketEndpointOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxPayload,
      perMessageDeflate: opts.compression
        ? {
            threshold: opts.compression.threshold,
            zlibDeflateOptions: { level: opts.compression.level, memLevel: 7 },
            serverNoContextTakeover: true,
            clientNoContextTakeover: true,
            serverMaxWindowBits: 10,
            concurrencyLimit: 10,
          }
        : false,
      clientTracking: false,
      skipUTF8Validation: false,
      handleProtocols: chooseSubprotocol,
    });
  }

  attach(server: Server): void {
    if (this.servers.has(server)) return;
    const handler = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.onUpgrade(server, req, socket, head);
    this.servers.set(server, handler);
    server.on('upgrade', handler);
  }

  detach(server: Server): void {
    const handler = this.servers.get(server);
    if (handler) server.off('upgrade', handler);
    this.servers.delete(server);
  }

  /** Refuse new upgrades from now on (shutdown). */
  stopAccepting(): void {
    this.accepting = false;
  }

  private onUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== this.opts.path) {
      // Another upgrade handler on the same server may own this path.
      if (server.listenerCount('upgrade') > 1) return;
      refuse(socket, 404, 'not found');
      return;
    }
    socket.on('error', destroyOnError);
    if (!this.accepting) {
      refuse(socket, 503, 'shutting down');
      return;
    }
    const refusal = this.opts.check(req);
    if (refusal) {
      refuse(socket, refusal.status, refusal.message);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opts.onConnection(ws, req));
  }

  close(): void {
    for (const s of [...this.servers.keys()]) this.detach(s);
    this.wss.close();
  }
}

/** Not a closure: a closure here would keep the upgrade request alive as long as the socket. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ error: { message } });
  socket.end(
    `HTTP/1.1 ${status} ${httpStatusText(status)}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function httpStatusText(status: number): string {
  return (
    (
      { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' } as Record<
        number,
        string
      >
    )[status] ?? 'Error'
  );
}
