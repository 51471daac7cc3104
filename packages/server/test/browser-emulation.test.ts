/**
 * The emulation transports in a real headless Chromium: a page served from
 * another origin (another localhost port) loads the SDK's browser bundle
 * (`centrifuge/dist/centrifuge.js`, or `centrifuge.protobuf.js`), connects
 * over http_stream (JSON and Protobuf) and sse with the browser's own fetch,
 * streams and EventSource (CORS preflights included), and receives a
 * publication made through the HTTP API. A page on a disallowed origin
 * never connects.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { type BrowserContext, type Page } from 'playwright-core';
import { freePort } from './helpers/net.js';
import { scope } from './helpers/scope.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken } from './helpers/tokens.js';
import { chromiumSkip, hasChromium, launchChromium } from './helpers/browser.js';
import { until } from './helpers/wait.js';

const skip = chromiumSkip;

const S = scope();
after(() => S.close());

const require = createRequire(import.meta.url);
// the package's main entry is build/index.js; the browser bundles sit in dist/ beside build/
const DIST = join(dirname(require.resolve('centrifuge')), '..', 'dist');

let s: RunningServer;
let pageOrigin: string;
let evilOrigin: string;
let browser: BrowserContext | undefined;

const PAGE = `<!doctype html><meta charset="utf-8"><title>emulation</title><script src="sdk.js"></script><script>
  window.open_ = (base, kind, token, channel) => new Promise((resolve, reject) => {
    const c = new Centrifuge([{ transport: kind, endpoint: base + '/connection/' + kind }], {
      token, emulationEndpoint: base + '/emulation', timeout: 10000, minReconnectDelay: 100, maxReconnectDelay: 500,
    });
    window.client = c;
    window.pubs = [];
    const out = { transport: null };
    c.on('connected', (ctx) => { out.transport = ctx.transport; });
    c.on('error', (e) => { window.lastError = e; if (window.failFast) resolve({ failed: true, error: String(e.error && e.error.message) }); });
    const sub = c.newSubscription(channel);
    sub.on('publication', (ctx) => {
      const binary = ctx.data instanceof Uint8Array;
      window.pubs.push({ binary, data: binary ? JSON.parse(new TextDecoder().decode(ctx.data)) : ctx.data });
    });
    sub.on('subscribed', () => resolve(out));
    c.connect();
    sub.subscribe();
  });
</script>`;

async function pageServer(port: number): Promise<void> {
  const sdk = {
    json: readFileSync(join(DIST, 'centrifuge.js')),
    protobuf: readFileSync(join(DIST, 'centrifuge.protobuf.js')),
  };
  const srv = createServer((req, res) => {
    if (req.url === '/sdk.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk.json);
    if (req.url === '/pb/sdk.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk.protobuf);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  S.after(() => {
    srv.closeAllConnections();
    return new Promise<void>((r) => srv.close(() => r()));
  });
}

before(async () => {
  const [pagePort, evilPort] = await Promise.all([freePort(), freePort()]);
  pageOrigin = `http://127.0.0.1:${pagePort}`;
  evilOrigin = `http://localhost:${evilPort}`;
  s = await startServer(S, {
    client: { allowed_origins: [pageOrigin] },
    http_stream: { enabled: true },
    sse: { enabled: true },
    channel: { without_namespace: { allow_subscribe_for_client: true } },
  });
  if (!hasChromium) return;
  await Promise.all([pageServer(pagePort), pageServer(evilPort)]);
  browser = await launchChromium(S);
});

async function openPage(origin: string, protobuf: boolean): Promise<Page> {
  const page = await browser!.newPage();
  // the Protobuf bundle under /pb/ (the page's relative script src picks it)
  await page.goto(origin + (protobuf ? '/pb/' : '/'));
  return page;
}

for (const v of [
  { kind: 'http_stream', protobuf: false },
  { kind: 'http_stream', protobuf: true },
  { kind: 'sse', protobuf: false },
] as const) {
  test(
    `Chromium on another origin: ${v.kind}${v.protobuf ? ' (Protobuf bundle)' : ''} connects and receives an API publication`,
    { skip },
    async () => {
      const page = await openPage(pageOrigin, v.protobuf);
      try {
        const token = await mintToken(s.secret, { sub: `browser-${v.kind}` });
        const channel = `browser-${v.kind}-${v.protobuf}`;
        const opened = (await page.evaluate(
          ([base, kind, tok, ch]) => (window as unknown as { open_(...a: string[]): Promise<unknown> }).open_(base!, kind!, tok!, ch!),
          [s.http, v.kind, token, channel],
        )) as { transport: string };
        assert.equal(opened.transport, v.kind);
        await s.call('publish', { channel, data: { hello: 'browser' } });
        let pubs: unknown[] = [];
        await until('the publication in the page', 15_000, async () => {
          pubs = (await page.evaluate(() => (window as unknown as { pubs: unknown[] }).pubs)) as unknown[];
          return pubs.length > 0;
        });
        // the Protobuf bundle gets the payload as bytes, so this also shows which encoding carried it
        assert.deepEqual(pubs, [{ binary: v.protobuf, data: { hello: 'browser' } }]);
      } finally {
        await page.evaluate(() => (window as unknown as { client?: { disconnect(): void } }).client?.disconnect()).catch(() => {});
        await page.close();
      }
    },
  );
}

test('Chromium on a disallowed origin: the stream is refused (403) and counted; the page never connects', { skip }, async () => {
  const before = await s.metric('switchboard_bad_input_total', { kind: 'origin' });
  const page = await openPage(evilOrigin, false);
  try {
    const token = await mintToken(s.secret, { sub: 'evil' });
    const r = (await page.evaluate(
      ([base, tok]) => {
        (window as unknown as { failFast: boolean }).failFast = true;
        return (window as unknown as { open_(...a: string[]): Promise<unknown> }).open_(base!, 'http_stream', tok!, 'nope');
      },
      [s.http, token],
    )) as { failed?: boolean };
    assert.equal(r.failed, true);
    assert.ok((await s.metric('switchboard_bad_input_total', { kind: 'origin' })) >= before + 1);
  } finally {
    await page.evaluate(() => (window as unknown as { client?: { disconnect(): void } }).client?.disconnect()).catch(() => {});
    await page.close();
  }
});
