// The demo's last step: opens the dashboard in Debian's Chromium, as a person would, and saves screenshots under .clearance/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StackInfo } from '../stack.js';
import { CHROMIUM, launchChromium } from './browser.js';
import { STATE_DIR } from './process.js';

const say = (s = '') => process.stdout.write(`${s}\n`);

/** Screenshots of the overview (and of `imageId`'s page); a missing Chromium is reported, not fatal. */
export async function dashboardShot(
  info: StackInfo,
  token: string,
  imageId?: string,
): Promise<void> {
  const url = info.functions.dashboard;
  say('\n5. Look at the fleet on the dashboard');
  if (!url) {
    say('   the running stack has no dashboard: restart `npm start`');
    return;
  }
  if (!existsSync(CHROMIUM)) {
    say(`   ${CHROMIUM} is not installed (apt-get install chromium); open ${url}/ yourself`);
    return;
  }
  const b = await launchChromium({ extraHTTPHeaders: { authorization: `Bearer ${token}` } });
  try {
    const page = await b.context.newPage();
    const res = await page.goto(`${url}/overview`);
    if (res?.status() !== 200) throw new Error(`the dashboard answered ${res?.status()}`);
    const file = join(STATE_DIR, 'dashboard.png');
    await page.screenshot({ path: file, fullPage: true });
    say(`   ${url}/ (sign in with ${info.tokenFile}) — screenshot ${file}`);
    if (imageId) {
      await page.goto(`${url}/image?id=${encodeURIComponent(imageId)}`);
      const imageFile = join(STATE_DIR, 'dashboard-image.png');
      await page.screenshot({ path: imageFile, fullPage: true });
      say(`   the image's page with its timeline — screenshot ${imageFile}`);
    }
  } finally {
    await b.close();
  }
}
