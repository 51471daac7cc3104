/**
 * Clients for the integration tests: the real `centrifuge` SDK over `ws`,
 * tokens minted with `jose`, and a raw `ws` client for what the SDK cannot
 * express (garbage frames, never answering pings, never reading).
 */
import { EventEmitter } from 'node:events';
import { Centrifuge, type Options } from 'centrifuge';
import { SignJWT, type JWTPayload } from 'jose';
import WebSocket from 'ws';
import type { RunningServer, TestContextLike } from './server.js';

export { WebSocket };

/**
 * `ws` with `allowSynchronousEvents: false`, i.e. one 'message' event per
 * turn of the event loop, as browsers dispatch WebSocket messages.
 *
 * Why: with `ws`'s default (true) several frames that arrive in one TCP read
 * are emitted in the same tick, and centrifuge-js 5.7.4 (`_dataReceived` in
 * node_modules/centrifuge/build/index.mjs) chains each frame's dispatch on a
 * promise it replaces before the previous frame's replies are done, so
 * publications from different frames interleave (1,2,3,4,5,9,6,10,…) even
 * though the server wrote them in order (a raw `ws` client sees them in
 * order). That is a client bug in Node only; the tests use browser event
 * semantics so they check the server, and client-pubsub checks the wire order
 * with a raw client as well.
 */
export class BrowserLikeWebSocket extends WebSocket {
  constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions) {
    super(address, protocols, { ...(options ?? {}), allowSynchronousEvents: false });
  }
}

/** Mints an HS256 JWT with `claims`; `exp` is an absolute unix time in seconds (omitted → no expiry). */
export async function mintToken(secret: string, claims: JWTPayload & Record<string, unknown>, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

/** A token with `alg: none` (no signature), as an attacker would craft it. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
}

export const nowSec = (): number => Math.floor(Date.now() / 1000);

/**
 * A `centrifuge` client on `ws`, disconnected when the test ends.
 * Not connected yet: call `.connect()` (or use `connected()`).
 */
export function makeClient(t: TestContextLike, server: Pick<RunningServer, 'ws'>, opts: Partial<Options> = {}): Centrifuge {
  const c = new Centrifuge(server.ws, {
    websocket: BrowserLikeWebSocket,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
    ...opts,
  });
  t.after(() => c.disconnect());
  return c;
}

/** Makes a client for `user` (HS256 token from the server's secret) and waits until it is connected. */
export async function connectedClient(
  t: TestContextLike,
  server: Pick<RunningServer, 'ws' | 'secret'>,
  user: string,
  claims: Record<string, unknown> = {},
  opts: Partial<Options> = {},
): Promise<Centrifuge> {
  const token = await mintToken(server.secret, { sub: user, ...claims });
  const c = makeClient(t, server, { token, ...opts });
  const connected = waitFor(c, 'connected');
  c.connect();
  await connected;
  return c;
}

interface Emitterish {
  on(event: string, fn: (...a: any[]) => void): unknown;
  removeListener(event: string, fn: (...a: any[]) => void): unknown;
}

/** Resolves with the next `event` (optionally one that passes `filter`); rejects after `ms`. */
export function waitFor<T = any>(em: Emitterish, event: string, ms = 5000, filter: (v: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      em.removeListener(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    const on = (v: T): void => {
      if (!filter(v)) return;
      clearTimeout(timer);
      em.removeListener(event, on);
      resolve(v);
    };
    em.on(event, on);
  });
}

/** Collects every `event` payload into an array; `until(n)` resolves when n have arrived. */
export function collect<T = any>(em: Emitterish, event: string): { items: T[]; until(n: number, ms?: number): Promise<T[]> } {
  const items: T[] = [];
  const waiters: Array<{ n: number; resolve: (v: T[]) => void }> = [];
  em.on(event, (v: T) => {
    items.push(v);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (items.length >= waiters[i]!.n) {
        waiters[i]!.resolve(items);
        waiters.splice(i, 1);
      }
    }
  });
  return {
    items,
    until(n, ms = 10_000) {
      if (items.length >= n) return Promise.resolve(items);
      return new Promise((resolve, reject) => {
        const w = { n, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i !== -1) {
            waiters.splice(i, 1);
            reject(new Error(`timed out after ${ms} ms: ${items.length}/${n} "${event}" events`));
          }
        }, ms).unref();
      });
    },
  };
}

/**
 * A raw protocol client over `ws`: sends what it is told, answers pings only
 * when asked to, records every message and the close code.
 */
export class RawClient extends EventEmitter {
  readonly messages: any[] = [];
  readonly frames: string[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;

  constructor(
    readonly ws: WebSocket,
    public answerPings = true,
  ) {
    super();
    ws.on('message', (data: WebSocket.RawData) => {
      const text = data.toString();
      this.frames.push(text);
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let msg: any;
        try {
          msg = JSON.parse(line);
        } catch {
          msg = { unparsable: line };
        }
        this.messages.push(msg);
        if (msg && typeof msg === 'object' && Object.keys(msg).length === 0) {
          this.emit('ping');
          if (this.answerPings && ws.readyState === WebSocket.OPEN) ws.send('{}');
        }
        this.emit('message', msg);
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve({ code, reason: this.closeReason });
      }),
    );
    ws.on('error', () => undefined);
  }

  static async open(t: TestContextLike, server: Pick<RunningServer, 'ws'>, opts: { answerPings?: boolean } = {}): Promise<RawClient> {
    const ws = new WebSocket(server.ws);
    const c = new RawClient(ws, opts.answerPings ?? true);
    t.after(() => {
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  send(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** Sends one command with a fresh id; resolves with its reply. */
  async command(method: string, params: unknown = {}, ms = 5000): Promise<any> {
    const id = this.nextId++;
    const reply = this.reply(id, ms);
    this.ws.send(JSON.stringify({ id, [method]: params }));
    return reply;
  }

  reply(id: number, ms = 5000): Promise<any> {
    const found = this.messages.find((m) => m && m.id === id);
    if (found) return Promise.resolve(found);
    return waitFor(this, 'message', ms, (m: any) => m && m.id === id);
  }

  async connect(token: string): Promise<any> {
    const r = await this.command('connect', { token });
    if (r.error) throw new Error(`connect failed: ${JSON.stringify(r.error)}`);
    return r.connect;
  }

  /** Resolves with the close code; rejects if the socket is still open after `ms`. */
  async closedWithin(ms = 5000): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Rejects with a clear message when `p` does not settle within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
