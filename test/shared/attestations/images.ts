// Ledger records for attestation tests, built through the ledger's own schema.
import { ImageRecord } from '../../../shared/image-record.js';
import type { Verdict } from '../../../shared/verdict.js';

export const POLICY_A = 'sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
export const POLICY_B = 'sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

export function verdict(
  environment: string,
  decision: Verdict['decision'],
  overrides: Partial<Verdict> = {},
): Verdict {
  return {
    environment,
    decision,
    mode: 'enforce',
    reasons:
      decision === 'deny'
        ? [
            {
              ruleId: 'vulnerabilities.max-fixable',
              level: 'deny',
              message: 'CVE-2024-0001 (CRITICAL) is fixable',
              remediation: 'upgrade openssl to 3.0.14',
            },
          ]
        : [],
    policyHash: POLICY_A,
    evaluatedAt: '2026-11-29T09:00:00.000Z',
    ...overrides,
  };
}

export function image(overrides: Partial<ImageRecord> = {}): ImageRecord {
  return ImageRecord.parse({
    id: 'us-docker.pkg.dev~clearance~apps~web@sha256-8c733d1c',
    registry: 'us-docker.pkg.dev',
    repository: 'clearance/apps/web',
    digest: 'sha256:8c733d1c02c464f484bccd5fda4bc560040b80e105e431f17e1b1c3fce9b7d27',
    state: 'evaluated',
    updatedAt: '2026-11-29T09:00:00.000Z',
    verdicts: {
      prod: verdict('prod', 'allow'),
      dev: verdict('dev', 'allow', { mode: 'dryrun' }),
    },
    ...overrides,
  });
}
