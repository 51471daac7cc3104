/**
 * Headless Debian Chromium for the browser tests (playwright-core), started
 * the way this machine kind needs it: no sandbox (root), no background
 * networking (the closed network refuses it), a fresh profile per launch.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import type { TestContextLike } from './scope.js';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
/** A test's `skip` option: false where Chromium is installed, else why not. */
export const chromiumSkip: string | false = hasChromium ? false : `${CHROMIUM} not found (CI installs Debian chromium via .ci/run)`;

/** A browser with a profile of its own, closed and removed when `t` ends. */
export async function launchChromium(t: TestContextLike): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'switchboard-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
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
  // Close first, then remove the profile (a browser still running writes into it: ENOTEMPTY).
  t.after(async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  });
  return browser;
}
