/**
 * Cross-site WebSocket hijacking, driven by a real headless Chromium: a page
 * served from another origin (another localhost port) opens
 * `new WebSocket(...)` to Switchboard. A disallowed origin is refused with
 * 403 before the handshake; an allowed one connects and speaks the protocol.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { type BrowserContext } from 'playwright-core';
import { freePort, tryUpgrade } from './helpers/net.js';
import { scope } from './helpers/scope.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { chromiumSkip, hasChromium, launchChromium } from './helpers/browser.js';
import { mintToken } from './helpers/tokens.js';

const skip = chromiumSkip;

const S = scope();
after(() => S.close());

let s: RunningServer;
let goodOrigin: string;
let evilOrigin: string;
let browser: BrowserContext | undefined;

/** A page server on its own port: one HTML page that tries the WebSocket and records what happened. */
async function pageServer(port: number): Promise<Server> {
  const html = `<!doctype html><meta charset="utf-8"><title>cswsh</title><script>
    window.attempt = (url, token) => new Promise((resolve) => {
      const out = { opened: false, messages: [], closeCode: null, error: false };
      const ws = new WebSocket(url);
      ws.onopen = () => { out.opened = true; ws.send(JSON.stringify({ id: 1, connect: { token } })); };
      ws.onmessage = (e) => { out.messages.push(e.data); ws.close(1000); };
      ws.onerror = () => { out.error = true; };
      ws.onclose = (e) => { out.closeCode = e.code; resolve(out); };
    });
  </script>`;
  const srv = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html));
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  S.after(() => new Promise<void>((r) => srv.close(() => r())));
  return srv;
}

before(async () => {
  const [goodPort, evilPort] = await Promise.all([freePort(), freePort()]);
  goodOrigin = `http://127.0.0.1:${goodPort}`;
  evilOrigin = `http://localhost:${evilPort}`;
  s = await startServer(S, { client: { allowed_origins: [goodOrigin, 'https://*.example.com'] } });
  if (!hasChromium) return;
  await Promise.all([pageServer(goodPort), pageServer(evilPort)]);
  browser = await launchChromium(S);
});

interface Attempt {
  opened: boolean;
  messages: string[];
  closeCode: number | null;
  error: boolean;
}

async function attemptFrom(origin: string): Promise<{ result: Attempt; socketErrors: string[] }> {
  const page = await browser!.newPage();
  try {
    const socketErrors: string[] = [];
    page.on('websocket', (ws) => ws.on('socketerror', (e) => socketErrors.push(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') socketErrors.push(m.text());
    });
    await page.goto(origin + '/');
    const token = await mintToken(s.secret, { sub: 'browser-user' });
    const result = (await page.evaluate(
      ([url, tok]) => (window as unknown as { attempt(u: string, t: string): Promise<unknown> }).attempt(url!, tok!),
      [s.ws, token],
    )) as Attempt;
    return { result, socketErrors };
  } finally {
    await page.close();
  }
}

test('Chromium on a disallowed origin: the upgrade is refused with 403, nothing is exchanged', { skip }, async () => {
  const before = await s.metric('switchboard_bad_input_total', { kind: 'origin' });
  const { result, socketErrors } = await attemptFrom(evilOrigin);
  assert.equal(result.opened, false);
  assert.equal(result.error, true);
  assert.equal(result.closeCode, 1006, 'the browser reports a failed handshake');
  assert.deepEqual(result.messages, []);
  // The browser's own report of the handshake names the status.
  assert.ok(
    socketErrors.some((e) => /403/.test(e)),
    `expected a 403 in the browser's errors: ${JSON.stringify(socketErrors)}`,
  );
  // And the server says why.
  assert.equal(await s.metric('switchboard_bad_input_total', { kind: 'origin' }), before + 1);
  assert.ok(s.stdout().includes(evilOrigin), 'the refused origin is logged');
});

test('Chromium on an allowed origin: the socket opens and the connect reply arrives', { skip }, async () => {
  const { result } = await attemptFrom(goodOrigin);
  assert.equal(result.opened, true);
  assert.equal(result.messages.length, 1);
  const reply = JSON.parse(result.messages[0]!) as { id: number; connect?: { client: string } };
  assert.equal(reply.id, 1);
  assert.equal(typeof reply.connect?.client, 'string');
  assert.equal(result.closeCode, 1000);
});

// The same policy without a browser: Origin headers as a script would forge them (no browser needed).
test('Origin policy over raw upgrades: exact, wildcard, lookalikes and the same-host default', async (t) => {
  const status = async (url: string, origin?: string): Promise<number> => {
    const o = await tryUpgrade(url, origin === undefined ? {} : { Origin: origin });
    if (o.ok) {
      o.ws.terminate();
      return 101;
    }
    return o.status;
  };
  assert.equal(await status(s.ws, goodOrigin), 101);
  assert.equal(await status(s.ws, 'https://app.example.com'), 101, 'wildcard subdomain');
  assert.equal(await status(s.ws, evilOrigin), 403);
  assert.equal(await status(s.ws, goodOrigin + '.evil.test'), 403, 'prefix lookalike');
  assert.equal(await status(s.ws, 'https://example.com.evil.test'), 403, 'suffix lookalike of the wildcard');
  assert.equal(await status(s.ws, 'https://evil.test/.example.com'), 403, 'a path cannot satisfy the wildcard');
  assert.equal(await status(s.ws, 'null'), 403, 'sandboxed iframes send Origin: null');
  assert.equal(await status(s.ws, goodOrigin.toUpperCase()), 101, 'origins compare case-insensitively');
  assert.equal(await status(s.ws), 101, 'non-browser clients send no Origin');

  // With no allow-list only same-host origins pass.
  const strict = await startServer(t, { client: { allowed_origins: [] } });
  const host = `http://127.0.0.1:${strict.port}`;
  assert.equal(await status(strict.ws, host), 101);
  assert.equal(await status(strict.ws, `http://localhost:${strict.port}`), 403);
  assert.equal(await status(strict.ws, 'http://127.0.0.1:1'), 403);
});
