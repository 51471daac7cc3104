/**
 * Takes the admin UI screenshots of docs/ADMIN.md (docs/images/admin-*.png):
 * a node with the dashboard on, a few real `centrifuge` clients and some
 * publications, then headless Chromium logs in and takes the pictures.
 *
 *   npm run screenshots -w @switchboard/server
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Centrifuge } from 'centrifuge';
import { SignJWT } from 'jose';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { startServer } from '../src/server.js';

const OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../docs/images');
const PASSWORD = 'screenshot-password';
const SECRET = 'screenshot-token-secret';

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const server = await startServer({
    config: {
      http_server: { port: 0, address: '127.0.0.1' },
      node: { name: 'switchboard-1' },
      admin: { enabled: true, password: PASSWORD, secret: 'screenshot-admin-secret' },
      client: { token: { hmac_secret_key: SECRET } },
      channel: {
        without_namespace: { allow_subscribe_for_client: true, presence: true, history_size: 50, history_ttl: '10m' },
      },
      log: { level: 'warn' },
    },
  });
  const base = `http://127.0.0.1:${server.port}`;
  const clients: Centrifuge[] = [];
  const people: Array<[string, string[], Record<string, string>]> = [
    ['agent-ada', ['quote-1042', 'agents'], { name: 'Ada', team: 'motor' }],
    ['agent-ben', ['quote-1042', 'agents'], { name: 'Ben', team: 'motor' }],
    ['agent-cho', ['agents'], { name: 'Cho', team: 'home' }],
    ['customer-77', ['notifications-77'], { name: 'Customer 77' }],
  ];
  try {
    for (const [user, channels, info] of people) {
      const token = await new SignJWT({ info })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user)
        .sign(new TextEncoder().encode(SECRET));
      const c = new Centrifuge(`ws://127.0.0.1:${server.port}/connection/websocket`, {
        websocket: WebSocket,
        token,
        name: 'quoting-web',
        version: '2.4.0',
      });
      clients.push(c);
      const subscribed = channels.map((ch) => {
        const sub = c.newSubscription(ch);
        const ok = new Promise((resolve, reject) => {
          sub.once('subscribed', resolve);
          sub.once('error', (e) => reject(new Error(`${user} on ${ch}: ${JSON.stringify(e)}`)));
        });
        sub.subscribe();
        return ok;
      });
      c.connect();
      await Promise.all(subscribed);
    }
    const sb = server.switchboard;
    for (let i = 1; i <= 6; i++) {
      await sb.publish('quote-1042', { event: 'quote.progress', step: i, of: 6 });
      await new Promise((r) => setTimeout(r, 300));
    }
    await sb.publish('quote-1042', { event: 'quote.decision', decision: 'accepted', premium: 412.5 });

    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}/admin/`);
      await page.getByTestId('password').waitFor();
      await page.screenshot({ path: join(OUT, 'admin-login.png') });
      await page.getByTestId('password').fill(PASSWORD);
      await page.getByTestId('login').click();
      await page.getByTestId('connections-table').getByText('agent-ada').first().waitFor({ timeout: 20_000 });
      // a few samples for the charts
      await page.waitForFunction(
        () => Number(document.querySelector<HTMLElement>('[data-testid="chart-connections"]')?.dataset.points) >= 3,
        null,
        {
          timeout: 30_000,
        },
      );
      await page.getByTestId('inspect-channel').fill('quote-1042');
      await page.getByTestId('inspect').click();
      await page.getByTestId('history-table').getByText('quote.decision').waitFor({ timeout: 20_000 });
      await page.getByTestId('publish-channel').fill('quote-1042');
      await page.getByTestId('publish-data').fill('{"event": "note", "text": "call the customer back"}');
      await page.getByTestId('publish').click();
      await page.getByTestId('publish-result').getByText('published').waitFor({ timeout: 20_000 });
      await page.screenshot({ path: join(OUT, 'admin-dashboard.png'), fullPage: true });
      console.log(`wrote ${join(OUT, 'admin-login.png')} and ${join(OUT, 'admin-dashboard.png')}`);
    } finally {
      await browser.close();
    }
  } finally {
    for (const c of clients) c.disconnect();
    await server.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
