/**
 * The README's screenshot: the app started in this process, two agents in
 * two headless Chromiums; Bob edits a field, attaches a file and sends a
 * burst, Alice's page is captured. `npm run screenshot -w @switchboard/example-quoting`
 * (after `npm run build`) writes examples/quoting/screenshot.png.
 */
import { fileURLToPath } from 'node:url';
import { launchChromium, startApp } from '../test/browser.js';

const afters: (() => unknown)[] = [];
const t = { after: (f: () => unknown) => void afters.push(f) };
try {
  const app = await startApp(t);
  const [aliceCtx, bobCtx] = [await launchChromium(t), await launchChromium(t)];
  const open = async (ctx: typeof aliceCtx, user: string) => {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.setViewportSize({ width: 1360, height: 560 });
    await page.goto(app.base);
    await page.getByTestId(`login-${user}`).click();
    await page.getByTestId('connection-state').filter({ hasText: 'connected' }).waitFor();
    await page.getByTestId('quote-Q-1001').click();
    await page.getByTestId('editor').waitFor();
    return page;
  };
  const alice = await open(aliceCtx, 'alice');
  const bob = await open(bobCtx, 'bob');
  if (await bob.getByTestId('edit-premium').isVisible()) {
    await bob.getByTestId('edit-premium').click();
    await alice.getByTestId('lock-premium').filter({ hasText: 'bob is editing' }).waitFor();
  }
  await alice.getByTestId('edit-deductible').click();
  await bob
    .getByTestId('file-input')
    .setInputFiles({ name: 'site-survey.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(150_000, 7) });
  await alice.getByTestId('attachment').waitFor();
  await bob.evaluate(() =>
    fetch('/api/burst', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'alice', count: 200, size: 2000 }),
    }),
  );
  await alice.getByTestId('notification-urgent').waitFor();
  await alice.getByTestId('analytics-count').filter({ hasText: '200 ticks' }).waitFor();
  await alice.getByTestId('room-admin:ops').getByRole('button', { name: 'Enter' }).click();
  await alice.getByTestId('room-admin:ops').getByTestId('room-problem').waitFor();
  const out = fileURLToPath(new URL('../../screenshot.png', import.meta.url));
  await alice.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  for (const f of afters.reverse()) await f();
}
