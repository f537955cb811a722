import { describe, expect, it } from 'vitest';
import type { Finding, VexStatement } from '../../../shared/findings/finding.js';
import {
  diffVerdicts,
  type EvaluationInput,
  evaluate,
  evaluateEnvironment,
  MAX_REASONS_PER_RULE,
  summariseVerdicts,
} from '../../../shared/policy/evaluate.js';
import {
  type CveException,
  CveException as CveExceptionSchema,
  type PolicyInput,
  parsePolicy,
  policyHash,
} from '../../../shared/policy/policy.js';
import type { Verdict } from '../../../shared/verdict.js';
import {
  finding,
  grypeFindings,
  type ImageOverrides,
  image,
  NOW,
  openVexStatements,
  TRUST_VEX_SIGNER,
} from './helpers.js';

type Rules = NonNullable<PolicyInput['rules']>;

function policyOf(rules: Rules, environments: PolicyInput['environments'] = { prod: {} }) {
  const p = parsePolicy(
    JSON.stringify({ apiVersion: 'clearance/v1', environments, rules, trust: TRUST_VEX_SIGNER }),
    'json',
  );
  return { policy: p, policyHash: policyHash(p) };
}

function run(
  rules: Rules,
  opts: {
    image?: ImageOverrides;
    findings?: Finding[];
    vex?: VexStatement[];
    exceptions?: CveException[];
    now?: Date;
    environments?: PolicyInput['environments'];
  } = {},
): Verdict {
  const input: EvaluationInput = {
    image: image(opts.image),
    findings: opts.findings ?? [],
    vex: opts.vex ?? [],
    ...policyOf(rules, opts.environments),
    now: opts.now ?? NOW,
    ...(opts.exceptions ? { exceptions: opts.exceptions } : {}),
  };
  return evaluate(input).prod;
}

const ids = (v: Verdict, level: 'deny' | 'warn') =>
  v.reasons.filter((r) => r.level === level).map((r) => r.ruleId);

const daysAgo = (n: number) => new Date(NOW.getTime() - n * 86_400_000).toISOString();

const BASE_CURRENT = {
  name: 'marketplace.gcr.io/google/debian12:latest',
  digest: `sha256:${'b'.repeat(64)}`,
  status: 'current' as const,
};
const BASE_STALE = (days: number) => ({
  ...BASE_CURRENT,
  status: 'stale' as const,
  supersededAt: daysAgo(days),
  currentDigest: `sha256:${'c'.repeat(64)}`,
});

interface Case {
  name: string;
  rules: Rules;
  image?: ImageOverrides;
  findings?: Finding[];
  decision: Verdict['decision'];
  deny?: string[];
  warn?: string[];
}

const CASES: Case[] = [
  // trusted repositories
  {
    name: 'trusted repository: matching glob allows',
    rules: { trustedRepositories: ['us-docker.pkg.dev/acme/**'] },
    decision: 'allow',
  },
  {
    name: 'trusted repository: other repository denies',
    rules: { trustedRepositories: ['us-docker.pkg.dev/acme/**'] },
    image: { registry: 'docker.io', repository: 'library/nginx' },
    decision: 'deny',
    deny: ['trusted-repository'],
  },
  {
    name: 'trusted repository: `*` does not cross segments',
    rules: { trustedRepositories: ['us-docker.pkg.dev/acme/*'] },
    decision: 'deny',
    deny: ['trusted-repository'],
  },
  // exempt images
  {
    name: 'exempt image: allowed with a reason even when every rule would fail',
    rules: {
      exemptImages: ['us-docker.pkg.dev/acme/apps/*'],
      trustedRepositories: ['gcr.io/elsewhere/**'],
      image: { nonRoot: true },
    },
    image: { user: 'root' },
    decision: 'allow',
    warn: ['exempt-image'],
  },
  // base image
  {
    name: 'base unknown: deny when configured',
    rules: { baseImage: { unknown: 'deny' } },
    decision: 'deny',
    deny: ['base-image.unknown'],
  },
  {
    name: 'base unknown: warn when configured',
    rules: { baseImage: { unknown: 'warn' } },
    image: { base: { name: null, digest: null, status: 'unknown' } },
    decision: 'allow',
    warn: ['base-image.unknown'],
  },
  {
    name: 'base unknown: allow when configured',
    rules: { baseImage: { unknown: 'allow' } },
    decision: 'allow',
  },
  {
    name: 'base allowed: managed base matches',
    rules: { baseImage: { allowed: ['marketplace.gcr.io/google/**', 'gcr.io/distroless/**'] } },
    image: { base: BASE_CURRENT },
    decision: 'allow',
  },
  {
    name: 'base allowed: distroless pinned by digest matches',
    rules: { baseImage: { allowed: ['gcr.io/distroless/**'] } },
    image: {
      base: { ...BASE_CURRENT, name: `gcr.io/distroless/static-debian12@sha256:${'d'.repeat(64)}` },
    },
    decision: 'allow',
  },
  {
    name: 'base allowed: other base denies',
    rules: { baseImage: { allowed: ['marketplace.gcr.io/google/**'] } },
    image: { base: { ...BASE_CURRENT, name: 'docker.io/library/debian:12' } },
    decision: 'deny',
    deny: ['base-image.allowed'],
  },
  {
    name: 'base fresh: current base allows',
    rules: { baseImage: { maxStaleDays: 14 } },
    image: { base: BASE_CURRENT },
    decision: 'allow',
  },
  {
    name: 'base fresh: superseded within the window warns',
    rules: { baseImage: { maxStaleDays: 14 } },
    image: { base: BASE_STALE(3) },
    decision: 'allow',
    warn: ['base-image.fresh'],
  },
  {
    name: 'base fresh: superseded beyond the window denies',
    rules: { baseImage: { maxStaleDays: 14 } },
    image: { base: BASE_STALE(20) },
    decision: 'deny',
    deny: ['base-image.fresh'],
  },
  {
    name: 'base fresh: stale at an unknown time denies',
    rules: { baseImage: { maxStaleDays: 14 } },
    image: { base: { ...BASE_STALE(1), supersededAt: null } },
    decision: 'deny',
    deny: ['base-image.fresh'],
  },
  // scan state
  {
    name: 'scan required: no scan yet is pending',
    rules: { vulnerabilities: { requireScan: true } },
    image: {
      scan: { status: 'none', scanner: null, completedAt: null, counts: null, failureReason: null },
    },
    decision: 'pending',
    deny: ['vulnerabilities.scan-required'],
  },
  {
    name: 'scan required: scanning is pending',
    rules: { vulnerabilities: {} },
    image: {
      scan: {
        status: 'scanning',
        scanner: null,
        completedAt: null,
        counts: null,
        failureReason: null,
      },
    },
    decision: 'pending',
    deny: ['vulnerabilities.scan-required'],
  },
  {
    name: 'scan required: a deny that a scan cannot undo wins over pending',
    rules: { vulnerabilities: {}, trustedRepositories: ['gcr.io/other/**'] },
    image: {
      scan: {
        status: 'scanning',
        scanner: null,
        completedAt: null,
        counts: null,
        failureReason: null,
      },
    },
    decision: 'deny',
    deny: ['trusted-repository', 'vulnerabilities.scan-required'],
  },
  {
    name: 'scan not required: no scan allows',
    rules: { vulnerabilities: { requireScan: false } },
    image: {
      scan: { status: 'none', scanner: null, completedAt: null, counts: null, failureReason: null },
    },
    decision: 'allow',
  },
  {
    name: 'scan failed: denies when required',
    rules: { vulnerabilities: {} },
    image: {
      scan: {
        status: 'failed',
        scanner: 'container-analysis',
        completedAt: null,
        counts: null,
        failureReason: 'FINISHED_UNSUPPORTED',
      },
    },
    decision: 'deny',
    deny: ['vulnerabilities.scan-failed'],
  },
  {
    name: 'scan failed: warns when not required',
    rules: { vulnerabilities: { requireScan: false } },
    image: {
      scan: {
        status: 'failed',
        scanner: 'container-analysis',
        completedAt: null,
        counts: null,
        failureReason: 'FINISHED_FAILED',
      },
    },
    decision: 'allow',
    warn: ['vulnerabilities.scan-failed'],
  },
  // severity thresholds
  {
    name: 'fixable: at the threshold allows',
    rules: { vulnerabilities: { maximumFixableSeverity: 'MEDIUM' } },
    findings: [
      finding({
        id: 'CVE-2024-0001',
        severity: 'MEDIUM',
        fixState: 'fixed',
        fixedVersion: '3.0.13-1',
      }),
    ],
    decision: 'allow',
  },
  {
    name: 'fixable: above the threshold denies',
    rules: { vulnerabilities: { maximumFixableSeverity: 'MEDIUM' } },
    findings: [
      finding({
        id: 'CVE-2024-0001',
        severity: 'HIGH',
        fixState: 'fixed',
        fixedVersion: '3.0.13-1',
      }),
    ],
    decision: 'deny',
    deny: ['vulnerabilities.fixable-severity'],
  },
  {
    name: 'unfixable: at the threshold allows',
    rules: { vulnerabilities: { maximumUnfixableSeverity: 'HIGH' } },
    findings: [finding({ id: 'CVE-2024-0002', severity: 'HIGH', fixState: 'wont-fix' })],
    decision: 'allow',
  },
  {
    name: 'unfixable: above the threshold denies',
    rules: { vulnerabilities: { maximumUnfixableSeverity: 'HIGH' } },
    findings: [finding({ id: 'CVE-2024-0002', severity: 'CRITICAL', fixState: 'not-fixed' })],
    decision: 'deny',
    deny: ['vulnerabilities.unfixable-severity'],
  },
  {
    name: 'unfixable: an unknown fix state counts as unfixable',
    rules: {
      vulnerabilities: { maximumFixableSeverity: 'LOW', maximumUnfixableSeverity: 'CRITICAL' },
    },
    findings: [finding({ id: 'CVE-2024-0003', severity: 'HIGH', fixState: 'unknown' })],
    decision: 'allow',
  },
  {
    name: 'BLOCK_ALL denies even an unspecified severity',
    rules: { vulnerabilities: { maximumUnfixableSeverity: 'BLOCK_ALL' } },
    findings: [finding({ id: 'CVE-2024-0004', severity: 'UNSPECIFIED' })],
    decision: 'deny',
    deny: ['vulnerabilities.unfixable-severity'],
  },
  {
    name: 'ALLOW_ALL allows a critical finding',
    rules: { vulnerabilities: { maximumFixableSeverity: 'ALLOW_ALL' } },
    findings: [
      finding({ id: 'CVE-2024-0005', severity: 'CRITICAL', fixState: 'fixed', fixedVersion: '9' }),
    ],
    decision: 'allow',
  },
  // blocked CVEs
  {
    name: 'blocked CVE: denies whatever its severity',
    rules: { vulnerabilities: { blockedCves: ['CVE-2021-44228'] } },
    findings: [
      finding({
        id: 'CVE-2021-44228',
        severity: 'LOW',
        package: 'log4j-core',
        installedVersion: '2.14.1',
      }),
    ],
    decision: 'deny',
    deny: ['vulnerabilities.blocked-cve'],
  },
  {
    name: 'blocked CVE: matches through an alias',
    rules: { vulnerabilities: { blockedCves: ['cve-2021-44228'] } },
    findings: [
      finding({
        id: 'GHSA-jfh8-c2jp-5v3q',
        aliases: ['CVE-2021-44228'],
        severity: 'CRITICAL',
        package: 'log4j-core',
      }),
    ],
    decision: 'deny',
    deny: ['vulnerabilities.blocked-cve'],
  },
  {
    name: 'blocked CVE: absent allows',
    rules: { vulnerabilities: { blockedCves: ['CVE-2021-44228'] } },
    findings: [finding({ id: 'CVE-2021-45046', severity: 'LOW' })],
    decision: 'allow',
  },
  // provenance
  {
    name: 'provenance missing: deny by default',
    rules: { provenance: {} },
    decision: 'deny',
    deny: ['provenance.missing'],
  },
  {
    name: 'provenance missing: warn when configured',
    rules: { provenance: { missing: 'warn' } },
    decision: 'allow',
    warn: ['provenance.missing'],
  },
  {
    name: 'provenance missing: allow when configured',
    rules: { provenance: { missing: 'allow', trustedBuilders: ['x'] } },
    decision: 'allow',
  },
  {
    name: 'provenance: trusted builder and source allow',
    rules: {
      provenance: {
        trustedBuilders: ['https://cloudbuild.googleapis.com/GoogleHostedWorker*'],
        trustedSources: ['https://github.com/acme/**'],
      },
    },
    image: {
      provenance: {
        builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3',
        sourceRepository: 'https://github.com/acme/web',
        source: 'cloud-build',
      },
    },
    decision: 'allow',
  },
  {
    name: 'provenance: untrusted builder denies',
    rules: {
      provenance: { trustedBuilders: ['https://cloudbuild.googleapis.com/GoogleHostedWorker*'] },
    },
    image: {
      provenance: {
        builderId: 'https://github.com/Attestations/GitHubHostedActions@v1',
        sourceRepository: 'https://github.com/acme/web',
        source: 'slsa',
      },
    },
    decision: 'deny',
    deny: ['provenance.builder'],
  },
  {
    name: 'provenance: untrusted source and absent builder deny',
    rules: {
      provenance: { trustedBuilders: ['**'], trustedSources: ['https://github.com/acme/**'] },
    },
    image: {
      provenance: {
        builderId: null,
        sourceRepository: 'https://github.com/mallory/web',
        source: 'slsa',
      },
    },
    decision: 'deny',
    deny: ['provenance.builder', 'provenance.source'],
  },
  // image config
  ...(['65532', 'app', '1000:0', 'nobody:nogroup'] as const).map(
    (user): Case => ({
      name: `non-root: user "${user}" allows`,
      rules: { image: { nonRoot: true } },
      image: { user },
      decision: 'allow',
    }),
  ),
  ...(['', 'root', '0', '0:0', 'root:root', '0:1000', '00', null] as const).map(
    (user): Case => ({
      name: `non-root: user ${JSON.stringify(user)} denies`,
      rules: { image: { nonRoot: true } },
      image: { user },
      decision: 'deny',
      deny: ['image.non-root'],
    }),
  ),
  {
    name: 'max age: young image allows',
    rules: { image: { maxAgeDays: 90 } },
    image: { created: daysAgo(89) },
    decision: 'allow',
  },
  {
    name: 'max age: old image denies',
    rules: { image: { maxAgeDays: 90 } },
    image: { created: daysAgo(91) },
    decision: 'deny',
    deny: ['image.max-age'],
  },
  {
    name: 'max age: reproducible build (epoch created) falls back to push time',
    rules: { image: { maxAgeDays: 90 } },
    image: { created: '1970-01-01T00:00:00Z', pushedAt: daysAgo(2) },
    decision: 'allow',
  },
  {
    name: 'max age: unknown age denies',
    rules: { image: { maxAgeDays: 90 } },
    image: { created: null, pushedAt: null },
    decision: 'deny',
    deny: ['image.max-age'],
  },
];

describe('evaluate: every rule, both sides', () => {
  it.each(CASES)('$name', (c) => {
    const v = run(c.rules, { image: c.image, findings: c.findings });
    expect(v.decision).toBe(c.decision);
    expect(ids(v, 'deny')).toEqual(c.deny ?? []);
    expect(ids(v, 'warn')).toEqual(c.warn ?? []);
    for (const r of v.reasons) {
      expect(r.message.length).toBeGreaterThan(0);
      expect(r.message).not.toContain('\n');
    }
  });

  it('records the environment, mode, policy hash and time on each verdict', () => {
    const { policy, policyHash: hash } = policyOf({}, { prod: {}, dev: { mode: 'dryrun' } });
    const out = evaluate({
      image: image(),
      findings: [],
      vex: [],
      policy,
      policyHash: hash,
      now: NOW,
    });
    expect(Object.keys(out)).toEqual(['dev', 'prod']);
    expect(out.prod).toEqual({
      environment: 'prod',
      decision: 'allow',
      mode: 'enforce',
      reasons: [],
      policyHash: hash,
      evaluatedAt: NOW.toISOString(),
    });
    expect(out.dev.mode).toBe('dryrun');
  });
});

describe('evaluate: remediation hints', () => {
  it('groups fixable findings by package with the highest fixed version (real Grype report)', () => {
    const findings = grypeFindings('grype-debian-image-many-vulns-incl-CVE-2005-2541.json');
    expect(findings).toHaveLength(327);
    // Unknown-severity fixable findings kept below every threshold, as before unknownFixableSeverity.
    const v = run(
      { vulnerabilities: { maximumFixableSeverity: 'LOW', unknownFixableSeverity: 'UNSPECIFIED' } },
      { findings },
    );
    expect(v.decision).toBe('deny');
    const remediations = v.reasons.map((r) => r.remediation);
    expect(remediations).toContain(
      'upgrade openssl 1.1.1d-0+deb10u3 → 1.1.1d-0+deb10u5 fixes 4 findings',
    );
    expect(remediations).toContain(
      'upgrade libsqlite3-0 3.27.2-3 → 3.27.2-3+deb10u1 fixes 6 findings',
    );
    const openssl = v.reasons.find((r) => r.message.startsWith('openssl '));
    expect(openssl?.message).toBe(
      'openssl 1.1.1d-0+deb10u3 has 4 fixable findings over the threshold (allowed up to LOW): CVE-2019-1551 MEDIUM, CVE-2020-1971 MEDIUM, CVE-2021-23840 MEDIUM, +1 more',
    );
    // Worst package first: postgresql-client carries the only fixable HIGHs.
    expect(v.reasons[0].message).toMatch(/^postgresql-client /);
    // Unfixable findings are a separate rule and allowed here.
    expect(ids(v, 'deny').every((id) => id === 'vulnerabilities.fixable-severity')).toBe(true);
  });

  it('caps per-package reasons and summarises the rest', () => {
    const findings = Array.from({ length: MAX_REASONS_PER_RULE + 5 }, (_, i) =>
      finding({
        id: `CVE-2024-${1000 + i}`,
        package: `pkg${String(i).padStart(2, '0')}`,
        severity: 'HIGH',
      }),
    );
    const v = run({ vulnerabilities: { maximumUnfixableSeverity: 'MEDIUM' } }, { findings });
    expect(v.reasons).toHaveLength(MAX_REASONS_PER_RULE + 1);
    expect(v.reasons.at(-1)?.message).toBe(
      '… and 5 more packages with 5 unfixable findings over the threshold (allowed up to MEDIUM)',
    );
  });

  it('tells how to rebuild on a stale base, with the current digest and its date', () => {
    const v = run({ baseImage: { maxStaleDays: 14 } }, { image: { base: BASE_STALE(20) } });
    expect(v.reasons).toEqual([
      {
        ruleId: 'base-image.fresh',
        level: 'deny',
        message:
          'base marketplace.gcr.io/google/debian12:latest was superseded 20 days ago (allowed: 14)',
        remediation: `rebuild on marketplace.gcr.io/google/debian12:latest (current sha256:${'c'.repeat(64)}, published 2026-11-09)`,
      },
    ]);
    const warn = run({ baseImage: { maxStaleDays: 14 } }, { image: { base: BASE_STALE(3) } });
    expect(warn.reasons[0].message).toBe(
      'base marketplace.gcr.io/google/debian12:latest was superseded 3 days ago; denied after 2026-12-10',
    );
  });

  it('merges one vulnerability reported by two scanners', () => {
    const findings = [
      finding({
        id: 'CVE-2024-9',
        severity: 'MEDIUM',
        fixState: 'fixed',
        fixedVersion: '3.0.12-1',
        source: 'trivy',
      }),
      finding({ id: 'CVE-2024-9', severity: 'HIGH', fixState: 'not-fixed', source: 'grype' }),
    ];
    const v = run({ vulnerabilities: { maximumFixableSeverity: 'MEDIUM' } }, { findings });
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0].remediation).toBe('upgrade openssl 3.0.11-1 → 3.0.12-1 fixes 1 finding');
    expect(v.reasons[0].message).toContain('CVE-2024-9 HIGH');
  });
});

describe('evaluate: named cases', () => {
  it('denies a fixable HIGH and allows an unfixable HIGH under MEDIUM/HIGH', () => {
    const rules: Rules = {
      vulnerabilities: { maximumFixableSeverity: 'MEDIUM', maximumUnfixableSeverity: 'HIGH' },
    };
    const fixable = finding({
      id: 'CVE-2024-1111',
      severity: 'HIGH',
      fixState: 'fixed',
      fixedVersion: '3.0.13-1',
    });
    const unfixable = finding({
      id: 'CVE-2024-2222',
      severity: 'HIGH',
      fixState: 'not-fixed',
      package: 'zlib1g',
    });
    expect(run(rules, { findings: [unfixable] }).decision).toBe('allow');
    const both = run(rules, { findings: [fixable, unfixable] });
    expect(both.decision).toBe('deny');
    expect(both.reasons).toEqual([
      {
        ruleId: 'vulnerabilities.fixable-severity',
        level: 'deny',
        message:
          'openssl 3.0.11-1 has 1 fixable finding over the threshold (allowed up to MEDIUM): CVE-2024-1111 HIGH',
        remediation: 'upgrade openssl 3.0.11-1 → 3.0.13-1 fixes 1 finding',
      },
    ]);
  });

  describe('CVE-2005-2541 excepted until a date (real Grype report, tar findings)', () => {
    const tar = grypeFindings('grype-debian-image-many-vulns-incl-CVE-2005-2541.json').filter(
      (f) => f.package === 'tar',
    );
    const exception = (id: string, expires: string) => ({
      id,
      reason: 'tar setuid extraction: we never extract untrusted archives as root',
      owner: 'platform-team@acme.example',
      expires,
      scope: { packages: ['tar'] },
    });
    const rules: Rules = {
      vulnerabilities: {
        maximumUnfixableSeverity: 'BLOCK_ALL',
        allowedCves: [
          exception('CVE-2005-2541', '2026-12-01'),
          exception('CVE-2019-9923', '2027-06-30'),
          exception('CVE-2021-20193', '2027-06-30'),
        ],
      },
    };

    it('the report has the three unfixable tar findings', () => {
      expect(tar.map((f) => [f.id, f.severity, f.fixState])).toEqual([
        ['CVE-2005-2541', 'MINIMAL', 'not-fixed'],
        ['CVE-2019-9923', 'MINIMAL', 'not-fixed'],
        ['CVE-2021-20193', 'MINIMAL', 'not-fixed'],
      ]);
      const unexcepted = run(
        { vulnerabilities: { maximumUnfixableSeverity: 'BLOCK_ALL' } },
        { findings: tar },
      );
      expect(unexcepted.decision).toBe('deny');
    });

    it('is allowed on the last day, with a warning that the exception is expiring', () => {
      const v = run(rules, { findings: tar, now: new Date('2026-12-01T23:59:59Z') });
      expect(v.decision).toBe('allow');
      expect(v.reasons.filter((r) => r.ruleId !== 'vulnerabilities.exception-applied')).toEqual([
        {
          ruleId: 'vulnerabilities.exception-expiring',
          level: 'warn',
          message:
            'exception for CVE-2005-2541 (owner platform-team@acme.example) expires on 2026-12-01, in 1 day',
          remediation: 'fix CVE-2005-2541 or renew the exception before it expires',
          exception: 'CVE-2005-2541',
        },
      ]);
    });

    it('is not warned about long before expiry, but each exception relied on is said with its reason, owner and expiry', () => {
      expect(run(rules, { findings: tar, now: new Date('2026-11-01T00:00:00Z') }).reasons).toEqual(
        [
          ['CVE-2005-2541', '2026-12-01'],
          ['CVE-2019-9923', '2027-06-30'],
          ['CVE-2021-20193', '2027-06-30'],
        ].map(([id, until]) => ({
          ruleId: 'vulnerabilities.exception-applied',
          level: 'warn',
          message: `${id} (tar 1.30+dfsg-6) accepted by exception until ${until}, owner platform-team@acme.example: tar setuid extraction: we never extract untrusted archives as root`,
          remediation: null,
        })),
      );
    });

    it('is denied again the day after the expiry, and says the exception expired', () => {
      const v = run(rules, { findings: tar, now: new Date('2026-12-02T00:00:00Z') });
      expect(v.decision).toBe('deny');
      expect(v.reasons.filter((r) => r.ruleId !== 'vulnerabilities.exception-applied')).toEqual([
        {
          ruleId: 'vulnerabilities.unfixable-severity',
          level: 'deny',
          message:
            'tar 1.30+dfsg-6 has 1 unfixable finding over the threshold (none allowed): CVE-2005-2541 MINIMAL',
          remediation:
            'no fix available yet: rebuild without tar, or record a VEX not_affected statement or a time-bound exception (allowedCves) for CVE-2005-2541',
        },
        {
          ruleId: 'vulnerabilities.exception-expired',
          level: 'warn',
          message:
            'exception for CVE-2005-2541 (owner platform-team@acme.example: tar setuid extraction: we never extract untrusted archives as root) expired on 2026-12-01 and no longer applies',
          remediation:
            'fix CVE-2005-2541, or renew the exception with a new expiry if the reason still holds',
        },
      ]);
    });

    it('works the same when the exception comes from outside the policy document', () => {
      const { allowedCves, ...rest } = rules.vulnerabilities ?? {};
      const external = (allowedCves ?? []).map((e) => CveExceptionSchema.parse(e));
      const before = run(
        { vulnerabilities: rest },
        { findings: tar, exceptions: external, now: new Date('2026-12-01T12:00:00Z') },
      );
      const after = run(
        { vulnerabilities: rest },
        { findings: tar, exceptions: external, now: new Date('2026-12-02T00:00:00Z') },
      );
      expect([before.decision, after.decision]).toEqual(['allow', 'deny']);
    });
  });

  it('applies exceptions only within their scope, and through aliases', () => {
    const f = finding({
      id: 'GHSA-xxxx-yyyy-zzzz',
      aliases: ['CVE-2024-3333'],
      severity: 'CRITICAL',
    });
    const ex = (scope: object) => ({
      vulnerabilities: {
        maximumUnfixableSeverity: 'HIGH' as const,
        allowedCves: [
          { id: 'CVE-2024-3333', reason: 'r', owner: 'o', expires: '2027-01-01', scope },
        ],
      },
    });
    expect(run(ex({}), { findings: [f] }).decision).toBe('allow');
    expect(
      run(ex({ repositories: ['us-docker.pkg.dev/acme/**'] }), { findings: [f] }).decision,
    ).toBe('allow');
    expect(
      run(ex({ repositories: ['us-docker.pkg.dev/other/**'] }), { findings: [f] }).decision,
    ).toBe('deny');
    expect(run(ex({ packages: ['openssl'] }), { findings: [f] }).decision).toBe('allow');
    expect(run(ex({ packages: ['libssl3'] }), { findings: [f] }).decision).toBe('deny');
  });

  it('quotes advisory ids as the scanner spelled them', () => {
    const f = finding({ id: 'GHSA-jfh8-c2jp-5v3q', severity: 'CRITICAL', package: 'log4j-core' });
    const v = run(
      {
        vulnerabilities: { maximumUnfixableSeverity: 'HIGH', blockedCves: ['GHSA-JFH8-C2JP-5V3Q'] },
      },
      { findings: [f] },
    );
    expect(v.reasons.map((r) => r.message)).toEqual([
      'GHSA-jfh8-c2jp-5v3q is blocked by policy (in log4j-core 3.0.11-1)',
    ]);
    const w = run({ vulnerabilities: { maximumUnfixableSeverity: 'HIGH' } }, { findings: [f] });
    expect(w.reasons[0].message).toContain('GHSA-jfh8-c2jp-5v3q CRITICAL');
  });

  it('never lets an exception lift a blocked CVE', () => {
    const v = run(
      {
        vulnerabilities: {
          blockedCves: ['CVE-2021-44228'],
          allowedCves: [{ id: 'CVE-2021-44228', reason: 'r', owner: 'o', expires: '2027-01-01' }],
        },
      },
      {
        findings: [
          finding({
            id: 'CVE-2021-44228',
            severity: 'CRITICAL',
            package: 'log4j-core',
            installedVersion: '2.14.1',
            fixState: 'fixed',
            fixedVersion: '2.17.1',
          }),
        ],
      },
    );
    expect(v.decision).toBe('deny');
    expect(v.reasons).toEqual([
      {
        ruleId: 'vulnerabilities.blocked-cve',
        level: 'deny',
        message: 'CVE-2021-44228 is blocked by policy (in log4j-core 2.14.1)',
        remediation: 'upgrade log4j-core 2.14.1 → 2.17.1',
      },
    ]);
  });

  describe('VEX (real OpenVEX document)', () => {
    const vex = openVexStatements('openvex-v0.2.0-alpine-openssl.json');
    const alpine = {
      digest: 'sha256:124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126',
    };
    const rules: Rules = { vulnerabilities: { maximumUnfixableSeverity: 'LOW' } };
    const libssl = finding({
      id: 'CVE-2023-3446',
      severity: 'MEDIUM',
      package: 'libssl3',
      installedVersion: '3.0.8-r3',
    });

    it('a not_affected statement removes the finding', () => {
      expect(run(rules, { image: alpine, findings: [libssl] }).decision).toBe('deny');
      expect(run(rules, { image: alpine, findings: [libssl], vex }).decision).toBe('allow');
    });

    it('a fixed statement removes the finding too', () => {
      const f = finding({
        id: 'CVE-2023-2650',
        severity: 'HIGH',
        package: 'libcrypto3',
        installedVersion: '3.0.8-r3',
      });
      expect(run(rules, { image: alpine, findings: [f], vex }).decision).toBe('allow');
    });

    it('does not apply to another image, another package, or when VEX is off', () => {
      expect(run(rules, { findings: [libssl], vex }).decision).toBe('deny');
      const busybox = { ...libssl, package: 'busybox' };
      expect(run(rules, { image: alpine, findings: [busybox], vex }).decision).toBe('deny');
      const off: Rules = {
        vulnerabilities: { maximumUnfixableSeverity: 'LOW', vex: { apply: false } },
      };
      expect(run(off, { image: alpine, findings: [libssl], vex }).decision).toBe('deny');
    });

    it('applies to a platform image through the index digest it belongs to', () => {
      const child = { digest: `sha256:${'e'.repeat(64)}`, parents: [alpine.digest] };
      expect(run(rules, { image: child, findings: [libssl], vex }).decision).toBe('allow');
    });

    it('an unsigned statement, or one from a signer the policy does not trust, is shown and not applied', () => {
      for (const signer of [null, 'mallory']) {
        const unsigned = vex.map((s) => ({ ...s, signer }));
        const v = run(rules, { image: alpine, findings: [libssl], vex: unsigned });
        expect(v.decision).toBe('deny');
        expect(v.reasons).toContainEqual(
          expect.objectContaining({
            ruleId: 'evidence.unverified',
            level: 'warn',
            message: expect.stringMatching(
              /^VEX not_affected for CVE-2023-3446 not applied \(document https:\/\/openvex.dev\/.* by The OpenVEX Project <openvex@openssf.org>\): (not signed by a trusted signer|signer mallory may not sign VEX under this policy)$/,
            ),
          }),
        );
      }
    });
  });

  describe('unverified evidence', () => {
    const unverified = [
      {
        kind: 'provenance' as const,
        reason: 'not signed by any of the 1 key(s) the policy trusts for provenance',
        claim:
          'builder https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0',
        uploader: 'bearer-token',
        receivedAt: NOW.toISOString(),
      },
    ];

    it('is shown among the reasons and never changes the decision', () => {
      const rules: Rules = { provenance: { missing: 'deny' } };
      const without = run(rules);
      const withIt = run(rules, { image: { unverified } });
      expect(without.decision).toBe('deny');
      expect(withIt.decision).toBe('deny');
      expect(withIt.reasons.filter((r) => r.ruleId !== 'evidence.unverified')).toEqual(
        without.reasons,
      );
      expect(withIt.reasons.at(-1)).toEqual({
        ruleId: 'evidence.unverified',
        level: 'warn',
        message:
          'unverified provenance ignored (builder https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0, uploaded by bearer-token): not signed by any of the 1 key(s) the policy trusts for provenance',
        remediation: "sign it with a key or keyless identity named in the policy's trust.signers",
      });
      expect(run({}, { image: { unverified } }).decision).toBe('allow');
    });
  });

  describe('requireScan names the scanners that count', () => {
    const run1 = (status: 'finished' | 'failed' | 'scanning') => ({
      status,
      scanner: 'trivy 0.50.0',
      completedAt: NOW.toISOString(),
      counts: null,
      failureReason: status === 'failed' ? 'db download failed' : null,
      database: '2026-11-29T00:00:00Z',
      uploader: 'ci@acme.iam.gserviceaccount.com',
    });
    const trivyOnly = {
      scan: { status: 'finished' as const, scanner: 'trivy 0.50.0' },
      scans: { trivy: run1('finished') },
    };

    it('by default only an Artifact Analysis scan counts: a CI report alone leaves the image pending', () => {
      const v = run({ vulnerabilities: {} }, { image: trivyOnly });
      expect(v.decision).toBe('pending');
      expect(v.reasons[0]?.message).toBe('no vulnerability scan by artifact-analysis yet');
    });

    it('a policy naming trivy accepts its run; any one named scanner suffices', () => {
      expect(
        run({ vulnerabilities: { requireScan: ['trivy'] } }, { image: trivyOnly }).decision,
      ).toBe('allow');
      const both = {
        scans: {
          trivy: run1('finished'),
          'artifact-analysis': { ...run1('scanning'), uploader: null },
        },
      };
      expect(
        run({ vulnerabilities: { requireScan: ['artifact-analysis', 'trivy'] } }, { image: both })
          .decision,
      ).toBe('allow');
      expect(run({ vulnerabilities: {} }, { image: both }).decision).toBe('pending');
    });

    it('a failed run of a named scanner denies; of another scanner it does not', () => {
      const failed = { scans: { trivy: run1('failed') } };
      expect(run({ vulnerabilities: { requireScan: ['trivy'] } }, { image: failed })).toMatchObject(
        {
          decision: 'deny',
          reasons: [
            expect.objectContaining({ message: 'vulnerability scan failed: db download failed' }),
          ],
        },
      );
      expect(run({ vulnerabilities: {} }, { image: failed }).decision).toBe('pending');
    });
  });

  it('dry-run allows and reports every would-be deny as a warning', () => {
    const environments = { prod: { mode: 'dryrun' as const } };
    const rules: Rules = {
      trustedRepositories: ['gcr.io/elsewhere/**'],
      vulnerabilities: { maximumFixableSeverity: 'MEDIUM' },
      image: { nonRoot: true },
    };
    const findings = [
      finding({
        id: 'CVE-2024-1111',
        severity: 'HIGH',
        fixState: 'fixed',
        fixedVersion: '3.0.13-1',
      }),
    ];
    const v = run(rules, { findings, environments, image: { user: 'root' } });
    expect(v.decision).toBe('allow');
    expect(v.mode).toBe('dryrun');
    expect(v.reasons.map((r) => [r.ruleId, r.level])).toEqual([
      ['trusted-repository', 'warn'],
      ['vulnerabilities.fixable-severity', 'warn'],
      ['image.non-root', 'warn'],
    ]);
    for (const r of v.reasons) expect(r.message).toMatch(/^dry-run, would deny: /);
    // The same inputs in enforce mode deny with the same reasons.
    const enforced = run(rules, { findings, image: { user: 'root' } });
    expect(enforced.decision).toBe('deny');
    expect(enforced.reasons.map((r) => `dry-run, would deny: ${r.message}`)).toEqual(
      v.reasons.map((r) => r.message),
    );
  });

  it('dry-run also allows an image whose scan is pending', () => {
    const v = run(
      { vulnerabilities: {} },
      {
        environments: { prod: { mode: 'dryrun' } },
        image: {
          scan: {
            status: 'scanning',
            scanner: null,
            completedAt: null,
            counts: null,
            failureReason: null,
          },
        },
      },
    );
    expect(v.decision).toBe('allow');
    expect(ids(v, 'warn')).toEqual(['vulnerabilities.scan-required']);
  });

  it('evaluates each environment with its own overrides', () => {
    const { policy, policyHash: hash } = policyOf(
      { vulnerabilities: { maximumFixableSeverity: 'MEDIUM' }, image: { nonRoot: true } },
      {
        prod: { mode: 'enforce' },
        staging: {
          mode: 'enforce',
          rules: { vulnerabilities: { maximumFixableSeverity: 'HIGH' }, image: null },
        },
      },
    );
    const input: EvaluationInput = {
      image: image({ user: 'root' }),
      findings: [
        finding({
          id: 'CVE-2024-1111',
          severity: 'HIGH',
          fixState: 'fixed',
          fixedVersion: '3.0.13-1',
        }),
      ],
      vex: [],
      policy,
      policyHash: hash,
      now: NOW,
    };
    const out = evaluate(input);
    expect(out.prod.decision).toBe('deny');
    expect(out.staging.decision).toBe('allow');
    expect(evaluateEnvironment(input, 'staging')).toEqual(out.staging);
  });
});

describe('summariseVerdicts and diffVerdicts', () => {
  const verdict = (
    environment: string,
    decision: Verdict['decision'],
    ruleIds: string[] = [],
  ): Verdict => ({
    environment,
    decision,
    mode: 'enforce',
    reasons: ruleIds.map((ruleId) => ({
      ruleId,
      level: 'deny',
      message: ruleId,
      remediation: null,
    })),
    policyHash: 'sha256:x',
    evaluatedAt: NOW.toISOString(),
  });

  it('summarises per environment in a stable order', () => {
    expect(
      summariseVerdicts({
        prod: verdict('prod', 'deny', ['image.non-root', 'trusted-repository', 'image.non-root']),
        dev: verdict('dev', 'allow'),
      }),
    ).toEqual([
      {
        environment: 'dev',
        decision: 'allow',
        mode: 'enforce',
        denyCount: 0,
        warnCount: 0,
        ruleIds: [],
      },
      {
        environment: 'prod',
        decision: 'deny',
        mode: 'enforce',
        denyCount: 3,
        warnCount: 0,
        ruleIds: ['trusted-repository', 'image.non-root'],
      },
    ]);
  });

  it('lists only environments whose decision changed, including added and removed ones', () => {
    const before = {
      prod: verdict('prod', 'allow'),
      dev: verdict('dev', 'allow'),
      old: verdict('old', 'deny'),
    };
    const after = {
      prod: verdict('prod', 'deny', ['image.non-root']),
      dev: verdict('dev', 'allow', []),
      new: verdict('new', 'pending'),
    };
    expect(diffVerdicts(before, after)).toEqual([
      { environment: 'new', from: null, to: 'pending', reasons: [] },
      { environment: 'old', from: 'deny', to: null, reasons: [] },
      { environment: 'prod', from: 'allow', to: 'deny', reasons: after.prod.reasons },
    ]);
    expect(diffVerdicts(null, { prod: verdict('prod', 'allow') })).toEqual([
      { environment: 'prod', from: null, to: 'allow', reasons: [] },
    ]);
    expect(diffVerdicts(after, after)).toEqual([]);
  });
});

describe('registry facts not read yet (enrichment)', () => {
  const needed = { status: 'needed', attempts: 2, reason: 'registry r unreachable' } as const;

  it('is pending, never allowed, while a rule needs the manifest or config, and judges no empty field', () => {
    for (const rules of [
      { image: { nonRoot: true } },
      { image: { maxAgeDays: 30 } },
      { baseImage: { unknown: 'deny' as const } },
    ]) {
      // An unread record has no user or base: it must not be denied (or allowed) for that.
      const v = run(rules, { image: { enrichment: needed, user: null, created: null } });
      expect(v.decision).toBe('pending');
      expect(v.reasons.map((r) => [r.ruleId, r.level])).toEqual([
        ['image.enrichment-pending', 'warn'],
      ]);
      expect(v.reasons[0]?.message).toContain('2 attempts so far, last: registry r unreachable');
    }
  });

  it('denies an image the registry answered for good it cannot serve', () => {
    const v = run(
      { image: { nonRoot: true } },
      { image: { enrichment: { status: 'failed', reason: 'manifest not found' } } },
    );
    expect(v.decision).toBe('deny');
    expect(v.reasons).toEqual([
      expect.objectContaining({
        ruleId: 'image.unreadable',
        level: 'deny',
        message: expect.stringContaining('manifest not found'),
      }),
    ]);
  });

  it('changes nothing where no rule needs the registry, or once it was read', () => {
    const vulnOnly = { vulnerabilities: { maximumFixableSeverity: 'HIGH' as const } };
    expect(run(vulnOnly, { image: { enrichment: needed } }).decision).toBe('allow');
    expect(
      run({ image: { nonRoot: true } }, { image: { enrichment: { status: 'done' } } }).decision,
    ).toBe('allow');
    // Other rules still judge: an untrusted repository denies at once.
    const untrusted = run(
      { image: { nonRoot: true }, trustedRepositories: ['elsewhere.example/**'] },
      { image: { enrichment: needed } },
    );
    expect(untrusted.decision).toBe('deny');
  });

  it('dry-run still never blocks', () => {
    const v = run(
      { image: { nonRoot: true } },
      { image: { enrichment: needed }, environments: { prod: { mode: 'dryrun' } } },
    );
    expect(v.decision).toBe('allow');
  });
});
