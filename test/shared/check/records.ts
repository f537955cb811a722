// Ledger records and settings for the deploy-check tests.
import type { AdmissionSettings } from '../../../shared/check/decide.js';
import { type Attestation, ImageRecord } from '../../../shared/image-record.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import type { Verdict } from '../../../shared/verdict.js';

export const DIGEST = `sha256:${'a'.repeat(64)}`;
export const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`;
export const REGISTRY = 'us-docker.pkg.dev';
export const REPOSITORY = 'p/r/app';
export const REF = `${REGISTRY}/${REPOSITORY}@${DIGEST}`;
export const HASH = `sha256:${'c'.repeat(64)}`;

export const settings = (over: Partial<AdmissionSettings> = {}): AdmissionSettings => ({
  unknownImage: 'deny',
  requireAttestation: true,
  requireDigest: false,
  stalePolicy: 'warn',
  environments: {
    prod: { mode: 'enforce', breakglass: true },
    dev: { mode: 'dryrun', breakglass: false },
  },
  policyHash: HASH,
  ...over,
});

export const verdict = (over: Partial<Verdict> = {}): Verdict => ({
  environment: 'prod',
  decision: 'allow',
  mode: 'enforce',
  reasons: [],
  policyHash: HASH,
  evaluatedAt: '2026-11-29T09:00:00.000Z',
  ...over,
});

export const attestation = (over: Partial<Attestation> = {}): Attestation => ({
  format: 'binauthz',
  keyId:
    '//cloudkms.googleapis.com/v1/projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
  policyHash: HASH,
  occurrence: 'projects/p/occurrences/att-1',
  envelope: null,
  createdAt: '2026-11-29T09:00:05.000Z',
  revokedAt: null,
  revokedReason: null,
  ...over,
});

export function record(
  over: Partial<ImageRecord> = {},
  where: { registry?: string; repository?: string; digest?: string } = {},
): ImageRecord {
  const registry = where.registry ?? REGISTRY;
  const repository = where.repository ?? REPOSITORY;
  const digest = where.digest ?? DIGEST;
  return ImageRecord.parse({
    id: imageDocId(registry, repository, digest),
    registry,
    repository,
    digest,
    state: 'attested',
    updatedAt: '2026-11-29T09:00:05.000Z',
    version: 3,
    verdicts: { prod: verdict(), dev: verdict({ environment: 'dev', mode: 'dryrun' }) },
    attestations: [attestation()],
    ...over,
  });
}

export const denyReason = {
  ruleId: 'vulnerabilities.fixable',
  level: 'deny' as const,
  message: 'CVE-2024-3094 (xz-utils 5.6.0-0.2) is CRITICAL and fixed in 5.6.1+really5.4.5-1',
  remediation: 'upgrade xz-utils to 5.6.1+really5.4.5-1 and rebuild',
};
