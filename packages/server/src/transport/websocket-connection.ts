import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { Codec } from '../protocol/codec.js';
import type { ClientConnection, ConnectionHandler } from './connection.js';
import type { Flusher } from './flusher.js';
import { Writer } from './writer.js';

// Socket listeners shared by all connections (found through the socket), not closures per connection.
const CONNECTION = Symbol('switchboard.connection');
type ConnectionSocket = WebSocket & { [CONNECTION]: WebSocketConnection };
function onWsMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as ConnectionSocket)[CONNECTION].received(data, isBinary);
}
function onWsClose(this: WebSocket): void {
  (this as ConnectionSocket)[CONNECTION].socketClosed();
}
function onWsError(this: WebSocket, err: Error): void {
  (this as ConnectionSocket)[CONNECTION].handler?.onError(err);
}

/** A bidirectional WebSocket connection: frames in, the writer's frames out. */
export class WebSocketConnection implements ClientConnection {
  readonly transport = 'websocket';
  readonly writer: Writer;
  handler: ConnectionHandler | undefined;
  /** Released when a session binds (it keeps what it needs): a request is ~1 KB per connection. */
  private req: IncomingMessage | undefined;
  private readonly socket: Socket;
  private address: string | undefined;

  constructor(
    ws: WebSocket,
    request: IncomingMessage,
    readonly codec: Codec,
    maxQueue: number,
    flusher: Flusher,
  ) {
    this.req = request;
    this.socket = request.socket;
    this.writer = new Writer(ws, maxQueue, flusher, codec.encoding === 'protobuf');
    (ws as ConnectionSocket)[CONNECTION] = this;
    ws.on('message', onWsMessage);
    ws.on('close', onWsClose);
    ws.on('error', onWsError);
  }

  /**
   * The peer's address, asked of the socket when first needed (a getpeername
   * syscall, ~5–10 µs: most connections never need it unless a per-address
   * limit is on), then kept. 'unknown' once the socket is gone.
   */
  get ip(): string {
    return (this.address ??= this.socket.remoteAddress ?? 'unknown');
  }

  get request(): IncomingMessage {
    if (!this.req) throw new Error('the upgrade request is released once a session binds');
    return this.req;
  }

  bind(handler: ConnectionHandler): void {
    this.handler = handler;
    this.writer.owner = handler;
    this.req = undefined;
  }

  received(data: RawData, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.handler?.onFrame(buf, isBinary);
  }

  socketClosed(): void {
    this.writer.closed = true;
    this.handler?.onClosed();
  }
}
