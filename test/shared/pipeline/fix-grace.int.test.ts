// Fix grace periods end to end in the Firestore emulator: a real Grype report records when each fix was first seen; the daily re-evaluation warns, alerts and flips on the day.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixedClock } from '../../../shared/clock.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { firestoreFixSightings } from '../../../shared/ledger/fix-sightings.js';
import { emptyImageRecord, FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import { createLogger } from '../../../shared/logging/logger.js';
import type { Effect, EffectPublisher } from '../../../shared/pipeline/effects.js';
import { handleReevaluateMessage } from '../../../shared/pipeline/reevaluation.js';
import { storeReport } from '../../../shared/pipeline/report-ingest.js';
import { firestorePolicySource, storePolicy } from '../../../shared/policy/store/policy-source.js';
import { firestoreVexStore } from '../../../shared/policy/store/vex-store.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';
import { fixtureText } from '../real-world-fixtures.js';

const POLICY = `apiVersion: clearance/v1
environments: { prod: { mode: enforce } }
rules:
  vulnerabilities:
    requireScan: [grype]
    maximumFixableSeverity: MEDIUM
    maximumUnfixableSeverity: ALLOW_ALL
    fixGraceDays: { CRITICAL: 0, HIGH: 7, MEDIUM: 30 }
`;
const DIGEST = `sha256:${'7'.repeat(64)}`;
const IMAGE = `us-docker.pkg.dev/acme/apps/grace@${DIGEST}`;
const ID = imageDocId('us-docker.pkg.dev', 'acme/apps/grace', DIGEST);
const SCANNED = new Date('2026-11-30T15:20:00Z');

describeWithEmulators('fix grace periods through scan ingest and the daily re-evaluation', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  const ledger = new FirestoreLedger(db);
  const published: Effect[] = [];
  const publisher = {
    publish: async (e: readonly Effect[]) => void published.push(...e),
  } satisfies EffectPublisher;
  const clock = fixedClock(SCANNED.toISOString());
  const deps = {
    ledger,
    policy: firestorePolicySource(db, clock, 0),
    vex: firestoreVexStore(db),
    publisher,
    logger: createLogger({ sink: () => {} }),
    fixes: firestoreFixSightings(db),
  };
  const raw = fixtureText('scanners/grype-debian-image.json');
  // Each upload is a new report (a rescan): other bytes, the same findings.
  const upload = (at: Date) => {
    const doc = JSON.parse(raw);
    const body = { ...doc, descriptor: { ...doc.descriptor, timestamp: at.toISOString() } };
    return storeReport(deps, { body, raw: JSON.stringify(body), image: IMAGE, caller: 'ci' }, at);
  };
  let day = 0;
  /** The daily run for one image, with that day's clock and a fresh instance (nothing remembered). */
  async function daily(iso: string) {
    published.length = 0;
    day += 1;
    await handleReevaluateMessage(
      {
        db,
        ledger,
        policy: firestorePolicySource(db, fixedClock(iso), 0),
        publisher,
        enqueue: async () => {},
        fixes: firestoreFixSightings(db),
      },
      { kind: 'image', imageId: ID },
      new Date(iso),
      { messageId: `daily-${day}` },
    );
    const rec = await ledger.getImage(ID);
    return {
      decision: rec?.verdicts.prod?.decision,
      reasons: rec?.verdicts.prod?.reasons ?? [],
      alerts: published.flatMap((e) => (e.kind === 'alert' ? [e.alert] : [])),
    };
  }

  beforeAll(async () => {
    await storePolicy(db, { source: POLICY, format: 'yaml', appliedBy: 'test', now: SCANNED });
    // Reports count only for images the ledger knows (docs/trust.md): the push comes first.
    const name = { registry: 'us-docker.pkg.dev', repository: 'acme/apps/grace', digest: DIGEST };
    await ledger.transact(
      ID,
      { source: 'test-push', messageId: 'push-grace', at: SCANNED.toISOString() },
      (current) => ({
        record: current ?? emptyImageRecord(ID, name, SCANNED),
        audit: { kind: 'push' },
      }),
      { now: SCANNED },
    );
  });
  afterAll(() => db.terminate());

  it('records the first sighting of each fix at scan ingest and allows the fixable HIGHs in their grace', async () => {
    await upload(SCANNED);
    const sightings = await db.collection('fixSightings').get();
    // Two matches of one GHSA in Django (same fix) and a wont-fix redis: one fix seen.
    expect(sightings.size).toBe(1);
    for (const d of sightings.docs) expect(d.get('firstSeenAt')).toBe(SCANNED.toISOString());
    const rec = await ledger.getImage(ID);
    expect(rec?.verdicts.prod?.decision).toBe('allow');
    const grace = rec?.verdicts.prod?.reasons.filter(
      (r) => r.ruleId === 'vulnerabilities.fix-grace',
    );
    expect(grace?.length).toBeGreaterThan(0);
    for (const r of grace ?? []) {
      expect(r.message).toMatch(/allowed until 2026-12-07: fix \S+ available since 2026-11-30/);
    }
  });

  it('keeps the first sighting through a rescan days later and a new instance', async () => {
    await upload(new Date('2026-12-03T09:00:00Z'));
    const sightings = await db.collection('fixSightings').get();
    expect(new Set(sightings.docs.map((d) => d.get('firstSeenAt')))).toEqual(
      new Set([SCANNED.toISOString()]),
    );
    expect((await ledger.getImage(ID))?.verdicts.prod?.reasons[0]?.message).toContain(
      'allowed until 2026-12-07',
    );
  });

  it('warns and alerts the owner once 2 days before the end, then denies from the end day', async () => {
    const d4 = await daily('2026-12-04T03:00:00Z');
    expect(d4.decision).toBe('allow');
    expect(d4.alerts).toEqual([]);
    const d5 = await daily('2026-12-05T03:00:00Z');
    expect(d5.decision).toBe('allow');
    expect(d5.reasons.map((r) => r.ruleId)).toContain('vulnerabilities.fix-grace-ending');
    expect(d5.alerts.map((a) => a.type)).toEqual(['fix-grace-ending']);
    const d6 = await daily('2026-12-06T03:00:00Z');
    expect(d6.alerts).toEqual([]);
    const d7 = await daily('2026-12-07T03:00:00Z');
    expect(d7.decision).toBe('deny');
    expect(d7.reasons.map((r) => r.ruleId)).toContain('vulnerabilities.fixable-severity');
    expect(d7.alerts.map((a) => a.type)).toEqual(['image-denied']);
    // A rescan the day after reports the same fixes: the grace does not restart.
    await upload(new Date('2026-12-08T09:00:00Z'));
    expect((await ledger.getImage(ID))?.verdicts.prod?.decision).toBe('deny');
  });
});
