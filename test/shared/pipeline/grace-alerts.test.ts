// Fix grace periods day by day: the owner hears 2 days before the end, once, and the verdict flips to deny on the day.
import { describe, expect, it } from 'vitest';
import { Alert } from '../../../shared/alerts/alert.js';
import { alertView } from '../../../shared/alerts/format.js';
import { Finding } from '../../../shared/findings/finding.js';
import { ImageRecord } from '../../../shared/image-record.js';
import { computeEffects } from '../../../shared/pipeline/effects.js';
import { evaluate } from '../../../shared/policy/evaluate.js';
import { parsePolicy, policyHash } from '../../../shared/policy/policy.js';

const policy = parsePolicy(`apiVersion: clearance/v1
environments: { prod: { mode: enforce } }
rules:
  vulnerabilities:
    maximumFixableSeverity: MEDIUM
    fixGraceDays: { CRITICAL: 0, HIGH: 7, MEDIUM: 30 }
`);
const findings = [
  Finding.parse({
    id: 'CVE-2026-1111',
    package: 'openssl',
    installedVersion: '3.0.11',
    fixedVersion: '3.0.13',
    fixState: 'fixed',
    severity: 'HIGH',
    cvss: null,
    source: 'grype',
  }),
];
const sightings = [
  {
    vulnerability: 'CVE-2026-1111',
    package: 'openssl',
    fixedVersion: '3.0.13',
    firstSeenAt: '2026-11-30T15:20:00Z',
  },
];
const image = ImageRecord.parse({
  id: 'img',
  registry: 'us-docker.pkg.dev',
  repository: 'acme/apps/api',
  digest: `sha256:${'c'.repeat(64)}`,
  tags: ['1.0'],
  labels: { owner: 'payments' },
  scan: { status: 'finished', scanner: 'artifact-analysis' },
  state: 'evaluated',
  updatedAt: '2026-11-30T15:20:00Z',
});

/** What the daily re-evaluation does: evaluate with the day's clock, compare with yesterday's record. */
function day(iso: string, previous: ImageRecord) {
  const now = new Date(iso);
  const verdicts = evaluate({
    image: previous,
    findings,
    vex: [],
    policy,
    policyHash: policyHash(policy),
    now,
    fixSightings: sightings,
  });
  const next = { ...previous, verdicts };
  return { next, effects: computeEffects(previous, next, findings, now, policy) };
}

describe('a HIGH with a fix first seen on 2026-11-30, 7 days of grace', () => {
  it('is allowed, then the owner is alerted once 2 days before the end, then denied on 2026-12-07', () => {
    let rec = image;
    const log: { day: string; decision: string; alerts: string[] }[] = [];
    for (const d of [
      '2026-12-01',
      '2026-12-04',
      '2026-12-05',
      '2026-12-06',
      '2026-12-07',
      '2026-12-08',
    ]) {
      const { next, effects } = day(`${d}T03:00:00Z`, rec);
      rec = next;
      log.push({
        day: d,
        decision: next.verdicts.prod.decision,
        alerts: effects.flatMap((e) => (e.kind === 'alert' ? [e.alert.type] : [])),
      });
    }
    expect(log).toEqual([
      { day: '2026-12-01', decision: 'allow', alerts: [] },
      { day: '2026-12-04', decision: 'allow', alerts: [] },
      { day: '2026-12-05', decision: 'allow', alerts: ['fix-grace-ending'] },
      { day: '2026-12-06', decision: 'allow', alerts: [] },
      { day: '2026-12-07', decision: 'deny', alerts: ['image-denied'] },
      { day: '2026-12-08', decision: 'deny', alerts: [] },
    ]);
  });

  it('tells the owner what to upgrade, since when the fix exists and the day of the denial', () => {
    const { effects } = day('2026-12-05T03:00:00Z', day('2026-12-04T03:00:00Z', image).next);
    const alert = effects.find((e) => e.kind === 'alert');
    if (alert?.kind !== 'alert') throw new Error('expected an alert');
    const parsed = Alert.parse(alert.alert);
    expect(parsed).toMatchObject({
      type: 'fix-grace-ending',
      environment: 'prod',
      grace: {
        package: 'openssl',
        installedVersion: '3.0.11',
        fixedVersion: '3.0.13',
        vulnerabilities: 'CVE-2026-1111 HIGH',
        availableSince: '2026-11-30',
        endsOn: '2026-12-07',
      },
    });
    const view = alertView(parsed);
    expect(view.title).toBe('Fix grace for openssl ends in 2 days');
    expect(view.summary).toContain(
      'allowed with openssl 3.0.11 until 2026-12-07: fix 3.0.13 available since 2026-11-30',
    );
  });
});
