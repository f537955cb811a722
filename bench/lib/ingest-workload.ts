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

/** The repository of pushed image `i` (50 repositories). */
export function benchRepo(i: number): string {
  return `${BENCH_REGISTRY_REPO}-${((i % 50) + 50) % 50}`;
}

/**
 * One gcr topic message: INSERT of image `i` (its own digest and repository) with a tag. `digest`:
 * one the registry holds (seedPushImages); without it a synthetic digest the registry does not hold.
 */
export function gcrPush(registryHost: string, i: number, digest?: string): Record<string, string> {
  const repo = benchRepo(i);
  return {
    action: 'INSERT',
    digest: `${registryHost}/${repo}@${digest ?? benchDigest(`push-${i}`)}`,
    tag: `${registryHost}/${repo}:v${i}`,
  };
}

async function putBlob(registryUrl: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  const location = new URL(start.headers.get('location') ?? '', registryUrl);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: new Uint8Array(bytes) });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`blob upload to ${repo} answered ${put.status}`);
  return digest;
}

/**
 * Puts images -1 … count-1 into the registry (distribution API): per repository one layer and one
 * config, and per image a manifest of its own (an annotation makes each digest distinct), so a
 * push is read from the registry as in production. Returns each image's digest.
 */
export async function seedPushImages(
  registryUrl: string,
  count: number,
): Promise<Map<number, string>> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { User: '65532' },
      rootfs: { type: 'layers', diff_ids: [`sha256:${'1'.repeat(64)}`] },
    }),
  );
  const layer = Buffer.from('bench layer');
  const blobs = new Map<string, { config: string; layer: string }>();
  const digests = new Map<number, string>();
  for (let i = -1; i < count; i++) {
    const repo = benchRepo(i);
    let b = blobs.get(repo);
    if (!b) {
      b = {
        config: await putBlob(registryUrl, repo, config),
        layer: await putBlob(registryUrl, repo, layer),
      };
      blobs.set(repo, b);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: b.config,
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: b.layer,
            size: layer.length,
          },
        ],
        annotations: { 'org.example.bench.image': String(i) },
      }),
    );
    const res = await fetch(`${registryUrl}/v2/${repo}/manifests/v${i}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: new Uint8Array(manifest),
    });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`manifest put to ${repo} answered ${res.status}`);
    digests.set(i, `sha256:${createHash('sha256').update(manifest).digest('hex')}`);
  }
  return digests;
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
