/**
 * Loopback networking for the tests: free ports, WebSocket upgrade attempts
 * that report the HTTP status of a refusal, and a TCP proxy standing in for
 * a load balancer.
 */
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import WebSocket from 'ws';
import type { TestContextLike } from './scope.js';

/** A port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

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

/** The HTTP status of an upgrade attempt (101 when it opened; the socket is closed again). */
export async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const o = await tryUpgrade(url, headers);
  if (!o.ok) return o.status;
  o.ws.terminate();
  return 101;
}

/**
 * A TCP proxy standing in for a load balancer: clients keep one address
 * while the test moves the backend (`target`), refuses new connections
 * (`refusing`) or cuts the open ones.
 */
export class TcpProxy {
  target: number;
  refusing = false;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
    target: number,
  ) {
    this.target = target;
  }

  static async start(t: TestContextLike, target: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    const p = new TcpProxy(server, typeof a === 'object' && a ? a.port : 0, target);
    server.on('connection', (c) => p.accept(c));
    t.after(() => p.close());
    return p;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target, '127.0.0.1');
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = (): void => {
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cutAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  close(): void {
    this.cutAll();
    this.server.close();
  }
}
