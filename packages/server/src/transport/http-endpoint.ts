import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Codec } from '../protocol/codec.js';
import { jsonCodec } from '../protocol/json.js';
import { protobufCodec } from '../protocol/protobuf.js';
import type { ClientConnection } from './connection.js';
import { EmulationRequestError, parseEmulationRequest, type EmulationRequest } from './emulation.js';
import type { Flusher } from './flusher.js';
import { httpStreamIsProtobuf, httpStreamJson, httpStreamProtobuf } from './http-stream.js';
import { sseConnectData, sseFraming } from './sse.js';
import type { StreamFraming } from './stream-framing.js';
import { StreamConnection } from './stream-connection.js';
import type { UpgradeRefusal } from './websocket.js';

export const HTTP_STREAM_PATH = '/connection/http_stream';
export const SSE_PATH = '/connection/sse';
export const EMULATION_PATH = '/emulation';

export interface HttpEndpointOptions {
  readonly nodeId: string;
  readonly httpStream: { readonly enabled: boolean; readonly max_request_body_size: number };
  readonly sse: { readonly enabled: boolean; readonly max_request_body_size: number };
  readonly emulation: { readonly max_request_body_size: number };
  /** Outbound queue limit per connection (client.queue_max_size). */
  readonly maxQueue: number;
  readonly flusher: Flusher;
  /** The WebSocket upgrade's gate: serving, per-address and node connection limits and rates. */
  readonly check: (req: IncomingMessage) => UpgradeRefusal | undefined;
  /** The WebSocket origin policy, for a request carrying an Origin header. */
  readonly originAllowed: (origin: string, req: IncomingMessage) => boolean;
  readonly ipOf: (req: IncomingMessage) => string;
  /** Starts a session on an accepted connection. */
  readonly accept: (conn: ClientConnection) => void;
  /**
   * Sends an emulation request to the node named in it (through the
   * engine's control channel) and resolves whether that node held the
   * session, or undefined when it did not answer; undefined when there are
   * no other nodes.
   */
  readonly forward: ((req: EmulationRequest) => Promise<boolean | undefined>) | undefined;
  /** Counts refused input (metrics label). */
  readonly bad: (reason: string) => void;
  readonly warn: (obj: Record<string, unknown>, msg: string) => void;
}

const STREAM_HEADERS: Record<string, string> = {
  'cache-control': 'private, no-cache, no-store, must-revalidate, max-age=0',
  pragma: 'no-cache',
  expires: '0',
  // nginx and friends: do not buffer a stream
  'x-accel-buffering': 'no',
};
/** Request headers a preflight may ask for (a header name is a token). */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/**
 * The bidirectional emulation transports over plain HTTP, as centrifuge-js
 * uses them when WebSocket is blocked: `POST /connection/http_stream` and
 * `GET|POST /connection/sse` open a long response that carries replies and
 * pushes; the client's later commands come as `POST /emulation` requests
 * naming the session (and node) from the connect reply. A request for a
 * session on another node is forwarded there through the engine's control
 * channel. Cross-origin browsers get the WebSocket origin policy, with CORS
 * headers and preflight answers.
 */
export class HttpEndpoint {
  private readonly sessions = new Map<string, StreamConnection>();
  private accepting = true;
  private readonly forget = (c: StreamConnection): void => {
    this.sessions.delete(c.sessionId);
  };

  constructor(private readonly opts: HttpEndpointOptions) {}

  /** Whether any emulation transport is on. */
  get enabled(): boolean {
    return this.opts.httpStream.enabled || this.opts.sse.enabled;
  }

  /** Connections held by this endpoint (open streams). */
  get size(): number {
    return this.sessions.size;
  }

  /** Refuse new streams from now on (shutdown); emulation requests for live sessions still pass. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Whether the request is for one of these endpoints (then `handle` answers it). */
  owns(req: IncomingMessage): boolean {
    const path = pathOf(req);
    if (path === HTTP_STREAM_PATH) return this.opts.httpStream.enabled;
    if (path === SSE_PATH) return this.opts.sse.enabled;
    if (path === EMULATION_PATH) return this.enabled;
    return false;
  }

  /** Answers a request for one of these endpoints; false (untouched) for any other. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.owns(req)) return false;
    const path = pathOf(req);
    if (!this.cors(req, res)) return true;
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': path === SSE_PATH ? 'GET, POST, OPTIONS' : 'POST, OPTIONS',
        'access-control-max-age': '600',
      });
      res.end();
      return true;
    }
    let work: Promise<void> | undefined;
    if (path === EMULATION_PATH) {
      if (req.method === 'POST') work = this.emulate(req, res);
      else this.refuse(req, res, 405, 'method not allowed', 'emulation_method');
    } else if (path === HTTP_STREAM_PATH) {
      if (req.method === 'POST') {
        const binary = httpStreamIsProtobuf(req.headers['content-type']);
        work = this.open(
          req,
          res,
          'http_stream',
          binary ? protobufCodec : jsonCodec,
          binary ? httpStreamProtobuf : httpStreamJson,
          undefined,
        );
      } else {
        this.refuse(req, res, 405, 'method not allowed', 'stream_method');
      }
    } else if (req.method === 'GET') {
      const data = sseConnectData(req);
      if (data) work = this.open(req, res, 'sse', jsonCodec, sseFraming, data);
      else this.refuse(req, res, 400, 'cf_connect parameter required', 'stream_no_connect');
    } else if (req.method === 'POST') {
      work = this.open(req, res, 'sse', jsonCodec, sseFraming, undefined);
    } else {
      this.refuse(req, res, 405, 'method not allowed', 'stream_method');
    }
    // an unexpected failure answers 500 (or ends the stream) and is logged; never an unhandled rejection
    work?.catch((e: unknown) => {
      this.opts.warn({ err: String(e), path }, 'emulation transport request failed');
      if (!res.headersSent) this.refuse(req, res, 500, 'internal server error', undefined);
      else res.destroy();
    });
    return true;
  }

  /**
   * CORS for a request with an Origin: the same origins the WebSocket
   * endpoint accepts get their origin echoed back; others get 403.
   */
  private cors(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    if (!this.opts.originAllowed(origin, req)) {
      this.refuse(req, res, 403, 'origin not allowed', 'origin');
      return false;
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('vary', 'Origin');
    const asked = req.headers['access-control-request-headers'];
    if (typeof asked === 'string' && HEADER_LIST.test(asked)) res.setHeader('access-control-allow-headers', asked);
    return true;
  }

  private async open(
    req: IncomingMessage,
    res: ServerResponse,
    transport: 'http_stream' | 'sse',
    codec: Codec,
    framing: StreamFraming,
    connectData: Buffer | undefined,
  ): Promise<void> {
    if (!this.accepting) return this.refuse(req, res, 503, 'shutting down', undefined);
    let data = connectData;
    if (!data) {
      const limit = transport === 'sse' ? this.opts.sse.max_request_body_size : this.opts.httpStream.max_request_body_size;
      const body = await readBody(req, limit);
      if (body === TOO_LARGE) return this.refuse(req, res, 413, 'request body too large', 'stream_too_large');
      if (body === ABORTED) return;
      if (body.length === 0) return this.refuse(req, res, 400, 'connect command required in the body', 'stream_no_connect');
      data = body;
    }
    if (res.destroyed) return;
    // Checked with the body in hand, just before the stream opens: a check before the await would let
    // streams whose bodies come late all pass the per-address count before any of them is counted.
    if (!this.accepting) return this.refuse(req, res, 503, 'shutting down', undefined);
    const refusal = this.opts.check(req);
    if (refusal) return this.refuse(req, res, refusal.status, refusal.message, undefined);
    res.writeHead(200, { ...STREAM_HEADERS, 'content-type': framing.contentType });
    res.flushHeaders();
    const conn = new StreamConnection(transport, req, res, this.opts.ipOf(req), codec, framing, this.opts.maxQueue, this.opts.flusher);
    this.sessions.set(conn.sessionId, conn);
    conn.onGone = this.forget;
    this.opts.accept(conn);
    conn.received(data);
  }

  private async emulate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, this.opts.emulation.max_request_body_size);
    if (body === TOO_LARGE) return this.refuse(req, res, 413, 'request body too large', 'emulation_too_large');
    if (body === ABORTED) return;
    let er: EmulationRequest;
    try {
      er = parseEmulationRequest(body, httpStreamIsProtobuf(req.headers['content-type']));
    } catch (e) {
      if (!(e instanceof EmulationRequestError)) throw e;
      return this.refuse(req, res, 400, 'malformed emulation request: ' + e.message, 'emulation_malformed');
    }
    if (this.deliver(er)) return done(res);
    const forward = this.opts.forward;
    if (er.node === '' || er.node === this.opts.nodeId || !forward) {
      return this.refuse(req, res, 404, 'session not found', 'emulation_unknown_session');
    }
    let found: boolean | undefined;
    try {
      found = await forward(er);
    } catch (e) {
      this.opts.warn({ err: String(e) }, 'emulation request not forwarded');
      return this.refuse(req, res, 503, 'could not reach the node holding the session', undefined);
    }
    if (found === undefined) return this.refuse(req, res, 504, 'no answer from the node named in the request', 'emulation_unknown_node');
    if (!found) return this.refuse(req, res, 404, 'session not found', 'emulation_unknown_session');
    done(res);
  }

  /** Hands an emulation request's commands to the session here, if it is here. */
  deliver(er: EmulationRequest): boolean {
    const conn = this.sessions.get(er.session);
    if (!conn) return false;
    conn.received(er.data);
    return true;
  }

  private refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string, reason: string | undefined): void {
    if (reason) this.opts.bad(reason);
    if (res.headersSent || res.destroyed) return;
    const body = JSON.stringify({ error: { code: status, message } });
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    // a body we refused to read is drained and dropped, never buffered
    if (!req.complete) req.resume();
  }
}

function done(res: ServerResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(204);
  res.end();
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const TOO_LARGE = Symbol('too large');
const ABORTED = Symbol('aborted');

/** The request body, up to `limit` bytes; TOO_LARGE past it (the rest is left unread), ABORTED if the peer went away. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | typeof TOO_LARGE | typeof ABORTED> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(TOO_LARGE);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        cleanup();
        resolve(TOO_LARGE);
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onAbort = (): void => {
      cleanup();
      resolve(ABORTED);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}
