// Launches the Chromium Debian packages through playwright-core (never a downloaded browser), headless and offline-quiet.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CLEARANCE_CHROMIUM ?? '/usr/bin/chromium';

export interface LaunchedBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(
  options: { extraHTTPHeaders?: Record<string, string> } = {},
): Promise<LaunchedBrowser> {
  const { chromium } = await import('playwright-core');
  // A fresh profile per launch: no state leaks between runs or into the user's own profile.
  const profile = mkdtempSync(join(tmpdir(), 'clearance-chromium-'));
  // Playwright takes the profile as launchPersistentContext's argument, not as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    ...options,
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
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
