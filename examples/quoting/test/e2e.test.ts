/**
 * Two agents in two headless Chromiums (Debian's, through playwright-core)
 * through every flow of the app: sign-in by cookie session, the live quote
 * list, field locks with a lease and a stale save refused, online status,
 * an urgent notification overtaking a bulk stream, a file attached with a
 * resumable checksummed upload, a network cut with recovery on return (no
 * reload), and the clear messages for a forbidden room and an expired session.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { BrowserContext, Page, WebSocketRoute } from 'playwright-core';
import { chromiumSkip, launchChromium, startApp } from './browser.js';

const T = { timeout: 15000 };

async function signIn(ctx: BrowserContext, base: string, user: string): Promise<Page> {
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  await page.goto(base);
  await page.getByTestId(`login-${user}`).click();
  await page.getByTestId('connection-state').filter({ hasText: 'connected' }).waitFor(T);
  return page;
}

/** Cuts a browser's network (HTTP offline, every WebSocket closed, new ones refused) until `restore`. */
async function cuttable(ctx: BrowserContext) {
  let offline = false;
  const open = new Set<{ page: WebSocketRoute; server: WebSocketRoute }>();
  await ctx.routeWebSocket(/\/connection\/websocket/, (ws) => {
    if (offline) return ws.close({ code: 1001, reason: 'offline' });
    const pair = { page: ws, server: ws.connectToServer() };
    open.add(pair);
    ws.onClose(() => open.delete(pair));
  });
  return {
    async cut() {
      offline = true;
      await ctx.setOffline(true);
      for (const p of open) {
        await p.server.close();
        await p.page.close({ code: 1001, reason: 'offline' });
      }
      open.clear();
    },
    async restore() {
      offline = false;
      await ctx.setOffline(false);
    },
  };
}

test('quoting app: two agents in two browsers through every flow', { skip: chromiumSkip, timeout: 90000 }, async (t) => {
  const app = await startApp(t);
  const aliceCtx = await launchChromium(t);
  const bobCtx = await launchChromium(t);
  const bobNet = await cuttable(bobCtx);

  // No session: the sign-in screen says so; nothing connects.
  const anon = aliceCtx.pages()[0] ?? (await aliceCtx.newPage());
  await anon.goto(app.base);
  assert.equal(await anon.getByTestId('login-reason').textContent(T), 'not signed in');

  const alice = await signIn(aliceCtx, app.base, 'alice');
  const bob = await signIn(bobCtx, app.base, 'bob');
  await bob.evaluate(() => ((window as unknown as { marker: number }).marker = 42)); // survives only without a reload

  await t.test('the quote list is live', async () => {
    await bob.getByTestId('quote-Q-1001').waitFor(T);
    await alice.getByTestId('new-quote-customer').fill('Harbor Foods — cold store');
    await alice.getByTestId('new-quote').click();
    await bob.getByTestId('quote-Q-1003').filter({ hasText: 'Harbor Foods' }).waitFor(T);
  });

  await t.test("agents' online status", async () => {
    for (const p of [alice, bob])
      for (const a of ['alice', 'bob']) await p.getByTestId(`agent-${a}-status`).filter({ hasText: 'online' }).waitFor(T);
    // Last activity from the server's user status (user_status.get).
    await bob.getByTestId('agent-alice').filter({ hasText: 'active' }).waitFor(T);
  });

  await t.test('two agents edit one quote with field locks: who edits which field, and the lease', async () => {
    await alice.getByTestId('quote-Q-1001').click();
    await bob.getByTestId('quote-Q-1001').click();
    await alice.getByTestId('edit-premium').click();
    await alice.getByTestId('lock-premium').filter({ hasText: 'you are editing · lease' }).waitFor(T);
    await bob
      .getByTestId('lock-premium')
      .filter({ hasText: /alice is editing · lease \d+s · token \d+/ })
      .waitFor(T);
    assert.equal(await bob.getByTestId('edit-premium').isDisabled(), true, 'Bob cannot take a field Alice holds');
    await bob.getByTestId('edit-deductible').click();
    await alice.getByTestId('lock-deductible').filter({ hasText: 'bob is editing' }).waitFor(T);

    await alice.getByTestId('input-premium').fill('13250');
    await alice.getByTestId('save-premium').click();
    await bob.getByTestId('lock-premium').filter({ hasText: 'free' }).waitFor(T);
    assert.equal(await bob.getByTestId('input-premium').inputValue(), '13250');
    await bob.getByTestId('quote-Q-1001-premium').filter({ hasText: '13250' }).waitFor(T);
    await bob.getByTestId('release-deductible').click();
    await alice.getByTestId('lock-deductible').filter({ hasText: 'free' }).waitFor(T);
  });

  await t.test('a room the role may not enter shows why', async () => {
    await alice.getByTestId('room-admin:ops').getByRole('button', { name: 'Enter' }).click();
    await alice.getByTestId('room-admin:ops').getByTestId('room-problem').filter({ hasText: 'permission denied (103)' }).waitFor(T);
  });

  await t.test('an urgent notification overtakes the bulk analytics stream', async () => {
    await bob.getByTestId('burst').click();
    const urgent = bob.getByTestId('notification-urgent');
    await urgent.waitFor(T);
    await bob.getByTestId('analytics-count').filter({ hasText: '200 ticks received' }).waitFor(T);
    const seen = Number(await urgent.getAttribute('data-bulk-seen'));
    assert.ok(seen < 200, `the urgent notification came after ${seen} of the 200 ticks published before it`);
  });

  await t.test('a file attached by one agent appears for the other, checksum and all', async () => {
    const bytes = randomBytes(200_000);
    await alice.getByTestId('file-input').setInputFiles({ name: 'survey.pdf', mimeType: 'application/pdf', buffer: bytes });
    await alice.getByTestId('upload-progress').filter({ hasText: 'done' }).waitFor(T);
    const item = bob.getByTestId('attachment').filter({ hasText: 'survey.pdf' });
    await item.waitFor(T);
    assert.equal(await item.getAttribute('data-sha256'), createHash('sha256').update(bytes).digest('hex'));
  });

  await t.test('an agent cut off comes back, sees what was missed without reloading, and a stale save is refused', async () => {
    // Bob is editing the coverage when his network goes.
    await bob.getByTestId('edit-coverage').click();
    await alice.getByTestId('lock-coverage').filter({ hasText: 'bob is editing' }).waitFor(T);
    await bob.getByTestId('input-coverage').fill('Fleet, 40 vehicles + trailers');
    await bobNet.cut();
    await bob.getByTestId('offline').waitFor(T);
    await alice.getByTestId('agent-bob-status').filter({ hasText: 'offline' }).waitFor(T);
    // His connection is gone, so is his lease: Alice takes the field (a newer fencing token) and saves.
    await alice.getByTestId('lock-coverage').filter({ hasText: 'free' }).waitFor(T);
    await alice.getByTestId('edit-coverage').click();
    await alice.getByTestId('lock-coverage').filter({ hasText: 'you are editing' }).waitFor(T);
    await alice.getByTestId('input-coverage').fill('Fleet, 45 vehicles');
    await alice.getByTestId('save-coverage').click();
    await alice.getByTestId('lock-coverage').filter({ hasText: 'free' }).waitFor(T);
    // Meanwhile: Alice notifies Bob (through her backend) and a quote changes.
    await alice.evaluate(() =>
      fetch('/api/notify', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'bob', title: 'While you were away' }),
      }),
    );
    await alice.evaluate(() =>
      fetch('/api/quotes/Q-1001/fields', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ field: 'notes', value: 'survey received' }),
      }),
    );
    await bobNet.restore();
    await bob.getByTestId('connection-state').filter({ hasText: 'connected' }).waitFor(T);
    await bob.getByTestId('recovered').filter({ hasText: 'recovered 2 missed updates' }).waitFor(T);
    assert.equal(await bob.getByTestId('input-notes').inputValue(), 'survey received');
    // Bob's draft is still there, with the token of the lease he lost: the save is refused, and says why.
    await bob.getByTestId('lock-coverage').filter({ hasText: 'your lease ended' }).waitFor(T);
    await bob.getByTestId('save-coverage').click();
    await bob.getByTestId('refused-coverage').filter({ hasText: 'stale fencing token (code 151)' }).waitFor(T);
    await alice.getByTestId('quote-log').filter({ hasText: 'alice saved coverage = Fleet, 45 vehicles' }).waitFor(T);
    await bob.getByTestId('notifications').filter({ hasText: 'While you were away' }).waitFor(T);
    await alice.getByTestId('agent-bob-status').filter({ hasText: 'online' }).waitFor(T);
    assert.equal(await bob.evaluate(() => (window as unknown as { marker: number }).marker), 42, 'the page was not reloaded');
  });

  await t.test("a client sees the decision on its quote live, and may not enter the agents' rooms", async () => {
    const carol = await signIn(await launchChromium(t), app.base, 'carol');
    // Both of Carol's subscriptions are live before Bob decides (a fresh subscribe does not replay what came before it).
    await carol.locator('[data-testid="decision-Q-1001"][data-state="subscribed"]').waitFor(T);
    await carol.locator('[data-testid="notifications"][data-state="subscribed"]').waitFor(T);
    await bob.evaluate(() =>
      fetch('/api/quotes/Q-1001/decision', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ decision: 'approved' }),
      }),
    );
    await carol.getByTestId('decision-Q-1001').filter({ hasText: 'approved by bob' }).waitFor(T);
    await carol.getByTestId('notifications').filter({ hasText: 'Quote Q-1001: approved' }).waitFor(T);
    await carol.getByTestId('room-agent:lobby').getByRole('button', { name: 'Enter' }).click();
    await carol.getByTestId('room-agent:lobby').getByTestId('room-problem').filter({ hasText: 'permission denied (103)' }).waitFor(T);
  });

  await t.test('an expired session stops the connection with a message, not a reconnect loop', async () => {
    const ctx = await launchChromium(t);
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(app.base);
    await page.evaluate(() =>
      fetch('/api/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'carol', ttlMs: 4000 }),
      }),
    );
    await page.reload();
    await page.getByTestId('connection-state').filter({ hasText: 'connected' }).waitFor(T);
    await page.getByTestId('session-problem').filter({ hasText: 'session has expired' }).waitFor(T);
    const tokens: string[] = [];
    page.on('request', (r) => r.url().endsWith('/api/token') && tokens.push(r.url()));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await page.getByTestId('connection-state').textContent(), 'disconnected');
    assert.deepEqual(tokens, [], 'no token requests after the session ended');
  });
});
