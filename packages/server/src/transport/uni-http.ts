import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseParams } from '../protocol/params.js';
import { Disconnects } from '../protocol/codes.js';
import { uniDisconnectPush, uniJsonCodec } from '../protocol/uni-json.js';
import type { ClientConnection, ConnectionHandler } from './connection.js';
import type { Flusher } from './flusher.js';
import { AffixFraming } from './stream-framing.js';
import { StreamWriter } from './stream-writer.js';
import type { UpgradeRefusal } from './websocket.js';

/** The URL parameter that carries the connect request (uni_sse GET, uni_websocket), as Centrifugo names it. */
export const CONNECT_PARAM = 'cf_connect';

/**
 * A connect request as text → its bytes for the session, or undefined when it
 * is not a JSON object with connect fields of the right types (HTTP 400,
 * as Centrifugo answers a malformed connect request).
 */
export function checkConnectRequest(text: string): Buffer | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  try {
    parseParams('connect', parsed as Record<string, unknown>);
  } catch {
    return undefined;
  }
  return Buffer.from(text);
}

/**
 * Framings of their own (not the emulation's instances): each keeps a
 * one-entry cache of the last framed push, and uni pushes are other bytes
 * than the emulation's replies, so sharing one would reframe per writer.
 */
const UNI_SSE_FRAMING = new AffixFraming('text/event-stream; charset=utf-8', 'data: ', '\n\n');
const UNI_NDJSON_FRAMING = new AffixFraming('application/json; charset=utf-8', '', '\n');

/** A server-side close ends the stream with a disconnect push; a client that went away gets none. */
function uniFarewell(code: number, reason: string): Buffer | undefined {
  return code === Disconnects.connectionClosed.code ? undefined : uniDisconnectPush(code, reason);
}

/** A unidirectional connection over one HTTP response (uni_sse, uni_http_stream). */
export class UniHttpConnection implements ClientConnection {
  readonly codec = uniJsonCodec;
  readonly unidirectional = true;
  readonly pongs = false;
  readonly writer: StreamWriter;
  handler: ConnectionHandler | undefined;
  private req: IncomingMessage | undefined;

  constructor(
    readonly transport: 'uni_sse' | 'uni_http_stream',
    request: IncomingMessage,
    res: ServerResponse,
    readonly ip: string,
    private readonly connect: Buffer,
    maxQueue: number,
    flusher: Flusher,
  ) {
    this.req = request;
    this.writer = new StreamWriter(res, maxQueue, flusher, transport === 'uni_sse' ? UNI_SSE_FRAMING : UNI_NDJSON_FRAMING, uniFarewell);
    res.on('close', () => {
      this.writer.closed = true;
      this.handler?.onClosed();
    });
  }

  get request(): IncomingMessage {
    if (!this.req) throw new Error('the request is released once a session binds');
    return this.req;
  }

  bind(handler: ConnectionHandler): void {
    this.handler = handler;
    this.writer.owner = handler;
    this.req = undefined;
    const frame = this.connect;
    queueMicrotask(() => handler.onFrame(frame, false));
  }
}

export interface UniHttpEndpointOptions {
  readonly transport: 'uni_sse' | 'uni_http_stream';
  readonly maxRequestBodySize: number;
  readonly maxQueue: number;
  readonly flusher: Flusher;
  /** The origin allow-list check (auth/origin.ts through the node's gate). */
  readonly originAllowed: (req: IncomingMessage) => boolean;
  /** The node's connection checks (serving, per-address counts and rates); a refusal is answered with its status. */
  readonly check: (req: IncomingMessage) => UpgradeRefusal | undefined;
  readonly ipOf: (req: IncomingMessage) => string;
  /** Bad input, by kind (counted in metrics). */
  readonly badInput: (kind: string) => void;
  readonly onConnection: (conn: UniHttpConnection) => void;
}

/**
 * The HTTP side of uni_sse (GET with `cf_connect`, or POST with the connect
 * request as body) and uni_http_stream (POST with the connect request as
 * body). Takes Node's request and response, so any HTTP framework can hand
 * them over. CORS as Centrifugo: an allowed Origin is echoed with
 * credentials; unlike Centrifugo, a disallowed Origin is refused (403), as
 * WebSocket upgrades are.
 */
export class UniHttpEndpoint {
  private accepting = true;

  constructor(private readonly opts: UniHttpEndpointOptions) {}

  stopAccepting(): void {
    this.accepting = false;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const { opts } = this;
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!opts.originAllowed(req)) {
        opts.badInput('origin');
        return refuse(res, 403, 'origin not allowed');
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
      const asked = req.headers['access-control-request-headers'];
      if (typeof asked === 'string' && asked !== '' && asked !== 'null') res.setHeader('Access-Control-Allow-Headers', asked);
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(200, { 'Access-Control-Allow-Methods': opts.transport === 'uni_sse' ? 'GET, POST' : 'POST' }).end();
      return;
    }
    if (method !== 'POST' && !(method === 'GET' && opts.transport === 'uni_sse')) {
      opts.badInput('http_405');
      return refuse(res, 405, 'method not allowed');
    }
    if (!this.accepting) return refuse(res, 503, 'shutting down');
    if (method === 'GET') {
      const url = new URL(req.url ?? '/', 'http://x');
      const text = url.searchParams.get(CONNECT_PARAM);
      // No parameter: an empty connect request (a connect proxy or anonymous access may accept it).
      return this.start(req, res, text === null ? Buffer.from('{}') : checkConnectRequest(text));
    }
    readBody(req, opts.maxRequestBodySize, (body) => {
      if (body === 'too_big') {
        opts.badInput('message_too_big');
        // the rest of the body is not read: close the connection after the answer
        res.setHeader('Connection', 'close');
        return refuse(res, 413, 'request body too large');
      }
      if (body === 'error') return;
      this.start(req, res, checkConnectRequest(body.toString('utf8')));
    });
  }

  private start(req: IncomingMessage, res: ServerResponse, connect: Buffer | undefined): void {
    const { opts } = this;
    if (!connect) {
      opts.badInput('malformed_connect');
      return refuse(res, 400, 'invalid connect request');
    }
    const refusal = opts.check(req);
    if (refusal) return refuse(res, refusal.status, refusal.message);
    if (res.destroyed) return;
    const headers: Record<string, string> = {
      'Cache-Control': 'private, no-cache, no-store, must-revalidate, max-age=0',
      Pragma: 'no-cache',
      Expires: '0',
      'X-Accel-Buffering': 'no',
      'Content-Type': opts.transport === 'uni_sse' ? 'text/event-stream; charset=utf-8' : 'application/json; charset=utf-8',
    };
    if (req.httpVersionMajor === 1) headers.Connection = 'keep-alive';
    res.writeHead(200, headers);
    // Headers out now: an EventSource opens (and fetch resolves) before the connect push.
    if (opts.transport === 'uni_sse') res.write('\r\n');
    else res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    opts.onConnection(new UniHttpConnection(opts.transport, req, res, opts.ipOf(req), connect, opts.maxQueue, opts.flusher));
  }
}

function readBody(req: IncomingMessage, limit: number, done: (body: Buffer | 'too_big' | 'error') => void): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return done('too_big');
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (v: Buffer | 'too_big' | 'error'): void => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    done(v);
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limit) {
      req.pause();
      return finish('too_big');
    }
    chunks.push(chunk);
  };
  req.on('data', onData);
  req.once('end', () => finish(Buffer.concat(chunks)));
  req.once('error', () => finish('error'));
}

function refuse(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return void res.end();
  const body = JSON.stringify({ error: { message } });
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
}
