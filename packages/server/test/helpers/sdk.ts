/**
 * The one SDK helper: real `centrifuge` clients over `ws`, disconnected
 * when the test ends; a subscription helper; and a subscriber that records
 * everything it gets (publications, resubscribes, reconnect codes).
 */
import { Centrifuge, type Options, type Subscription, type SubscriptionOptions } from 'centrifuge';
import WebSocket from 'ws';
import type { TestContextLike } from './scope.js';
import { mintToken } from './tokens.js';
import { waitFor } from './wait.js';

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

/**
 * A `centrifuge` client on `ws`, disconnected when the test ends.
 * Not connected yet: call `.connect()` (or use `connectedClient()`).
 */
export function makeClient(t: TestContextLike, server: { readonly ws: string }, opts: Partial<Options> = {}): Centrifuge {
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

/** Makes a client (for `user` with an HS256 token from the server's secret, unless `opts` brings its own) and waits until it is connected. */
export async function connectedClient(
  t: TestContextLike,
  server: { readonly ws: string; readonly secret: string },
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

/** Subscribes `c` to `channel` and resolves once subscribed, with the subscribed context. */
export async function subscribe(
  c: Centrifuge,
  channel: string,
  opts: Partial<SubscriptionOptions> = {},
): Promise<{ sub: Subscription; ctx: any }> {
  const sub = c.newSubscription(channel, opts);
  const ok = waitFor(sub, 'subscribed');
  sub.subscribe();
  return { sub, ctx: await ok };
}

export interface Received {
  readonly client: Centrifuge;
  readonly sub: Subscription;
  /** Offsets and data of every publication, in arrival order. */
  readonly pubs: Array<{ offset: number; data: unknown }>;
  readonly subscribed: Array<{ wasRecovering: boolean; recovered: boolean }>;
  /** Codes of unsubscribe pushes that made the SDK resubscribe (2500 insufficient state, …). */
  readonly unsubscribed: number[];
  /** Codes of the client's transitions to connecting (server disconnects such as 3001). */
  readonly reconnectCodes: number[];
  /** Resolves when `n` publications have arrived (rejects after `ms`). */
  until(n: number, ms?: number): Promise<void>;
  /** Resolves when the subscription has been (re)subscribed `n` times in all. */
  subscribedTimes(n: number, ms?: number): Promise<void>;
}

/** A client for `user`, subscribed to `channel`, recording what it gets; resolves once subscribed. */
export async function subscribedClient(
  t: TestContextLike,
  server: { readonly ws: string; readonly secret: string },
  user: string,
  channel: string,
): Promise<Received> {
  const client = makeClient(t, server, { token: await mintToken(server.secret, { sub: user }) });
  const sub = client.newSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 300 });
  const r: Received = {
    client,
    sub,
    pubs: [],
    subscribed: [],
    unsubscribed: [],
    reconnectCodes: [],
    async until(n, ms = 15_000) {
      if (r.pubs.length >= n) return;
      await waitFor(sub, 'publication', { ms, filter: () => r.pubs.length >= n }).catch(() => {
        throw new Error(`${user}: ${r.pubs.length}/${n} publications after ${ms} ms`);
      });
    },
    async subscribedTimes(n, ms = 10_000) {
      if (r.subscribed.length >= n) return;
      await waitFor(sub, 'subscribed', { ms, filter: () => r.subscribed.length >= n });
    },
  };
  // Registered before any wait, so a waiter's filter sees the event recorded.
  sub.on('publication', (ctx) => r.pubs.push({ offset: Number(ctx.offset), data: ctx.data }));
  sub.on('subscribed', (ctx) => r.subscribed.push({ wasRecovering: !!ctx.wasRecovering, recovered: !!ctx.recovered }));
  sub.on('subscribing', (ctx) => {
    if (ctx.code >= 2000 && ctx.code < 3000) r.unsubscribed.push(ctx.code);
  });
  client.on('connecting', (ctx) => r.reconnectCodes.push(ctx.code));
  const ready = waitFor(sub, 'subscribed', { ms: 10_000 });
  sub.subscribe();
  client.connect();
  await ready;
  return r;
}

/** The offsets a recorded subscriber got, in arrival order. */
export function offsetsOf(r: Received): number[] {
  return r.pubs.map((p) => p.offset);
}

/** [from, from+1, …, to]. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
