import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FINDING_SOURCES,
  FIX_STATES,
  type Finding,
  SEVERITIES,
  VEX_STATUSES,
  type VexStatement,
} from '../../../shared/findings/finding.js';
import { type EvaluationInput, evaluate } from '../../../shared/policy/evaluate.js';
import {
  CveException,
  type CveExceptionInput,
  parsePolicy,
  policyHash,
  RULE_IDS,
  SEVERITY_THRESHOLDS,
} from '../../../shared/policy/policy.js';
import { DIGEST, image, NOW } from './helpers.js';

// Two spellings of one GHSA id: matching is case-insensitive and output must not depend on which came first.
const IDS = [
  'CVE-2024-0001',
  'CVE-2024-0002',
  'CVE-2024-0003',
  'CVE-2005-2541',
  'GHSA-aaaa-bbbb-cccc',
  'ghsa-aaaa-bbbb-cccc',
];
const PACKAGES = ['openssl', 'zlib1g', 'tar', 'libc6'];
const OTHER_DIGEST = `sha256:${'f'.repeat(64)}`;

const findingArb: fc.Arbitrary<Finding> = fc.record({
  id: fc.constantFrom(...IDS),
  aliases: fc.subarray(IDS, { maxLength: 2 }),
  package: fc.constantFrom(...PACKAGES),
  packageType: fc.constant(null),
  installedVersion: fc.constantFrom('1.0', '1.1'),
  fixedVersion: fc.option(fc.constantFrom('1.2', '2.0', '1.2, 2.0'), { nil: null }),
  fixState: fc.constantFrom(...FIX_STATES),
  severity: fc.constantFrom(...SEVERITIES),
  cvss: fc.constant(null),
  source: fc.constantFrom(...FINDING_SOURCES),
  description: fc.constant(null),
  url: fc.constant(null),
});

const exceptionArb: fc.Arbitrary<CveExceptionInput> = fc.record({
  id: fc.constantFrom(...IDS),
  reason: fc.constantFrom('accepted risk', 'not reachable'),
  owner: fc.constantFrom('team-a', 'team-b'),
  // Around NOW (2026-11-29T10:00Z): expired, expiring, valid.
  expires: fc.constantFrom(
    '2026-11-28',
    '2026-11-29',
    '2026-12-03',
    '2027-01-01',
    '2026-11-29T12:00:00Z',
  ),
  scope: fc.record(
    {
      repositories: fc.constantFrom(['us-docker.pkg.dev/acme/**'], ['gcr.io/other/**']),
      packages: fc.subarray(PACKAGES, { minLength: 1 }),
    },
    { requiredKeys: [] },
  ),
});

const vexArb: fc.Arbitrary<VexStatement> = fc.record({
  vulnerability: fc.constantFrom(...IDS),
  aliases: fc.subarray(IDS, { maxLength: 1 }),
  products: fc.subarray(
    [
      `pkg:oci/web@${DIGEST.replace(':', '%3A')}?repository_url=us-docker.pkg.dev/acme/apps/web`,
      `us-docker.pkg.dev/acme/apps/web@${OTHER_DIGEST}`,
      'us-docker.pkg.dev/acme/apps/**',
    ],
    { minLength: 1 },
  ),
  subcomponents: fc.subarray(['pkg:deb/debian/openssl@1.0', 'pkg:deb/debian/tar@1.1']),
  status: fc.constantFrom(...VEX_STATUSES),
  justification: fc.constant(null),
  impactStatement: fc.constant(null),
  timestamp: fc.option(fc.constantFrom('2026-01-01T00:00:00Z', '2026-06-01T00:00:00Z'), {
    nil: null,
  }),
  documentId: fc.constantFrom('doc-1', 'doc-2'),
});

const rulesArb = fc.record({
  vulnerabilities: fc.record({
    requireScan: fc.boolean(),
    maximumFixableSeverity: fc.constantFrom(...SEVERITY_THRESHOLDS),
    maximumUnfixableSeverity: fc.constantFrom(...SEVERITY_THRESHOLDS),
    blockedCves: fc.subarray(IDS, { maxLength: 2 }),
    vex: fc.record({ apply: fc.boolean(), matchRepository: fc.boolean() }),
  }),
  trustedRepositories: fc.constantFrom(['us-docker.pkg.dev/acme/**'], ['gcr.io/other/**']),
  image: fc.record({ nonRoot: fc.boolean() }),
});

const scenarioArb = fc.record({
  rules: rulesArb,
  allowedCves: fc.array(exceptionArb, { maxLength: 6 }),
  external: fc.array(exceptionArb, { maxLength: 4 }),
  findings: fc.array(findingArb, { maxLength: 40 }),
  vex: fc.array(vexArb, { maxLength: 8 }),
  scan: fc.constantFrom('none', 'scanning', 'finished', 'failed') as fc.Arbitrary<
    'none' | 'scanning' | 'finished' | 'failed'
  >,
  user: fc.constantFrom('root', '65532', null),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function inputOf(s: Scenario): EvaluationInput {
  const policy = parsePolicy(
    JSON.stringify({
      apiVersion: 'clearance/v1',
      environments: { prod: { mode: 'enforce' }, dev: { mode: 'dryrun' } },
      rules: {
        ...s.rules,
        vulnerabilities: { ...s.rules.vulnerabilities, allowedCves: s.allowedCves },
      },
    }),
    'json',
  );
  return {
    image: image({
      user: s.user,
      scan: { status: s.scan, scanner: null, completedAt: null, counts: null, failureReason: null },
    }),
    findings: s.findings,
    vex: s.vex,
    policy,
    policyHash: policyHash(policy),
    now: NOW,
    exceptions: s.external.map((e) => CveException.parse(e)),
  };
}

function permutation<T>(items: readonly T[]): fc.Arbitrary<T[]> {
  return fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });
}

// Hundreds of runs each: on a loaded shared machine they outlast vitest's 5 s default.
describe('evaluate (properties)', { timeout: 60_000 }, () => {
  it('is deterministic: the same inputs give the same verdicts', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const first = evaluate(inputOf(s));
        const again = evaluate(inputOf(structuredClone(s)));
        expect(again).toEqual(first);
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on the order of findings, VEX statements or exceptions', () => {
    const arb = scenarioArb.chain((s) =>
      fc.record({
        original: fc.constant(s),
        shuffled: fc.record({
          ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, fc.constant(v)])),
          findings: permutation(s.findings),
          vex: permutation(s.vex),
          allowedCves: permutation(s.allowedCves),
          external: permutation(s.external),
        }) as fc.Arbitrary<Scenario>,
      }),
    );
    fc.assert(
      fc.property(arb, ({ original, shuffled }) => {
        const a = inputOf(original);
        const b = inputOf(shuffled);
        // Source order of allowedCves does not even change the policy hash.
        expect(b.policyHash).toBe(a.policyHash);
        expect(evaluate(b)).toEqual(evaluate(a));
      }),
      { numRuns: 300 },
    );
  });

  it('merges duplicate reports of one finding the same way whatever their order', () => {
    // Several scanners reporting one vulnerability in one package version, disagreeing on the rest.
    const duplicates = fc
      .tuple(findingArb, fc.array(findingArb, { minLength: 1, maxLength: 6 }))
      .map(([first, rest]) =>
        [first, ...rest].map((f) => ({
          ...f,
          id: first.id,
          package: first.package,
          installedVersion: first.installedVersion,
        })),
      );
    const arb = fc
      .tuple(scenarioArb, duplicates)
      .chain(([s, dups]) => fc.tuple(fc.constant({ ...s, findings: dups }), permutation(dups)));
    fc.assert(
      fc.property(arb, ([s, shuffled]) => {
        expect(evaluate(inputOf({ ...s, findings: shuffled }))).toEqual(evaluate(inputOf(s)));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the decision consistent with the reasons and the mode', () => {
    const known = new Set<string>(RULE_IDS);
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const out = evaluate(inputOf(s));
        // Dry-run never blocks and never carries a deny-level reason.
        expect(out.dev.decision).toBe('allow');
        expect(out.dev.reasons.every((r) => r.level === 'warn')).toBe(true);
        const blocking = out.prod.reasons.some(
          (r) => r.level === 'deny' && r.ruleId !== 'vulnerabilities.scan-required',
        );
        const pending = out.prod.reasons.some((r) => r.ruleId === 'vulnerabilities.scan-required');
        expect(out.prod.decision).toBe(blocking ? 'deny' : pending ? 'pending' : 'allow');
        // Same checks in both modes: dry-run reports what enforce decides on.
        expect(out.dev.reasons.map((r) => r.ruleId)).toEqual(out.prod.reasons.map((r) => r.ruleId));
        for (const r of [...out.prod.reasons, ...out.dev.reasons])
          expect(known.has(r.ruleId)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('never lets adding a new finding turn a deny into an allow', () => {
    // A new vulnerability id: a duplicate report may legitimately move a finding from unfixable to
    // fixable (a scanner knows a fix), which can change which threshold applies.
    fc.assert(
      fc.property(scenarioArb, findingArb, (s, f) => {
        const extra = { ...f, id: 'CVE-2099-0001' };
        const before = evaluate(inputOf(s)).prod.decision;
        const after = evaluate(inputOf({ ...s, findings: [...s.findings, extra] })).prod.decision;
        if (before === 'deny') expect(after).toBe('deny');
      }),
      { numRuns: 300 },
    );
  });
});
