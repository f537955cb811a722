// The dashboard in a real browser (Debian's Chromium through playwright-core) against functions-framework and the Firestore emulator.
import { existsSync } from 'node:fs';
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../../functions/dashboard/index.js';
import { CHROMIUM, type LaunchedBrowser, launchChromium } from '../../scripts/lib/browser.js';
import { fixedClock } from '../../shared/clock.js';
import { COLLECTIONS } from '../../shared/ledger/collections.js';
import { SHARDS } from '../../shared/ledger/fleet-index.js';
import { createLogger } from '../../shared/logging/logger.js';
import { createRoot } from '../../shared/runtime/root.js';
import {
  HOSTILE_LABEL,
  HOSTILE_REPO,
  HOSTILE_TEAM,
  ledgerTruth,
  seedFleet,
} from '../support/fleet-ledger.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { emulators } from '../support/integration.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const TOKEN = 'dashboard-token-for-tests-0123456789';

// Skipped (and counted loudly by the skip reporter) without the emulators or Chromium; .ci/run installs both.
describe.skipIf(emulators === null || !existsSync(CHROMIUM))('dashboard in a browser', () => {
  let db: Firestore;
  let server: FunctionServer;
  let unconfigured: FunctionServer;
  let browser: LaunchedBrowser;
  let page: Page;
  let truth: Awaited<ReturnType<typeof ledgerTruth>>;
  const dialogs: string[] = [];

  beforeAll(async () => {
    db = new Firestore({ projectId: emulators?.projectId });
    await seedFleet(db, 18, NOW, { hostileRepository: true });
    truth = await ledgerTruth(db);
    const quiet = createLogger({ minSeverity: 'ERROR' });
    const root = createRoot(process.env, { clock: fixedClock(NOW), logger: quiet });
    ff.http(
      'dashboardUnderTest',
      buildDashboard({
        getRoot: () => root,
        env: { CLEARANCE_DASHBOARD_TOKEN: TOKEN },
      }) as unknown as ff.HttpFunction,
    );
    ff.http(
      'dashboardUnconfigured',
      buildDashboard({ getRoot: () => root, env: {} }) as unknown as ff.HttpFunction,
    );
    server = await serveFunction('dashboardUnderTest');
    unconfigured = await serveFunction('dashboardUnconfigured');
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await unconfigured?.close();
    await db?.terminate();
  });

  const text = (sel: string) =>
    page
      .locator(sel)
      .first()
      .textContent()
      .then((t) => t ?? '');

  it('asks for a token, refuses a wrong one, then signs in with a cookie', async () => {
    const first = await page.goto(`${server.url}/`);
    expect(first?.status()).toBe(401);
    await page.fill('input[name=token]', 'not-the-token-at-all');
    await page.click('button[type=submit]');
    expect(await page.locator('.deny').textContent()).toContain('refused');
    await page.fill('input[name=token]', TOKEN);
    await Promise.all([page.waitForURL(/\/overview$/), page.click('button[type=submit]')]);
    expect(await text('h1')).toBe('Fleet overview');
    const cookies = await browser.context.cookies();
    expect(cookies.find((c) => c.name === 'clearance_dashboard')?.httpOnly).toBe(true);
  });

  it('shows the counts the ledger holds, by state, environment, team and vulnerability', async () => {
    const res = await page.goto(`${server.url}/overview`);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    // Counter shards, the stale list and the policy.
    expect(Number(res?.headers()['x-clearance-reads'])).toBe(SHARDS + truth.kinds.stale.length + 1);
    const live = truth.records.filter((r) => r.state !== 'deleted').length;
    expect(await text('[data-count=total]')).toBe(String(live));
    for (const k of ['denied', 'attested', 'pending', 'stale'] as const) {
      expect(await text(`[data-count=${k}]`), k).toBe(String(truth.kinds[k].length));
    }
    for (const env of Object.keys(truth.envs)) {
      const cells = await page.locator(`tr[data-env="${env}"] td`).allTextContents();
      expect(cells.slice(1).map(Number), env).toEqual([
        truth.envs[env]?.allow ?? 0,
        truth.envs[env]?.deny ?? 0,
        truth.envs[env]?.pending ?? 0,
      ]);
    }
    for (const [team, n] of Object.entries(truth.deniedByTeam)) {
      const row = page.locator('#teams tr').filter({ has: page.locator('td', { hasText: team }) });
      expect(await row.locator('[data-denied]').textContent(), team).toBe(String(n));
    }
    for (const [cve, n] of Object.entries(truth.cveImages)) {
      expect(await text(`tr[data-cve="${cve}"] [data-images]`), cve).toBe(String(n));
    }
    expect(await text('tr[data-exception="CVE-2005-2541"] td.num')).toBe(
      String(truth.cveImages['CVE-2005-2541']),
    );
    expect(await page.locator('#stale tbody tr').count()).toBe(truth.kinds.stale.length);
    const today = page.locator('svg.chart g[data-day="2026-11-30"]');
    expect(Number(await today.getAttribute('data-deny'))).toBeGreaterThan(0);
    expect(await page.locator('#teams').textContent()).toContain(HOSTILE_TEAM);
  });

  it('links to the denied images, and from there to an image with its timeline', async () => {
    await page.goto(`${server.url}/overview`);
    await Promise.all([
      page.waitForURL(/images\?state=denied/),
      page.click('a:has([data-count=denied])'),
    ]);
    const ids = await page
      .locator('#images tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    expect(ids.sort()).toEqual([...truth.kinds.denied].sort());
    const first = page.locator('#images tbody tr a').first();
    await Promise.all([page.waitForURL(/image\?id=/), first.click()]);
    const id = new URL(page.url()).searchParams.get('id') as string;
    const audit = await db
      .collection(COLLECTIONS.images)
      .doc(id)
      .collection(COLLECTIONS.audit)
      .get();
    expect(await page.locator('#timeline li').count()).toBe(audit.size);
    expect(await text('[data-state]')).toBe('denied');
    expect(await page.locator('#verdicts tr[data-env=prod]').textContent()).toContain('deny');
  });

  it('escapes hostile names and labels: no script runs, the text shows as written', async () => {
    await page.goto(`${server.url}/images?team=${encodeURIComponent(HOSTILE_TEAM)}`);
    const rows = page.locator('#images tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await page.locator('#images').textContent()).toContain(HOSTILE_TEAM);
    expect(await page.locator('#images').textContent()).toContain(HOSTILE_REPO);
    for (const i of [0, 1]) {
      await Promise.all([page.waitForURL(/image\?id=/), rows.nth(i).locator('a').click()]);
      await page.goBack();
    }
    await page.goto(
      `${server.url}/image?id=${encodeURIComponent(truth.records.find((r) => r.labels.team === HOSTILE_TEAM && r.labels['org.example.note'])?.id ?? '')}`,
    );
    expect(await page.locator('#record').textContent()).toContain(HOSTILE_LABEL);
    expect(
      await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned),
    ).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('refuses bad, unknown, repeated and oversized query parameters with a 400', async () => {
    for (const q of [
      'state=bogus',
      'colour=red',
      'team=a&team=b',
      `team=${'a'.repeat(500)}`,
      'limit=100000',
      'cve=not a cve',
      'since=yesterday',
    ]) {
      const res = await page.goto(`${server.url}/images?${q}`);
      expect(res?.status(), q).toBe(400);
    }
    expect((await page.goto(`${server.url}/overview?x=1`))?.status()).toBe(400);
    expect((await page.goto(`${server.url}/image?id=nope`))?.status()).toBe(404);
  });

  it('fails closed without credentials or configuration', async () => {
    const anon = await fetch(`${server.url}/overview`);
    expect(anon.status).toBe(401);
    const bearer = await fetch(`${server.url}/overview`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(bearer.status).toBe(200);
    const off = await fetch(`${unconfigured.url}/overview`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(off.status).toBe(503);
    expect(await off.text()).toContain('CLEARANCE_DASHBOARD_TOKEN');
  });
});
