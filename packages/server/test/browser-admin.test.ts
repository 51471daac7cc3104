/**
 * The admin dashboard end to end, in a real headless Chromium against
 * `switchboard serve`: a wrong password is refused, the right one logs in,
 * the node and then a real `centrifuge` client's connection appear live,
 * the publish console reaches that client, and "Disconnect user" closes it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type BrowserContext, type Page } from 'playwright-core';
import { nodeConfig, SHARED_REDIS, uniquePrefix } from './helpers/redis.js';
import { scope } from './helpers/scope.js';
import { subscribedClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { chromiumSkip, hasChromium, launchChromium } from './helpers/browser.js';
import { waitFor } from './helpers/wait.js';

const skip = chromiumSkip;

const PASSWORD = 'e2e-admin-password';
/** Generous: the box is loaded; these are waits for something to appear, never timed assertions. */
const APPEAR_MS = 20_000;

const S = scope();
after(() => S.close());

let s: RunningServer;
let browser: BrowserContext | undefined;

before(async () => {
  s = await startServer(
    S,
    {
      admin: { enabled: true, password: PASSWORD, secret: 'e2e-admin-secret-0123456789' },
      node: { name: 'e2e-node' },
      channel: { without_namespace: { allow_subscribe_for_client: true, presence: true, history_size: 10, history_ttl: '60s' } },
      log: { level: 'warn' },
    },
    { timeoutMs: 60_000 },
  );
  if (!hasChromium) return;
  browser = await launchChromium(S);
});

async function loggedIn(page: Page): Promise<void> {
  await page.goto(`${s.http}/admin/`);
  await page.getByTestId('password').fill(PASSWORD);
  await page.getByTestId('login').click();
  await page.getByTestId('nodes-table').waitFor({ timeout: APPEAR_MS });
}

test('log in: a wrong password is refused, the right one opens the dashboard', { skip }, async (t) => {
  const page = await browser!.newPage();
  t.after(() => page.close());
  await page.goto(`${s.http}/admin/`);
  await page.getByTestId('password').fill('not the password');
  await page.getByTestId('login').click();
  await page.getByTestId('login-error').getByText('wrong password').waitFor({ timeout: APPEAR_MS });
  assert.equal(await page.getByTestId('nodes').count(), 0, 'no dashboard behind a wrong password');

  await page.getByTestId('password').fill(PASSWORD);
  await page.getByTestId('login').click();
  await page.getByTestId('nodes-table').getByText('e2e-node').waitFor({ timeout: APPEAR_MS });
  assert.ok((await s.metric('switchboard_bad_input_total', { kind: 'admin_wrong_password' })) >= 1);
});

test('live: a connection appears, the console publishes to it, Disconnect user closes it', { skip }, async (t) => {
  const page = await browser!.newPage();
  t.after(() => page.close());
  await loggedIn(page);
  await page.getByTestId('nodes-table').getByText('e2e-node').waitFor({ timeout: APPEAR_MS });
  // The charts are drawn from the server's samples.
  await page.locator('[data-testid="chart-connections"] canvas').waitFor({ timeout: APPEAR_MS });

  // A real client connects and subscribes: its row shows up without a reload.
  const alice = await subscribedClient(t, s, 'alice', 'news');
  const row = page.getByTestId('connections-table').locator('tr', { hasText: 'alice' });
  await row.waitFor({ timeout: APPEAR_MS });
  assert.match(await row.innerText(), /websocket\/json/);
  assert.match(await row.innerText(), /news/);
  await page.getByTestId('channels-table').getByText('news').waitFor({ timeout: APPEAR_MS });
  await page.getByTestId('users-table').getByText('alice').waitFor({ timeout: APPEAR_MS });

  // The publish console reaches the client.
  const got = waitFor<{ data: unknown }>(alice.sub, 'publication', { ms: APPEAR_MS });
  await page.getByTestId('publish-channel').fill('news');
  await page.getByTestId('publish-data').fill('{"text": "from the console"}');
  await page.getByTestId('publish').click();
  assert.deepEqual((await got).data, { text: 'from the console' });
  await page.getByTestId('publish-result').getByText('published').waitFor({ timeout: APPEAR_MS });

  // The channel inspector shows the presence and the publication in history.
  await page.getByTestId('inspect-channel').fill('news');
  await page.getByTestId('inspect').click();
  await page.getByTestId('presence-table').getByText('alice').waitFor({ timeout: APPEAR_MS });
  await page.getByTestId('history-table').getByText('from the console').waitFor({ timeout: APPEAR_MS });

  // Disconnect user (confirmed in the dialog): the client is closed and its row goes away.
  page.once('dialog', (d) => void d.accept());
  const closed = waitFor<{ code: number }>(alice.client, 'disconnected', { ms: APPEAR_MS });
  await page.getByTestId('disconnect-alice').click();
  assert.equal((await closed).code, 3503);
  await page.getByTestId('connections-table-empty').waitFor({ timeout: APPEAR_MS });
});

test('live on Redis: a second node appears when it starts, and a connection on it shows up with its node', { skip }, async (t) => {
  const prefix = uniquePrefix('admin-ui');
  const admin = { enabled: true, password: PASSWORD, secret: 'e2e-admin-secret-0123456789' };
  const a = await startServer(t, nodeConfig(SHARED_REDIS, prefix, { admin, node: { name: 'node-a' } }), { raw: true, timeoutMs: 60_000 });
  const page = await browser!.newPage();
  t.after(() => page.close());
  await page.goto(`${a.http}/admin/`);
  await page.getByTestId('password').fill(PASSWORD);
  await page.getByTestId('login').click();
  await page.getByTestId('nodes-table').getByText('node-a').waitFor({ timeout: APPEAR_MS });
  assert.equal(await page.getByTestId('nodes-table').getByText('node-b').count(), 0, 'node-b is not running yet');

  const b = await startServer(t, nodeConfig(SHARED_REDIS, prefix, { node: { name: 'node-b' } }), { raw: true, timeoutMs: 60_000 });
  await page.getByTestId('nodes-table').getByText('node-b').waitFor({ timeout: APPEAR_MS });
  await subscribedClient(t, b, 'grace', 'lobby');
  const row = page.getByTestId('connections-table').locator('tr', { hasText: 'grace' });
  await row.waitFor({ timeout: APPEAR_MS });
  assert.match(await row.innerText(), /node-b/);
});
