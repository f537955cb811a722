// Sample alerts of every type for the alerts tests (values shaped like real Artifact Analysis findings).
import type { AlertInput } from '../../../shared/alerts/alert.js';

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;
export const DIGEST_C = `sha256:${'c'.repeat(64)}`;

/** A digest that differs per n (in its first 12 hex digits too), so n alerts are n different images. */
export function digestFor(n: number): string {
  return `sha256:${n.toString(16).padStart(12, '0')}${'e'.repeat(52)}`;
}

const image = {
  registry: 'us-docker.pkg.dev',
  repository: 'acme-prod/payments/api',
  digest: DIGEST_A,
  tags: ['1.4.2'],
};

export function deniedAlert(overrides: Partial<AlertInput> = {}): AlertInput {
  return {
    type: 'image-denied',
    image,
    labels: {},
    detectedAt: '2026-11-29T10:00:00Z',
    links: {
      console:
        'https://console.cloud.google.com/artifacts/docker/acme-prod/us/payments/api@sha256:aaaa',
      check:
        'https://clearance.example.com/v1/check?image=us-docker.pkg.dev/acme-prod/payments/api',
    },
    environment: 'prod',
    ruleIds: ['vulnerabilities.maximumFixableSeverity'],
    reasons: ['2 fixable findings at HIGH or above (maximum allowed: MEDIUM)'],
    findings: [
      {
        id: 'CVE-2023-5363',
        package: 'openssl',
        installedVersion: '3.0.11-1~deb12u1',
        fixedVersion: '3.0.11-1~deb12u2',
        severity: 'HIGH',
        fixState: 'fixed',
      },
      {
        id: 'CVE-2023-4911',
        package: 'glibc',
        installedVersion: '2.36-9+deb12u1',
        fixedVersion: '2.36-9+deb12u3',
        severity: 'HIGH',
        fixState: 'fixed',
      },
      {
        id: 'CVE-2005-2541',
        package: 'tar',
        installedVersion: '1.34+dfsg-1.2',
        fixedVersion: null,
        severity: 'LOW',
        fixState: 'wont-fix',
      },
    ],
    totalFindings: 3,
    ...overrides,
  } as AlertInput;
}

export function allAlerts(): AlertInput[] {
  const common = { image, labels: {}, detectedAt: '2026-11-29T10:00:00Z', links: {} };
  return [
    deniedAlert(),
    {
      type: 'rebuild-needed',
      ...common,
      base: {
        name: 'marketplace.gcr.io/google/debian12:latest',
        oldDigest: DIGEST_B,
        newDigest: DIGEST_C,
        since: '2026-11-27T08:00:00Z',
      },
    },
    {
      type: 'attestation-revoked',
      ...common,
      environment: 'prod',
      reason: 'new CRITICAL finding CVE-2024-3094 in xz-utils',
      ruleIds: ['vulnerabilities.maximumUnfixableSeverity'],
      keyId:
        '//cloudkms.googleapis.com/v1/projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
    },
    {
      type: 'breakglass-used',
      ...common,
      environment: 'prod',
      actor: 'alice@acme.example',
      workload: { cluster: 'prod-eu', namespace: 'payments', kind: 'Deployment', name: 'api' },
      images: [
        'us-docker.pkg.dev/acme-prod/payments/api@sha256:aaaa',
        'us-docker.pkg.dev/acme-prod/payments/sidecar:2.0',
      ],
      justification: 'INC-4711 hotfix',
    },
    {
      type: 'exception-expiring',
      ...common,
      exception: {
        vulnerability: 'CVE-2005-2541',
        reason: 'tar is not used at run time',
        owner: 'payments-team@acme.example',
        expiresAt: '2026-12-03T00:00:00Z',
        scope: 'us-docker.pkg.dev/acme-prod/payments/**',
      },
    },
    {
      type: 'scan-failed',
      ...common,
      scanner: 'container-analysis',
      status: 'FINISHED_UNSUPPORTED',
      reason: 'the image OS is not supported by Artifact Analysis',
    },
    {
      type: 'fix-grace-ending',
      ...common,
      environment: 'prod',
      grace: {
        package: 'openssl',
        installedVersion: '3.0.11-1',
        fixedVersion: '3.0.13-1',
        vulnerabilities: 'CVE-2026-1111 HIGH',
        availableSince: '2026-11-30',
        endsOn: '2026-12-07',
      },
    },
  ];
}
