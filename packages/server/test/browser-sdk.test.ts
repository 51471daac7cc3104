/**
 * The SDK's browser bundles in a real headless Chromium against a server
 * started as a user starts it: `switchboard serve` with no config file (dev
 * mode). The page comes from another localhost origin (a second HTTP server
 * on its own port, as a Vite dev server would serve it), loads
 * `centrifuge/dist/centrifuge.js` or `centrifuge.protobuf.js`, connects
 * over WebSocket (JSON or Protobuf), subscribes, and receives a publication
 * made through the HTTP API.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, type Page } from 'playwright-core';
import { freePort } from './helpers/net.js';
import { scope } from './helpers/scope.js';
import { chromiumSkip, launchChromium } from './helpers/browser.js';
import { type RunningServer, startServer } from './helpers/server.js';

const skip = chromiumSkip;

const TOKEN = /token for user "dev" \(24h\): (\S+)\n/;
const API_KEY = /http_api\.key = (\S+)/;

/** node_modules/centrifuge/dist, found from the package's entry point. */
const DIST = join(dirname(fileURLToPath(import.meta.resolve('centrifuge'))), '..', 'dist');

const S = scope();
after(() => S.close());

let server: RunningServer;
let token: string;
let apiKey: string;
let pageOrigin: string;
let browser: BrowserContext | undefined;

/** One page per bundle; the page records what its client saw. */
function html(bundle: string): string {
  return `<!doctype html><meta charset="utf-8"><title>sdk</title>
<script src="/${bundle}"></script>
<script>
  window.events = [];
  window.pubs = [];
  window.start = (url, token, channel) => new Promise((resolve, reject) => {
    const give = setTimeout(() => reject(new Error('not subscribed in 20 s: ' + JSON.stringify(window.events))), 20000);
    const c = new Centrifuge(url, { token });
    window.client = c;
    c.on('connecting', (ctx) => window.events.push('connecting ' + ctx.code + ' ' + ctx.reason));
    c.on('connected', (ctx) => window.events.push('connected ' + ctx.transport));
    c.on('error', (ctx) => window.events.push('error ' + (ctx.error && ctx.error.message)));
    const sub = c.newSubscription(channel);
    sub.on('publication', (ctx) => {
      const d = ctx.data instanceof Uint8Array ? { bytes: new TextDecoder().decode(ctx.data) } : { json: ctx.data };
      window.pubs.push({ offset: Number(ctx.offset), ...d });
    });
    sub.on('subscribed', () => { clearTimeout(give); resolve(window.events); });
    sub.subscribe();
    c.connect();
  });
</script>`;
}

before(async () => {
  const port = await freePort();
  server = await startServer(S, {}, { noConfig: true, port, args: ['--port', String(port)], output: TOKEN });
  token = TOKEN.exec(server.stdout())![1]!;
  apiKey = API_KEY.exec(server.stdout())![1]!;
  if (skip) return;
  const pages: Record<string, { type: string; body: string | Buffer }> = {
    '/json.html': { type: 'text/html; charset=utf-8', body: html('centrifuge.js') },
    '/protobuf.html': { type: 'text/html; charset=utf-8', body: html('centrifuge.protobuf.js') },
    '/centrifuge.js': { type: 'text/javascript', body: readFileSync(join(DIST, 'centrifuge.js')) },
    '/centrifuge.protobuf.js': { type: 'text/javascript', body: readFileSync(join(DIST, 'centrifuge.protobuf.js')) },
  };
  const pagePort = await freePort();
  const srv = createServer((req, res) => {
    const p = pages[req.url ?? ''];
    if (!p) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': p.type }).end(p.body);
  });
  await new Promise<void>((r) => srv.listen(pagePort, '127.0.0.1', r));
  S.after(() => new Promise<void>((r) => srv.close(() => r())));
  // Another origin than the server's (127.0.0.1:<port>): another name and another port.
  pageOrigin = `http://localhost:${pagePort}`;
  browser = await launchChromium(S);
});

async function publish(channel: string, data: unknown): Promise<number> {
  const r = await fetch(`${server.api}/publish`, {
    method: 'POST',
    headers: { 'X-API-Key': apiKey },
    body: JSON.stringify({ channel, data }),
  });
  const body = (await r.json()) as { result?: { offset: number } };
  assert.ok(body.result, JSON.stringify(body));
  return body.result.offset;
}

/** Opens the page, subscribes its client, publishes through the API; returns what the page got and the socket's frames. */
async function roundTrip(
  page: Page,
  file: string,
  channel: string,
): Promise<{ events: string[]; pubs: unknown[]; frames: { binary: number; text: number }; wsUrl: string }> {
  const frames = { binary: 0, text: 0 };
  let wsUrl = '';
  page.on('websocket', (ws) => {
    wsUrl = ws.url();
    ws.on('framereceived', (f) => (typeof f.payload === 'string' ? frames.text++ : frames.binary++));
  });
  await page.goto(`${pageOrigin}/${file}`);
  const events = (await page.evaluate(([url, tok, ch]) => (window as any).start(url, tok, ch), [server.ws, token, channel])) as string[];
  await publish(channel, { hello: 'browser', channel });
  await page.waitForFunction(() => (window as any).pubs.length >= 1, undefined, { timeout: 20_000 });
  const pubs = (await page.evaluate(() => (window as any).pubs)) as unknown[];
  await page.evaluate(() => (window as any).client.disconnect());
  return { events, pubs, frames, wsUrl };
}

test(
  'Chromium, centrifuge.js (JSON) from another localhost origin: connects to the dev server, subscribes, gets an API publication',
  { skip },
  async () => {
    const page = await browser!.newPage();
    try {
      const r = await roundTrip(page, 'json.html', 'browser-json');
      // A refused origin never connects (the SDK loops in connecting with "transport closed").
      assert.equal(r.events.at(-1), 'connected websocket', JSON.stringify(r.events));
      assert.deepEqual(r.pubs, [{ offset: 1, json: { hello: 'browser', channel: 'browser-json' } }]);
      assert.equal(r.wsUrl, server.ws);
      assert.ok(r.frames.text > 0 && r.frames.binary === 0, `JSON frames are text: ${JSON.stringify(r.frames)}`);
    } finally {
      await page.close();
    }
  },
);

test(
  'Chromium, centrifuge.protobuf.js from another localhost origin: Protobuf over WebSocket, binary frames, the publication decoded',
  { skip },
  async () => {
    const page = await browser!.newPage();
    try {
      const r = await roundTrip(page, 'protobuf.html', 'browser-protobuf');
      assert.equal(r.events.at(-1), 'connected websocket', JSON.stringify(r.events));
      // The Protobuf SDK hands data over as bytes: the JSON the API was given.
      assert.equal(r.pubs.length, 1);
      const got = r.pubs[0] as { offset: number; bytes: string };
      assert.equal(got.offset, 1);
      assert.deepEqual(JSON.parse(got.bytes), { hello: 'browser', channel: 'browser-protobuf' });
      assert.ok(r.frames.binary > 0 && r.frames.text === 0, `Protobuf frames are binary: ${JSON.stringify(r.frames)}`);
    } finally {
      await page.close();
    }
  },
);
