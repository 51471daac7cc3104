import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Codec } from '../protocol/codec.js';
import type { ClientConnection, ConnectionHandler } from './connection.js';
import { disconnectPush } from './disconnect-push.js';
import type { Flusher } from './flusher.js';
import type { StreamFraming } from './stream-framing.js';
import { StreamWriter } from './stream-writer.js';

// Response listeners shared by all connections (found through the response), not closures per connection.
const CONNECTION = Symbol('switchboard.stream-connection');
type ConnectionResponse = ServerResponse & { [CONNECTION]: StreamConnection };
function onResponseClose(this: ServerResponse): void {
  (this as ConnectionResponse)[CONNECTION].responseClosed();
}

/**
 * A bidirectional connection emulated over HTTP (http_stream, sse): replies
 * and pushes stream down one long response; commands arrive as separate
 * `/emulation` requests naming `sessionId` and are handed in as frames.
 */
export class StreamConnection implements ClientConnection {
  readonly writer: StreamWriter;
  /** The id `/emulation` requests name; the session reports it in its connect reply. */
  readonly sessionId = randomUUID();
  handler: ConnectionHandler | undefined;
  private req: IncomingMessage | undefined;
  /** Called once when the connection is gone (the endpoint forgets the session id). */
  onGone: ((c: StreamConnection) => void) | undefined;

  constructor(
    readonly transport: 'http_stream' | 'sse',
    request: IncomingMessage,
    res: ServerResponse,
    readonly ip: string,
    readonly codec: Codec,
    framing: StreamFraming,
    maxQueue: number,
    flusher: Flusher,
  ) {
    this.req = request;
    this.writer = new StreamWriter(res, maxQueue, flusher, framing, (code, reason) => disconnectPush(codec, code, reason));
    (res as ConnectionResponse)[CONNECTION] = this;
    res.on('close', onResponseClose);
  }

  get request(): IncomingMessage {
    if (!this.req) throw new Error('the connect request is released once a session binds');
    return this.req;
  }

  bind(handler: ConnectionHandler): void {
    this.handler = handler;
    this.writer.owner = handler;
    this.req = undefined;
  }

  /** Commands from an emulation request (or the connect request's body). */
  received(data: Buffer): void {
    this.handler?.onFrame(data, this.codec.encoding === 'protobuf');
  }

  responseClosed(): void {
    this.writer.closed = true;
    this.onGone?.(this);
    this.onGone = undefined;
    this.handler?.onClosed();
  }
}
