import { describe, expect, it } from 'vitest';
import { Alert } from '../../../shared/alerts/alert.js';
import type { Finding } from '../../../shared/findings/finding.js';
import { ImageRecord } from '../../../shared/image-record.js';
import { alertLinks, computeEffects, topFindings } from '../../../shared/pipeline/effects.js';
import { normaliseBase } from '../../../shared/pipeline/registry-ingest.js';
import { parsePolicy } from '../../../shared/policy/policy.js';
import { productKeys, WILDCARD } from '../../../shared/policy/store/vex-store.js';
import type { Verdict } from '../../../shared/verdict.js';

const digest = `sha256:${'c'.repeat(64)}`;
const now = new Date('2026-11-29T10:00:00Z');
const base = ImageRecord.parse({
  id: 'x',
  registry: 'us-docker.pkg.dev',
  repository: 'acme/apps/api',
  digest,
  tags: ['1.0'],
  labels: { owner: 'payments' },
  state: 'evaluated',
  updatedAt: now.toISOString(),
});
const verdict = (decision: Verdict['decision'], extra: Partial<Verdict> = {}): Verdict => ({
  environment: 'prod',
  decision,
  mode: 'enforce',
  reasons:
    decision === 'deny'
      ? [
          {
            ruleId: 'vulnerabilities.fixable-severity',
            level: 'deny',
            message: '2 fixable HIGH',
            remediation: 'upgrade openssl',
          },
        ]
      : [],
  policyHash: 'sha256:p',
  evaluatedAt: now.toISOString(),
  ...extra,
});
const finding = (
  id: string,
  severity: Finding['severity'],
  fixState: Finding['fixState'],
): Finding => ({
  id,
  aliases: [],
  package: 'openssl',
  packageType: null,
  installedVersion: '3.0.11',
  fixedVersion: fixState === 'fixed' ? '3.0.13' : null,
  fixState,
  severity,
  cvss: null,
  source: 'container-analysis',
  description: null,
  url: null,
});

describe('computeEffects', () => {
  it('a new enforced denial tells attestImage and alerts the owner with the top findings', () => {
    const next = { ...base, verdicts: { prod: verdict('deny') } };
    const effects = computeEffects(
      { ...base, verdicts: { prod: verdict('allow') } },
      next,
      [finding('CVE-1', 'HIGH', 'fixed'), finding('CVE-2', 'LOW', 'not-fixed')],
      now,
    );
    expect(effects[0]).toEqual({
      kind: 'verdict',
      message: { imageId: 'x', cause: 'verdict-changed', policyHash: 'sha256:p' },
    });
    const alert = effects.find((e) => e.kind === 'alert');
    expect(alert?.kind === 'alert' && Alert.parse(alert.alert)).toMatchObject({
      type: 'image-denied',
      environment: 'prod',
      ruleIds: ['vulnerabilities.fixable-severity'],
      findings: [{ id: 'CVE-1', installedVersion: '3.0.11', fixedVersion: '3.0.13' }],
    });
  });

  it('no change, no effect; dry-run denials and pending never alert', () => {
    const same = { ...base, verdicts: { prod: verdict('deny') } };
    expect(computeEffects(same, same, [], now)).toEqual([]);
    const dry = {
      ...base,
      verdicts: { dev: verdict('allow', { mode: 'dryrun', environment: 'dev' }) },
    };
    expect(computeEffects(null, dry, [], now).filter((e) => e.kind === 'alert')).toEqual([]);
    expect(
      computeEffects(null, { ...base, verdicts: { prod: verdict('pending') } }, [], now),
    ).toEqual([]);
  });

  it('deleting an attested image asks for revocation once', () => {
    const attested = {
      ...base,
      attestations: [
        {
          format: 'binauthz' as const,
          keyId: 'k',
          policyHash: 'p',
          occurrence: 'o',
          envelope: null,
          createdAt: 't',
          revokedAt: null,
          revokedReason: null,
        },
      ],
    };
    const deleted = { ...attested, state: 'deleted' as const, deletedAt: now.toISOString() };
    expect(computeEffects(attested, deleted, null, now)).toEqual([
      { kind: 'verdict', message: { imageId: 'x', cause: 'deleted', policyHash: null } },
    ]);
    expect(computeEffects(deleted, deleted, null, now)).toEqual([]);
  });

  it('a failed scan alerts once', () => {
    const failed = {
      ...base,
      scan: {
        status: 'failed' as const,
        scanner: 'artifact-analysis',
        completedAt: null,
        counts: null,
        failureReason: 'FINISHED_UNSUPPORTED',
      },
    };
    const effects = computeEffects(base, failed, [], now);
    expect(effects).toHaveLength(1);
    expect(effects[0]?.kind === 'alert' && effects[0].alert).toMatchObject({
      type: 'scan-failed',
      reason: 'FINISHED_UNSUPPORTED',
    });
    expect(computeEffects(failed, failed, [], now)).toEqual([]);
  });

  it('a failed scan that also denies the image is still one alert, naming where it denies', () => {
    const pending = { ...base, verdicts: { prod: verdict('pending') } };
    const failed = {
      ...base,
      scan: {
        status: 'failed' as const,
        scanner: 'artifact-analysis',
        completedAt: null,
        counts: null,
        failureReason: 'FINISHED_FAILED',
      },
      verdicts: {
        prod: verdict('deny', {
          reasons: [
            {
              ruleId: 'vulnerabilities.scan-failed',
              level: 'deny',
              message: 'vulnerability scan failed: FINISHED_FAILED',
              remediation: null,
            },
          ],
        }),
      },
    };
    const alerts = computeEffects(pending, failed, [], now).filter((e) => e.kind === 'alert');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.kind === 'alert' && alerts[0].alert).toMatchObject({
      type: 'scan-failed',
      deniedIn: ['prod'],
    });
    // A later denial for another reason is its own event and alerts as a denial.
    const denied = { ...failed, verdicts: { prod: verdict('deny') } };
    const later = computeEffects(
      { ...failed, verdicts: { prod: verdict('allow') } },
      denied,
      [],
      now,
    );
    expect(
      later.filter((e) => e.kind === 'alert').map((e) => e.kind === 'alert' && e.alert.type),
    ).toEqual(['image-denied']);
  });

  it('an exception newly expiring alerts its owner with the exception facts from the policy', () => {
    const policy = parsePolicy(`apiVersion: clearance/v1
environments: { prod: { mode: enforce } }
rules:
  vulnerabilities:
    allowedCves:
      - { id: CVE-2005-2541, reason: intended behaviour, owner: platform@acme.example, expires: 2026-12-01 }
`);
    const expiring = verdict('allow', {
      reasons: [
        {
          ruleId: 'vulnerabilities.exception-expiring',
          level: 'warn',
          message:
            'exception for CVE-2005-2541 (owner platform@acme.example) expires on 2026-12-01, in 3 days',
          remediation: null,
          exception: 'CVE-2005-2541',
        },
      ],
    });
    const effects = computeEffects(
      { ...base, verdicts: { prod: verdict('allow') } },
      { ...base, verdicts: { prod: expiring } },
      [],
      now,
      policy,
    );
    const alert = effects.find((e) => e.kind === 'alert');
    expect(alert?.kind === 'alert' && Alert.parse(alert.alert)).toMatchObject({
      type: 'exception-expiring',
      exception: {
        vulnerability: 'CVE-2005-2541',
        owner: 'platform@acme.example',
        reason: 'intended behaviour',
      },
    });
    expect(
      computeEffects(
        { ...base, verdicts: { prod: expiring } },
        { ...base, verdicts: { prod: expiring } },
        [],
        now,
        policy,
      ),
    ).toEqual([]);
  });
});

describe('topFindings', () => {
  it('puts the worst and fixable first, deterministically', () => {
    const list = [
      finding('CVE-B', 'HIGH', 'not-fixed'),
      finding('CVE-A', 'HIGH', 'fixed'),
      finding('CVE-C', 'CRITICAL', 'not-fixed'),
    ];
    expect(topFindings(list).map((f) => f.id)).toEqual(['CVE-C', 'CVE-A', 'CVE-B']);
    expect(topFindings([...list].reverse()).map((f) => f.id)).toEqual(['CVE-C', 'CVE-A', 'CVE-B']);
  });
});

describe('alertLinks', () => {
  it('links Artifact Registry and gcr.io images to the console, and any image to the check', () => {
    expect(
      alertLinks(
        { registry: 'us-docker.pkg.dev', repository: 'acme/apps/api', digest },
        'https://check.example/',
      ),
    ).toEqual({
      console: `https://console.cloud.google.com/artifacts/docker/acme/us/apps/api/${digest}`,
      check: `https://check.example/v1/check?image=${encodeURIComponent(`us-docker.pkg.dev/acme/apps/api@${digest}`)}`,
    });
    expect(alertLinks({ registry: 'gcr.io', repository: 'acme/api', digest }).console).toBe(
      `https://console.cloud.google.com/gcr/images/acme/global/api@${digest}`,
    );
    expect(alertLinks({ registry: 'ghcr.io', repository: 'acme/api', digest })).toEqual({});
  });
});

describe('normaliseBase', () => {
  it('names bases the way the watcher tracks them', () => {
    const d = `sha256:${'d'.repeat(64)}`;
    expect(normaliseBase('debian:12', d)).toEqual({
      name: 'docker.io/library/debian:12',
      digest: d,
    });
    expect(normaliseBase(`gcr.io/distroless/static-debian12@${d}`, null)).toEqual({
      name: 'gcr.io/distroless/static-debian12:latest',
      digest: d,
    });
    expect(normaliseBase('not a ref!', null)).toEqual({ name: 'not a ref!', digest: null });
    expect(normaliseBase(null, d)).toEqual({ name: null, digest: d });
  });
});

describe('productKeys (VEX lookup keys)', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  it('indexes digests, repository names, and globs under the wildcard', () => {
    expect(
      productKeys(
        `pkg:oci/app@${encodeURIComponent(d)}?repository_url=us-docker.pkg.dev/acme/app`,
      ).sort(),
    ).toEqual([d, 'us-docker.pkg.dev/acme/app'].sort());
    expect(productKeys(`us-docker.pkg.dev/acme/app:1.0@${d}`).sort()).toEqual(
      [d, 'us-docker.pkg.dev/acme/app'].sort(),
    );
    expect(productKeys('us-docker.pkg.dev/acme/**')).toContain(WILDCARD);
    expect(productKeys('pkg:oci/app?repository_url=us-docker.pkg.dev/acme/*')).toContain(WILDCARD);
    expect(() => productKeys('pkg:oci/app@%E0%A4%A')).not.toThrow();
  });
});
