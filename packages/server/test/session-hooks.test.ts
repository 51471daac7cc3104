/**
 * Embedder hooks misbehaving: a hook that throws synchronously or a refresh
 * backend that keeps failing must not crash the process or flood the log.
 * Switchboard runs in this process (hooks are functions) on a real HTTP
 * server; clients are raw `ws` sockets.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Switchboard } from '../src/node.js';
import { createLogger } from '../src/observability/logger.js';
import type { Hooks } from '../src/session/hooks.js';
import { RawClient } from './helpers/raw.js';
import type { TestContextLike } from './helpers/scope.js';

interface InProcess {
  readonly sb: Switchboard;
  readonly ws: string;
  readonly logLines: string[];
}

async function inProcess(t: TestContextLike, hooks: Hooks, config: Record<string, unknown> = {}): Promise<InProcess> {
  const logLines: string[] = [];
  const logger = createLogger('info', { write: (s: string) => void logLines.push(s) });
  const sb = new Switchboard({ config: { client: { allowed_origins: ['*'] }, ...config }, hooks, logger });
  const http: Server = createServer();
  await sb.start();
  sb.attach(http);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.after(async () => {
    await sb.shutdown();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });
  const port = (http.address() as AddressInfo).port;
  return { sb, ws: `ws://127.0.0.1:${port}/connection/websocket`, logLines };
}

const inSeconds = (s: number): number => Math.floor(Date.now() / 1000) + s;

/** Resolves when `cond` holds, polling on the event loop (the events are the server's own timers). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('an onRefresh hook that throws synchronously is retried, not a crash', async (t) => {
  let calls = 0;
  const s = await inProcess(t, {
    onConnecting: () => ({ user: 'u1', expireAt: inSeconds(1) }),
    onRefresh: () => {
      calls++;
      if (calls === 1) throw new Error('backend bug');
      return { expireAt: inSeconds(60) };
    },
  });
  const c = await RawClient.open(t, s);
  const reply = await c.command('connect', {});
  assert.ok(reply.connect, 'connected through the hook');
  await until(() => calls >= 2, 5000, 'the refresh hook retried after its throw');
  assert.equal(c.closeCode, undefined, 'the connection stays up once the retry succeeds');
  assert.equal(s.sb.hub.clients.size, 1);
});

test('an onSubRefresh hook that throws synchronously is retried, not a crash', async (t) => {
  let calls = 0;
  const s = await inProcess(t, {
    onConnecting: () => ({ user: 'u1' }),
    onSubscribe: () => ({ expireAt: inSeconds(1) }),
    onSubRefresh: () => {
      calls++;
      if (calls === 1) throw new Error('backend bug');
      return { expireAt: inSeconds(60) };
    },
  });
  const c = await RawClient.open(t, s);
  assert.ok((await c.command('connect', {})).connect);
  assert.ok((await c.command('subscribe', { channel: 'news' })).subscribe);
  await until(() => calls >= 2, 5000, 'the sub refresh hook retried after its throw');
  assert.ok(!c.messages.some((m) => m.push?.unsubscribe), 'the subscription stays');
  assert.equal(c.closeCode, undefined);
});

test('a failing refresh backend logs once per interval, not once per client per second', async (t) => {
  let calls = 0;
  const s = await inProcess(t, {
    onConnecting: () => ({ user: 'u1', expireAt: inSeconds(1) }),
    onRefresh: async () => {
      calls++;
      throw new Error('backend down');
    },
  });
  const clients: RawClient[] = [];
  for (let i = 0; i < 5; i++) {
    const c = await RawClient.open(t, s);
    assert.ok((await c.command('connect', {})).connect);
    clients.push(c);
  }
  // Every client retries about once a second: wait for at least three rounds of failures.
  await until(() => calls >= 15, 8000, 'three rounds of failing refreshes');
  const warnings = s.logLines.filter((l) => l.includes('refresh hook failed'));
  assert.equal(warnings.length, 1, `${warnings.length} warnings for ${calls} failed refreshes`);
  for (const c of clients) assert.equal(c.closeCode, undefined, 'a failing backend does not cut clients off');
});
