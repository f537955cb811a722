// The base-layer rule (verifyLayers) and fix grace periods, rule by rule.
import { describe, expect, it } from 'vitest';
import type { FixSighting } from '../../../shared/findings/fix-sighting.js';
import type { BaseVerification } from '../../../shared/image-record.js';
import { evaluate } from '../../../shared/policy/evaluate.js';
import { finding, image, policy } from './helpers.js';

const BASE = 'marketplace.gcr.io/google/debian12:latest';
const BASE_DIGEST = `sha256:${'b'.repeat(64)}`;

function baseWith(verification: BaseVerification | null, source: 'label' | 'layers' = 'label') {
  return {
    name: BASE,
    digest: BASE_DIGEST,
    status: 'current' as const,
    source,
    verification,
  };
}

const checkedAt = '2026-11-28T09:00:00Z';
const MISMATCH: BaseVerification = {
  status: 'mismatch',
  detail:
    "layer 1 of the base's 2 differs: the image has sha256:111111111111…, the base sha256:222222222222…",
  baseLayers: 2,
  checkedAt,
};
const VERIFIED: BaseVerification = { status: 'verified', detail: null, baseLayers: 2, checkedAt };
const UNVERIFIED: BaseVerification = {
  status: 'unverified',
  detail: 'base manifest not found in marketplace.gcr.io/google/debian12',
  baseLayers: null,
  checkedAt,
};

function verdict(verifyLayers: string | null, base: ReturnType<typeof baseWith>) {
  const p = policy(`
apiVersion: clearance/v1
environments: {prod: {}}
rules:
  baseImage:
    allowed: ["marketplace.gcr.io/google/**"]
    unknown: deny
${verifyLayers ? `    verifyLayers: ${verifyLayers}` : ''}
`);
  return evaluate({
    image: image({ base }),
    findings: [],
    vex: [],
    policy: p.policy,
    policyHash: p.hash,
    now: new Date('2026-11-29T10:00:00Z'),
  }).prod;
}

describe('baseImage.verifyLayers', () => {
  it('enforce: a forged base claim is denied, naming the first differing layer, with remediation', () => {
    const v = verdict('enforce', baseWith(MISMATCH));
    expect(v.decision).toBe('deny');
    expect(v.reasons).toEqual([
      {
        ruleId: 'base-image.layers',
        level: 'deny',
        message: `base claim ${BASE}@${BASE_DIGEST} is not proven by the image's layers: ${MISMATCH.detail}`,
        remediation: `rebuild FROM ${BASE}@${BASE_DIGEST} so the image starts with its layers, or correct the org.opencontainers.image.base.* label to the base actually used`,
      },
    ]);
  });

  it('warn (the default): the mismatch is reported without denying, and the claim still counts', () => {
    for (const mode of ['warn', null]) {
      const v = verdict(mode, baseWith(MISMATCH));
      expect(v.decision).toBe('allow');
      expect(v.reasons).toHaveLength(1);
      expect(v.reasons[0]).toMatchObject({ ruleId: 'base-image.layers', level: 'warn' });
      expect(v.reasons[0].message).toContain("layer 1 of the base's 2 differs");
    }
  });

  it('off: the claim is trusted as written', () => {
    expect(verdict('off', baseWith(MISMATCH))).toMatchObject({ decision: 'allow', reasons: [] });
  });

  it('a verified claim, and a base Clearance inferred from the layers, pass silently', () => {
    expect(verdict('enforce', baseWith(VERIFIED))).toMatchObject({
      decision: 'allow',
      reasons: [],
    });
    expect(verdict('enforce', baseWith(null, 'layers'))).toMatchObject({
      decision: 'allow',
      reasons: [],
    });
  });

  it('enforce: a claim that could not be checked is not obeyed: the base counts as unknown', () => {
    const v = verdict('enforce', baseWith(UNVERIFIED));
    expect(v.decision).toBe('deny');
    expect(v.reasons.map((r) => [r.ruleId, r.level])).toEqual([
      ['base-image.unknown', 'deny'],
      ['base-image.layers', 'warn'],
    ]);
    expect(v.reasons[1].message).toContain('could not be verified (base manifest not found');
    // Never checked at all (no registry access): the same under enforce, nothing under warn.
    expect(verdict('enforce', baseWith(null)).decision).toBe('deny');
    expect(verdict('warn', baseWith(null))).toMatchObject({ decision: 'allow', reasons: [] });
    expect(verdict('warn', baseWith(UNVERIFIED)).reasons).toMatchObject([
      { ruleId: 'base-image.layers', level: 'warn' },
    ]);
  });
});

describe('fix grace periods', () => {
  const p = policy(`
apiVersion: clearance/v1
environments: {prod: {}, dev: {mode: dryrun}}
rules:
  vulnerabilities:
    maximumFixableSeverity: LOW
    fixGraceDays: {CRITICAL: 0, HIGH: 7, MEDIUM: 30}
`);
  const high = finding({
    id: 'CVE-2026-1111',
    severity: 'HIGH',
    package: 'openssl',
    installedVersion: '3.0.11',
    fixState: 'fixed',
    fixedVersion: '3.0.13',
  });
  const critical = finding({
    id: 'CVE-2026-2222',
    severity: 'CRITICAL',
    package: 'zlib1g',
    installedVersion: '1.2.13',
    fixState: 'fixed',
    fixedVersion: '1.3',
  });
  const seen: FixSighting[] = [
    {
      vulnerability: 'CVE-2026-1111',
      package: 'openssl',
      fixedVersion: '3.0.13',
      firstSeenAt: '2026-11-30T15:20:00Z',
    },
    {
      vulnerability: 'CVE-2026-2222',
      package: 'zlib1g',
      fixedVersion: '1.3',
      firstSeenAt: '2026-11-30T15:20:00Z',
    },
  ];
  const at = (iso: string, findings = [high], fixSightings = seen) =>
    evaluate({
      image: image(),
      findings,
      vex: [],
      policy: p.policy,
      policyHash: p.hash,
      now: new Date(iso),
      fixSightings,
    });

  it('allows a HIGH with a fix for 7 days after the fix was first seen, saying until when and since when', () => {
    const v = at('2026-12-01T10:00:00Z').prod;
    expect(v.decision).toBe('allow');
    expect(v.reasons).toEqual([
      {
        ruleId: 'vulnerabilities.fix-grace',
        level: 'warn',
        message:
          'openssl 3.0.11 has 1 fixable finding over the threshold (allowed up to LOW): CVE-2026-1111 HIGH; allowed until 2026-12-07: fix 3.0.13 available since 2026-11-30',
        remediation: 'upgrade openssl 3.0.11 → 3.0.13 before 2026-12-07, when the image is denied',
        grace: {
          package: 'openssl',
          installedVersion: '3.0.11',
          fixedVersion: '3.0.13',
          vulnerabilities: 'CVE-2026-1111 HIGH',
          availableSince: '2026-11-30',
          endsOn: '2026-12-07',
        },
      },
    ]);
  });

  it('warns that the grace is ending in its last 2 days', () => {
    const v = at('2026-12-05T03:00:00Z').prod;
    expect(v.decision).toBe('allow');
    expect(v.reasons[0].ruleId).toBe('vulnerabilities.fix-grace-ending');
    expect(v.reasons[0].message).toMatch(/allowed until 2026-12-07: .* \(grace ends in 2 days\)$/);
  });

  it('denies from 00:00 UTC on the day the grace ends (the daily run flips it that day)', () => {
    expect(at('2026-12-06T23:59:59Z').prod.decision).toBe('allow');
    const v = at('2026-12-07T00:00:00Z').prod;
    expect(v.decision).toBe('deny');
    expect(v.reasons.map((r) => r.ruleId)).toEqual(['vulnerabilities.fixable-severity']);
    // Dry-run environments never deny, but say so.
    expect(at('2026-12-07T00:00:00Z').dev.decision).toBe('allow');
  });

  it('gives CRITICAL no grace (0 days), and no grace without a sighting', () => {
    expect(at('2026-11-30T16:00:00Z', [critical]).prod.decision).toBe('deny');
    expect(at('2026-12-01T10:00:00Z', [high], []).prod.decision).toBe('deny');
  });

  it('counts from the earliest sighting under any of the finding ids', () => {
    const aliased = { ...high, aliases: ['GHSA-xxxx-yyyy-zzzz'] };
    const earlier: FixSighting = {
      vulnerability: 'GHSA-XXXX-YYYY-ZZZZ',
      package: 'openssl',
      fixedVersion: '3.0.13',
      firstSeenAt: '2026-11-25T00:00:00Z',
    };
    const v = at('2026-12-02T00:00:00Z', [aliased], [...seen, earlier]).prod;
    expect(v.decision).toBe('deny');
    const w = at('2026-11-30T10:00:00Z', [aliased], [...seen, earlier]).prod;
    expect(w.reasons[0].message).toContain(
      'allowed until 2026-12-02: fix 3.0.13 available since 2026-11-25',
    );
  });

  it('leaves exceptions and blocked CVEs as they were: grace is only for fixable findings over the threshold', () => {
    const blocked = policy(`
apiVersion: clearance/v1
environments: {prod: {}}
rules:
  vulnerabilities:
    maximumFixableSeverity: LOW
    blockedCves: [CVE-2026-1111]
    fixGraceDays: {HIGH: 7}
`);
    const v = evaluate({
      image: image(),
      findings: [high],
      vex: [],
      policy: blocked.policy,
      policyHash: blocked.hash,
      now: new Date('2026-12-01T10:00:00Z'),
      fixSightings: seen,
    }).prod;
    expect(v.decision).toBe('deny');
    expect(v.reasons[0].ruleId).toBe('vulnerabilities.blocked-cve');
  });
});
