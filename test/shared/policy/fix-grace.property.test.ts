// Fix grace periods over time: the decision never goes from deny back to allow while only the clock moves.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIX_STATES, type Finding, SEVERITIES } from '../../../shared/findings/finding.js';
import type { FixSighting } from '../../../shared/findings/fix-sighting.js';
import { type EvaluationInput, evaluate } from '../../../shared/policy/evaluate.js';
import { parsePolicy, policyHash, SEVERITY_THRESHOLDS } from '../../../shared/policy/policy.js';
import { image } from './helpers.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-20T00:00:00Z');
const IDS = ['CVE-2026-0001', 'CVE-2026-0002', 'GHSA-aaaa-bbbb-cccc'];
const PACKAGES = ['openssl', 'zlib1g'];
const FIXES = ['3.0.13', '3.1.0'];

const findingArb: fc.Arbitrary<Finding> = fc.record({
  id: fc.constantFrom(...IDS),
  aliases: fc.subarray(IDS, { maxLength: 1 }),
  package: fc.constantFrom(...PACKAGES),
  packageType: fc.constant(null),
  installedVersion: fc.constantFrom('3.0.11'),
  fixedVersion: fc.option(fc.constantFrom(...FIXES), { nil: null }),
  fixState: fc.constantFrom(...FIX_STATES),
  severity: fc.constantFrom(...SEVERITIES),
  cvss: fc.constant(null),
  source: fc.constantFrom('grype' as const, 'trivy' as const),
  description: fc.constant(null),
  url: fc.constant(null),
});

const sightingArb: fc.Arbitrary<FixSighting> = fc.record({
  vulnerability: fc.constantFrom(...IDS),
  package: fc.constantFrom(...PACKAGES),
  fixedVersion: fc.constantFrom(...FIXES),
  // Any time of day within three weeks: grace ends fall on either side of the clocks below.
  firstSeenAt: fc.integer({ min: 0, max: 21 * DAY }).map((ms) => new Date(T0 + ms).toISOString()),
});

const graceArb = fc.record(
  {
    CRITICAL: fc.integer({ min: 0, max: 3 }),
    HIGH: fc.integer({ min: 0, max: 10 }),
    MEDIUM: fc.integer({ min: 0, max: 30 }),
    LOW: fc.integer({ min: 0, max: 30 }),
  },
  { requiredKeys: [] },
);

const scenarioArb = fc.record({
  fixGraceDays: graceArb,
  maximumFixableSeverity: fc.constantFrom(...SEVERITY_THRESHOLDS),
  maximumUnfixableSeverity: fc.constantFrom(...SEVERITY_THRESHOLDS),
  exceptionExpires: fc.option(fc.constantFrom('2026-11-25', '2026-12-05', '2026-12-20'), {
    nil: null,
  }),
  findings: fc.array(findingArb, { maxLength: 25 }),
  sightings: fc.array(sightingArb, { maxLength: 12 }),
  // Two instants, the second no earlier than the first.
  t1: fc.integer({ min: 0, max: 60 * DAY }),
  step: fc.integer({ min: 0, max: 30 * DAY }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function inputAt(s: Scenario, at: number): EvaluationInput {
  const policy = parsePolicy(
    JSON.stringify({
      apiVersion: 'clearance/v1',
      environments: { prod: { mode: 'enforce' } },
      rules: {
        vulnerabilities: {
          maximumFixableSeverity: s.maximumFixableSeverity,
          maximumUnfixableSeverity: s.maximumUnfixableSeverity,
          fixGraceDays: s.fixGraceDays,
          allowedCves: s.exceptionExpires
            ? [{ id: IDS[0], reason: 'r', owner: 'o', expires: s.exceptionExpires }]
            : [],
        },
      },
    }),
    'json',
  );
  return {
    image: image(),
    findings: s.findings,
    vex: [],
    policy,
    policyHash: policyHash(policy),
    now: new Date(T0 + at),
    fixSightings: s.sightings,
  };
}

// Hundreds of runs each: on a loaded shared machine they outlast vitest's 5 s default.
describe('fix grace periods (properties)', { timeout: 60_000 }, () => {
  it('is monotone in time: once denied, later clocks deny too while the input stays the same', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const early = evaluate(inputAt(s, s.t1)).prod;
        const late = evaluate(inputAt(s, s.t1 + s.step)).prod;
        if (early.decision === 'deny') expect(late.decision).toBe('deny');
        // Being denied for an expired grace in particular is never undone by time.
        const expired = early.reasons.some(
          (r) => r.ruleId === 'vulnerabilities.fixable-severity' && r.level === 'deny',
        );
        if (expired) {
          expect(late.reasons.some((r) => r.ruleId === 'vulnerabilities.fixable-severity')).toBe(
            true,
          );
        }
      }),
      { numRuns: 400 },
    );
  });

  it('never allows what the same input without grace denies once every grace has ended', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const far = 200 * DAY;
        const withGrace = evaluate(inputAt(s, far)).prod;
        const without = evaluate(inputAt({ ...s, fixGraceDays: {} }, far)).prod;
        expect(withGrace.decision).toBe(without.decision);
        expect(
          withGrace.reasons.filter((r) => r.ruleId.startsWith('vulnerabilities.fix-grace')),
        ).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});
