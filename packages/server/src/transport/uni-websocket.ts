import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import { Disconnects } from '../protocol/codes.js';
import { UNI_PING, uniDisconnectPush, uniJsonCodec } from '../protocol/uni-json.js';
import type { ClientConnection, ConnectionHandler } from './connection.js';
import type { Flusher } from './flusher.js';
import { LANES, Writer } from './writer.js';

const EMPTY = Buffer.alloc(0);

// Socket listeners shared by all connections (found through the socket), not closures per connection.
const CONNECTION = Symbol('switchboard.uniConnection');
type UniSocket = WebSocket & { [CONNECTION]: UniWebSocketConnection };
function onWsMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as UniSocket)[CONNECTION].received(data, isBinary);
}
function onWsPong(this: WebSocket): void {
  (this as UniSocket)[CONNECTION].handler?.onFrame(EMPTY, false);
}
function onWsClose(this: WebSocket): void {
  (this as UniSocket)[CONNECTION].socketClosed();
}
function onWsError(this: WebSocket, err: Error): void {
  (this as UniSocket)[CONNECTION].handler?.onError(err);
}

/**
 * The writer of a unidirectional WebSocket: one frame per push (clients
 * parse each frame as one JSON value) unless `join_push_messages`; each
 * application ping (`{}`) goes with a WebSocket ping frame, whose pong is the
 * liveness signal (uni clients never answer `{}`, browsers answer frame
 * pings by themselves); before a server-side close, a disconnect push.
 */
class UniWebSocketWriter extends Writer {
  constructor(
    private readonly wsock: WebSocket,
    private readonly limit: number,
    flusher: Flusher,
    join: boolean,
    private readonly disconnectPush: boolean,
  ) {
    super(wsock, limit, flusher, false, join);
  }

  override enqueue(msg: Buffer, lane?: number, conflation?: string): void {
    if (msg === UNI_PING && !this.closed && this.wsock.readyState === 1) this.wsock.ping();
    // the lane and conflation id go on: a uni_websocket has the bidirectional writer's priorities and conflation
    super.enqueue(msg, lane, conflation);
  }

  override close(code: number, reason: string, terminateAfterMs?: number): void {
    if (this.closed) return;
    if (this.disconnectPush && code !== Disconnects.connectionClosed.code) {
      const push = uniDisconnectPush(code, reason);
      if (this.pendingBytes + push.length > this.limit) this.discard();
      // the last lane, so it follows whatever is still queued in any lane
      super.enqueue(push, LANES - 1);
    }
    super.close(code, reason, terminateAfterMs);
  }
}

export interface UniWebSocketOptions {
  readonly maxQueue: number;
  readonly joinPushMessages: boolean;
  readonly disconnectPush: boolean;
}

/**
 * A unidirectional WebSocket connection (Centrifugo's uni_websocket): the
 * connect request comes in the `cf_connect` URL parameter or as the first
 * message; later messages are read and ignored.
 */
export class UniWebSocketConnection implements ClientConnection {
  readonly transport = 'uni_websocket';
  readonly codec = uniJsonCodec;
  readonly unidirectional = true;
  readonly writer: UniWebSocketWriter;
  handler: ConnectionHandler | undefined;
  private req: IncomingMessage | undefined;
  /** Whether the connect request was handed to the session (later messages are ignored). */
  private connectSeen = false;

  constructor(
    ws: WebSocket,
    request: IncomingMessage,
    readonly ip: string,
    /** The `cf_connect` parameter, when the request carried one. */
    private readonly urlConnect: Buffer | undefined,
    opts: UniWebSocketOptions,
    flusher: Flusher,
  ) {
    this.req = request;
    this.writer = new UniWebSocketWriter(ws, opts.maxQueue, flusher, opts.joinPushMessages, opts.disconnectPush);
    (ws as UniSocket)[CONNECTION] = this;
    ws.on('message', onWsMessage);
    ws.on('pong', onWsPong);
    ws.on('close', onWsClose);
    ws.on('error', onWsError);
  }

  get request(): IncomingMessage {
    if (!this.req) throw new Error('the upgrade request is released once a session binds');
    return this.req;
  }

  bind(handler: ConnectionHandler): void {
    this.handler = handler;
    this.writer.owner = handler;
    this.req = undefined;
    const frame = this.urlConnect;
    if (frame) {
      this.connectSeen = true;
      // after the session's constructor has returned
      queueMicrotask(() => handler.onFrame(frame, false));
    }
  }

  received(data: RawData, isBinary: boolean): void {
    if (this.connectSeen) return;
    this.connectSeen = true;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    // An empty first message is no connect request: bad input, not the transport's pong.
    this.handler?.onFrame(buf.length === 0 ? Buffer.from(' ') : buf, isBinary);
  }

  socketClosed(): void {
    this.writer.closed = true;
    this.handler?.onClosed();
  }
}
