/**
 * A local HTTP backend for proxy hooks and JWKS: answers JSON from a
 * handler and records every request it was asked.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TestContextLike } from './scope.js';

export interface RecordedRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Record<string, unknown>;
}

export interface Backend {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Requests currently held open (for timeout tests). */
  readonly pending: Set<ServerResponse>;
  /** Stops accepting and drops open connections (backend down). */
  close(): Promise<void>;
}

export type BackendHandler = (req: RecordedRequest, res: ServerResponse) => unknown;

/** A JSON backend on a free local port; `handler` returns the JSON reply body or answers `res` itself (returns undefined). */
export async function startBackend(t: TestContextLike, handler: BackendHandler, port = 0): Promise<Backend> {
  const requests: RecordedRequest[] = [];
  const pending = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw || '{}') as Record<string, unknown>;
      } catch {
        /* recorded as empty */
      }
      const rec: RecordedRequest = { path: req.url ?? '/', headers: req.headers, body };
      requests.push(rec);
      pending.add(res);
      res.on('close', () => pending.delete(res));
      Promise.resolve(handler(rec, res)).then(
        (reply) => {
          if (reply === undefined || res.writableEnded) return;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
        },
        () => res.writeHead(500).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const r of pending) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { url: `http://127.0.0.1:${bound}`, port: bound, requests, pending, close };
}
