import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { originAllowed } from '../auth/origin.js';
import type { Config } from '../config/load.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClientConnection } from '../transport/connection.js';
import type { Flusher } from '../transport/flusher.js';
import { CONNECT_PARAM, UniHttpEndpoint, checkConnectRequest } from '../transport/uni-http.js';
import { UniWebSocketConnection } from '../transport/uni-websocket.js';
import { WebSocketEndpoint } from '../transport/websocket.js';
import { ipOf, type UpgradeGate } from './upgrade-gate.js';

/**
 * The unidirectional transports (uni_websocket, uni_sse, uni_http_stream),
 * each on when its config section says `enabled`. Connections go through the
 * node's upgrade gate (serving, origin, per-address counts and rates) and
 * are accepted as any other; the node's drain closes them on shutdown.
 */
export class UniTransports {
  private readonly ws: WebSocketEndpoint | undefined;
  private readonly http = new Map<string, UniHttpEndpoint>();
  /** The `cf_connect` of an upgrade, checked before the handshake (400 when malformed), read once accepted. */
  private readonly urlConnect = new WeakMap<IncomingMessage, Buffer>();

  constructor(
    c: Config,
    deps: {
      readonly gate: UpgradeGate;
      readonly metrics: Metrics;
      readonly flusher: Flusher;
      readonly accept: (conn: ClientConnection) => void;
    },
  ) {
    const { gate, metrics, flusher, accept } = deps;
    const maxQueue = c.client.queue_max_size;
    const badInput = (kind: string): void => metrics.badInput.labels(kind).inc();
    const uws = c.uni_websocket;
    if (uws.enabled) {
      this.ws = new WebSocketEndpoint({
        path: uws.handler_prefix,
        maxPayload: uws.message_size_limit,
        check: (req) => {
          const text = connectParam(req);
          if (text !== null) {
            const frame = checkConnectRequest(text);
            if (!frame) {
              badInput('malformed_connect');
              return { status: 400, message: 'invalid connect request' };
            }
            this.urlConnect.set(req, frame);
          }
          return gate.check(req);
        },
        onConnection: (ws, req) =>
          accept(
            new UniWebSocketConnection(
              ws,
              req,
              ipOf(req),
              this.urlConnect.get(req),
              { maxQueue, joinPushMessages: uws.join_push_messages, disconnectPush: !uws.disable_disconnect_push },
              flusher,
            ),
          ),
      });
    }
    for (const transport of ['uni_sse', 'uni_http_stream'] as const) {
      const cfg = c[transport];
      if (!cfg.enabled) continue;
      this.http.set(
        cfg.handler_prefix,
        new UniHttpEndpoint({
          transport,
          maxRequestBodySize: cfg.max_request_body_size,
          maxQueue,
          flusher,
          originAllowed: (req) => originAllowed(req.headers.origin ?? '', req.headers.host, c.client.allowed_origins),
          check: (req) => gate.check(req),
          ipOf,
          badInput,
          onConnection: accept,
        }),
      );
    }
  }

  /** The paths served over plain HTTP requests (uni_sse, uni_http_stream). */
  get httpPaths(): string[] {
    return [...this.http.keys()];
  }

  attach(server: Server): void {
    this.ws?.attach(server);
  }

  /** Serves the request when its path is a unidirectional HTTP endpoint; false otherwise (the caller goes on). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const endpoint = this.http.get(q === -1 ? url : url.slice(0, q));
    if (!endpoint) return false;
    endpoint.handle(req, res);
    return true;
  }

  stopAccepting(): void {
    this.ws?.stopAccepting();
    for (const e of this.http.values()) e.stopAccepting();
  }

  close(): void {
    this.ws?.close();
  }
}

function connectParam(req: IncomingMessage): string | null {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? null : new URLSearchParams(url.slice(q + 1)).get(CONNECT_PARAM);
}
