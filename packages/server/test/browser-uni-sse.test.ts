/**
 * A browser's own EventSource on uni_sse, driven by headless Chromium: a
 * page served from another origin (another localhost port) opens
 * `new EventSource('/connection/uni_sse?cf_connect=…')` and receives the
 * connect push and an API publication; a page from a disallowed origin is
 * refused (403) and gets nothing.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { type BrowserContext, type Page } from 'playwright-core';
import { freePort } from './helpers/net.js';
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

const PAGE = `<!doctype html><meta charset="utf-8"><title>uni sse</title><script>
  window.events = [];
  window.failed = false;
  window.listen = (url) => {
    // in the page
    const es = new EventSource(url);
    es.onmessage = (e) => window.events.push(JSON.parse(e.data));
    es.onerror = () => { window.failed = true; es.close(); };
  };
</script>`;

async function pageServer(port: number): Promise<void> {
  const srv = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  S.after(() => new Promise<void>((r) => srv.close(() => r())));
}

before(async () => {
  const [goodPort, evilPort] = await Promise.all([freePort(), freePort()]);
  goodOrigin = `http://127.0.0.1:${goodPort}`;
  evilOrigin = `http://localhost:${evilPort}`;
  s = await startServer(S, { uni_sse: { enabled: true }, client: { allowed_origins: [goodOrigin] } });
  if (!hasChromium) return;
  await Promise.all([pageServer(goodPort), pageServer(evilPort)]);
  browser = await launchChromium(S);
});

async function listenFrom(origin: string, user: string): Promise<Page> {
  const page = await browser!.newPage();
  await page.goto(origin + '/');
  const token = await mintToken(s.secret, { sub: user, channels: ['browser-news'] });
  // the URL it is given: the connect request (with the JWT) in cf_connect
  const url = `${s.http}/connection/uni_sse?cf_connect=${encodeURIComponent(JSON.stringify({ token }))}`;
  await page.evaluate((u) => (window as unknown as { listen(u: string): void }).listen(u), url);
  return page;
}

test('Chromium EventSource from another (allowed) origin: connect push, then an API publication', { skip }, async () => {
  const page = await listenFrom(goodOrigin, 'browser-user');
  try {
    await page.waitForFunction(() => (window as unknown as { events: Array<{ connect?: unknown }> }).events.some((e) => e.connect), null, {
      timeout: 20_000,
    });
    await s.call('publish', { channel: 'browser-news', data: { headline: 'hi from the API' } });
    const pub = await page.waitForFunction(
      () => (window as unknown as { events: Array<{ pub?: unknown }> }).events.find((e) => e.pub),
      null,
      { timeout: 20_000 },
    );
    const got = (await pub.jsonValue()) as { channel: string; pub: { data: unknown } };
    assert.deepEqual([got.channel, got.pub.data], ['browser-news', { headline: 'hi from the API' }]);
  } finally {
    await page.close();
  }
});

test('Chromium EventSource from a disallowed origin: refused (403, counted), no event reaches the page', { skip }, async () => {
  const before = await s.metric('switchboard_bad_input_total', { kind: 'origin' });
  const page = await listenFrom(evilOrigin, 'evil-user');
  try {
    await page.waitForFunction(() => (window as unknown as { failed: boolean }).failed, null, { timeout: 20_000 });
    assert.deepEqual(await page.evaluate(() => (window as unknown as { events: unknown[] }).events), []);
    assert.equal(await s.metric('switchboard_bad_input_total', { kind: 'origin' }), before + 1);
  } finally {
    await page.close();
  }
});
