import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { Codec } from '../protocol/codec.js';
import type { ClientConnection, ConnectionHandler } from './connection.js';
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

  constructor(
    ws: WebSocket,
    readonly request: IncomingMessage,
    readonly ip: string,
    readonly codec: Codec,
    maxQueue: number,
  ) {
    this.writer = new Writer(ws, maxQueue);
    (ws as ConnectionSocket)[CONNECTION] = this;
    ws.on('message', onWsMessage);
    ws.on('close', onWsClose);
    ws.on('error', onWsError);
  }

  bind(handler: ConnectionHandler): void {
    this.handler = handler;
    this.writer.owner = handler;
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
