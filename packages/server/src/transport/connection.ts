import type { IncomingMessage } from 'node:http';
import type { Codec } from '../protocol/codec.js';

/**
 * A connection's outbound side as sessions and the hub see it: a bounded
 * queue of encoded messages that the transport drains in its own frames.
 */
export interface OutboundQueue {
  /** True once the connection is closed or closing: enqueued bytes are dropped. */
  readonly closed: boolean;
  /** Bytes queued and not yet handed to the transport. */
  readonly pendingBytes: number;
  /**
   * Queues a message. `lane`: 0 (replies, `high` channels, the default),
   * 1 `normal`, 2 `low`; a higher lane leaves first when the connection is
   * backed up. 3 + n: a reply or push about a channel of lane n (subscribe,
   * unsubscribe): lane 0, in order with the other replies, unless lane n
   * still holds messages, then behind them (they may be an earlier
   * subscription's publications). `conflation`: channel + key of a
   * publication; while the connection is behind, a queued message with the
   * same id is replaced.
   */
  enqueue(msg: Buffer, lane?: number, conflation?: string): void;
  /** Drops everything queued (a slow consumer's backlog is not worth sending). */
  discard(): void;
  /** Sends what is queued (unless discarded), then closes with the code. */
  close(code: number, reason: string): void;
}

/** What a transport tells the session that owns the connection. */
export interface ConnectionHandler {
  /** One inbound frame (a WebSocket message, an emulation request body, …). */
  onFrame(data: Buffer, isBinary: boolean): void;
  /** The peer went away (or the transport failed); called once. */
  onClosed(): void;
  /** The transport refused input itself (oversize frame, invalid UTF-8, …) and will close. */
  onError(err: Error & { code?: unknown }): void;
  /** The outbound queue passed its limit: the session closes with 3008 (slow). */
  onWriterOverflow(): void;
}

/**
 * One client connection over some transport (WebSocket now; HTTP-streaming,
 * SSE and unidirectional transports next). A session binds to it and never
 * learns which transport or socket library is underneath.
 */
export interface ClientConnection {
  /** The transport's protocol name, as Centrifugo reports it (`websocket`, `sse`, `http_stream`, …). */
  readonly transport: string;
  readonly codec: Codec;
  readonly writer: OutboundQueue;
  /** The request that opened the connection (headers, cookies, URL); released once a handler binds. */
  readonly request: IncomingMessage;
  readonly ip: string;
  /**
   * The session id, when the transport mints it: emulation transports route
   * later requests (`/emulation`) to the connection by this id. Otherwise the
   * session makes one when first asked.
   */
  readonly sessionId?: string;
  /**
   * A unidirectional transport (uni_websocket, uni_sse, uni_http_stream): the
   * client sends one connect request and then only listens. A failed connect
   * becomes a disconnect, and the connect result says nothing of pongs.
   */
  readonly unidirectional?: boolean;
  /**
   * False when nothing ever answers the server's pings (uni_sse,
   * uni_http_stream): such a connection is never closed for a missing pong.
   */
  readonly pongs?: boolean;
  /** Routes inbound frames, the close and overflow to the handler from now on. */
  bind(handler: ConnectionHandler): void;
}
