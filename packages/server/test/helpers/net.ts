/**
 * Loopback networking for the tests: free ports, WebSocket upgrade attempts
 * that report the HTTP status of a refusal, and a TCP proxy standing in for
 * a load balancer.
 */
import type { IncomingMessage } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import WebSocket from 'ws';
import type { TestContextLike } from './scope.js';

/** True when `port` can be bound on 127.0.0.1 now. */
export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Ports this process has handed out already (never twice). */
const handedOut = new Set<number>();

/**
 * A port free on 127.0.0.1 right now, for a server a test starts in another
 * process. Picked at random below the kernel's ephemeral range (32768+):
 * there the client sockets of every test running at the same time take
 * their source ports, and one of them could take the port between this
 * check and the server's listen (seen as EADDRINUSE, or a test talking to
 * another test's server). Redis Cluster tests use 10000-14999 and their bus
 * ports 20000-24999 (helpers/redis-cluster.ts).
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const p = 25000 + Math.floor(Math.random() * 7700);
    if (handedOut.has(p)) continue;
    if (await bindable(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error('no free port in 25000-32699');
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
