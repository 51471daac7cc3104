/**
 * Small helpers for the security, fuzz, flood and proxy tests: upgrade
 * attempts that report the HTTP status of a refused handshake, a local
 * HTTP backend that records what it was asked, and a counter of a child
 * process's open handles read from /proc.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readdirSync } from 'node:fs';
import WebSocket from 'ws';
import type { TestContextLike } from './server.js';

/** The result of one upgrade attempt: the socket when it opened, or the HTTP status that refused it. */
export type UpgradeOutcome = { ok: true; ws: WebSocket } | { ok: false; status: number; body: string };

/** Tries a WebSocket upgrade with the given headers; resolves once it opened or was refused. */
export function tryUpgrade(url: string, headers: Record<string, string> = {}, ms = 5000): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: ms });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`upgrade to ${url} neither opened nor was refused within ${ms} ms`));
    }, ms);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ ok: true, ws });
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ ok: false, status: res.statusCode ?? 0, body });
      });
      res.on('error', () => undefined);
    });
    ws.once('error', (e) => {
      clearTimeout(timer);
      // 'unexpected-response' handles refusals; an error before it is a transport failure.
      reject(e);
    });
  });
}

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

/** Open file descriptors of a process (sockets, timers' fds, files) as /proc shows them; -1 where /proc is missing. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Resident set size of a process in bytes from /proc/PID/status; -1 where /proc is missing. */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(s);
    return m ? Number(m[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** Resolves when `cond()` holds, checking on each `poll` ms; rejects after `ms`. For state with no event to await (a child's metrics). */
export async function eventually(cond: () => Promise<boolean> | boolean, ms: number, what: string, poll = 50): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, poll));
  }
}
