// Deterministic inputs for the ingestion benchmark: gcr push messages and Container Analysis occurrences.
import { createHash } from 'node:crypto';

export const BENCH_REGISTRY_REPO = 'bench/app';

export const BENCH_POLICY = `apiVersion: clearance/v1
metadata:
  name: bench
environments:
  prod:
    mode: enforce
rules:
  vulnerabilities:
    requireScan: true
    maximumFixableSeverity: HIGH
    maximumUnfixableSeverity: CRITICAL
`;

/** A sha256 digest derived from a label, so every run pushes the same images. */
export function benchDigest(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

/** One gcr topic message: INSERT of image `i` (its own digest and repository) with a tag. */
export function gcrPush(registryHost: string, i: number): Record<string, string> {
  const repo = `${BENCH_REGISTRY_REPO}-${i % 50}`;
  return {
    action: 'INSERT',
    digest: `${registryHost}/${repo}@${benchDigest(`push-${i}`)}`,
    tag: `${registryHost}/${repo}:v${i}`,
  };
}

const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL', 'MINIMAL'] as const;

/** `count` VULNERABILITY occurrences of one image, shaped like the REST API's, each a distinct CVE. */
export function vulnerabilityOccurrences(
  project: string,
  resourceUri: string,
  image: number,
  count: number,
): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, n) => {
    const id = `CVE-2024-${String(100000 + n)}`;
    const severity = SEVERITIES[n % SEVERITIES.length] as string;
    const fixed = n % 3 === 0;
    return {
      name: `projects/${project}/occurrences/img${image}-vuln${n}`,
      resourceUri,
      noteName: `projects/goog-vulnz/notes/${id}`,
      kind: 'VULNERABILITY',
      createTime: '2026-11-29T09:00:00Z',
      updateTime: '2026-11-29T09:00:00Z',
      vulnerability: {
        severity,
        effectiveSeverity: severity,
        cvssScore: 5,
        shortDescription: id,
        fixAvailable: fixed,
        packageIssue: [
          {
            affectedCpeUri: 'cpe:/o:debian:debian_linux:12',
            affectedPackage: `pkg${n % 200}`,
            affectedVersion: { name: '1.0', revision: '1', kind: 'NORMAL', fullName: '1.0-1' },
            fixedCpeUri: 'cpe:/o:debian:debian_linux:12',
            fixedPackage: `pkg${n % 200}`,
            fixedVersion: fixed
              ? { name: '1.1', revision: '1', kind: 'NORMAL', fullName: '1.1-1' }
              : { kind: 'MAXIMUM' },
            packageType: 'OS',
            effectiveSeverity: severity,
            fixAvailable: fixed,
          },
        ],
      },
    };
  });
}

/** The finished DISCOVERY occurrence of one image's scan; a rescan is the same occurrence at a later time. */
export function discoveryOccurrence(
  project: string,
  resourceUri: string,
  image: number,
  at = '2026-11-29T09:05:00Z',
): Record<string, unknown> {
  return {
    name: `projects/${project}/occurrences/img${image}-discovery`,
    resourceUri,
    noteName: 'projects/goog-analysis/notes/PACKAGE_VULNERABILITY',
    kind: 'DISCOVERY',
    createTime: '2026-11-29T09:00:00Z',
    updateTime: at,
    discovery: {
      analysisStatus: 'FINISHED_SUCCESS',
      continuousAnalysis: 'ACTIVE',
      analysisCompleted: { analysisType: ['OS'] },
      lastScanTime: at,
    },
  };
}
