/**
 * The repo's Chromium launcher (packages/server/test/helpers/browser.ts,
 * built with the server) and the app started in this process for a test.
 */
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { buildApp, type AppOptions, type QuotingApp } from '../server/app.js';

type After = { after(fn: () => unknown): void };
interface Launcher {
  launchChromium(t: After): Promise<BrowserContext>;
  chromiumSkip: string | false;
}
const helper = new URL('../../../../packages/server/dist/test/helpers/browser.js', import.meta.url).href;
export const { launchChromium, chromiumSkip } = (await import(helper)) as Launcher;

/** The app with its built front end on a free port, stopped when `t` ends. */
export async function startApp(t: After, opts: AppOptions = {}): Promise<QuotingApp & { base: string }> {
  const webDir = fileURLToPath(new URL('../web', import.meta.url));
  const q = await buildApp({ webDir, ...opts });
  await q.app.listen({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await q.sb.shutdown();
    await q.app.close();
  });
  return { ...q, base: `http://127.0.0.1:${(q.app.server.address() as AddressInfo).port}` };
}
