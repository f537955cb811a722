// Deterministic synthetic workloads for the evaluation benchmark: images, findings, exceptions, VEX.
import type { Finding, Severity, VexStatement } from '../../shared/findings/finding.js';
import { ImageRecord } from '../../shared/image-record.js';
import type { CveExceptionInput, Policy } from '../../shared/policy/policy.js';
import { parsePolicy } from '../../shared/policy/policy.js';

/** mulberry32: a tiny seeded PRNG so every run measures the same data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

const hex = (rand: () => number) =>
  Array.from({ length: 64 }, () => Math.floor(rand() * 16).toString(16)).join('');

export interface Workload {
  image: ImageRecord;
  findings: Finding[];
  vex: VexStatement[];
  policy: Policy;
}

export interface WorkloadOptions {
  findings: number;
  exceptions: number;
  vexStatements: number;
  packages: number;
  seed: number;
  now: Date;
}

export function syntheticImage(rand: () => number, index: number, now: Date): ImageRecord {
  return ImageRecord.parse({
    id: `img-${index}`,
    registry: 'us-docker.pkg.dev',
    repository: `acme/apps/service-${index % 50}`,
    digest: `sha256:${hex(rand)}`,
    state: 'evaluated',
    updatedAt: now.toISOString(),
    pushedAt: new Date(now.getTime() - 3 * 86_400_000).toISOString(),
    created: new Date(now.getTime() - 3 * 86_400_000).toISOString(),
    user: index % 7 === 0 ? 'root' : '65532',
    base: {
      name: 'marketplace.gcr.io/google/debian12:latest',
      digest: `sha256:${hex(rand)}`,
      status: index % 5 === 0 ? 'stale' : 'current',
      supersededAt:
        index % 5 === 0 ? new Date(now.getTime() - 10 * 86_400_000).toISOString() : null,
      currentDigest: `sha256:${hex(rand)}`,
    },
    provenance: {
      builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker',
      sourceRepository: 'https://github.com/acme/apps',
      source: 'cloud-build',
    },
    scan: { status: 'finished', scanner: 'container-analysis', completedAt: now.toISOString() },
  });
}

export function syntheticFindings(rand: () => number, count: number, packages: number): Finding[] {
  const SEVERITY_MIX: readonly Severity[] = [
    'MINIMAL',
    'LOW',
    'LOW',
    'MEDIUM',
    'MEDIUM',
    'MEDIUM',
    'HIGH',
    'CRITICAL',
    'UNSPECIFIED',
  ];
  return Array.from({ length: count }, (_, i) => {
    const fixed = rand() < 0.4;
    const pkg = `pkg-${Math.floor(rand() * packages)}`;
    return {
      id: `CVE-${2015 + (i % 10)}-${10000 + i}`,
      aliases: rand() < 0.2 ? [`GHSA-${i.toString(36)}-bench-0000`] : [],
      package: pkg,
      packageType: 'deb',
      installedVersion: `1.${i % 9}.0-1`,
      fixedVersion: fixed ? `1.${i % 9}.${1 + Math.floor(rand() * 5)}-1` : null,
      fixState: fixed ? 'fixed' : pick(rand, ['not-fixed', 'wont-fix', 'unknown'] as const),
      severity: pick(rand, SEVERITY_MIX),
      cvss: null,
      source: 'container-analysis',
      description: null,
      url: null,
    } satisfies Finding;
  });
}

export function syntheticPolicy(
  rand: () => number,
  findings: readonly Finding[],
  exceptions: number,
  now: Date,
): Policy {
  const allowedCves: CveExceptionInput[] = Array.from({ length: exceptions }, (_, i) => {
    const f = findings[Math.floor(rand() * findings.length)];
    const days = Math.floor(rand() * 120) - 20; // some expired, some expiring, most valid
    const expires = new Date(now.getTime() + days * 86_400_000).toISOString().slice(0, 10);
    const scoped = i % 3;
    return {
      id: rand() < 0.5 || f.aliases.length === 0 ? f.id : f.aliases[0],
      reason: `accepted risk #${i}`,
      owner: `team-${i % 7}@acme.example`,
      expires,
      scope:
        scoped === 0
          ? {}
          : scoped === 1
            ? { packages: [f.package] }
            : { repositories: ['us-docker.pkg.dev/acme/apps/**'], packages: [f.package] },
    };
  });
  return parsePolicy(
    JSON.stringify({
      apiVersion: 'clearance/v1',
      environments: { prod: { mode: 'enforce', breakglass: true }, dev: { mode: 'dryrun' } },
      rules: {
        trustedRepositories: ['us-docker.pkg.dev/acme/**'],
        baseImage: {
          allowed: ['marketplace.gcr.io/google/**', 'gcr.io/distroless/**'],
          maxStaleDays: 14,
        },
        vulnerabilities: {
          maximumFixableSeverity: 'MEDIUM',
          maximumUnfixableSeverity: 'HIGH',
          blockedCves: ['CVE-2021-44228'],
          allowedCves,
        },
        provenance: { trustedBuilders: ['https://cloudbuild.googleapis.com/GoogleHostedWorker*'] },
        image: { nonRoot: true, maxAgeDays: 90 },
      },
      trust: {
        signers: [
          {
            name: 'bench-vex',
            keyless: {
              issuer: 'https://token.actions.githubusercontent.com',
              subject: 'https://github.com/acme/**',
            },
            evidence: ['vex'],
          },
        ],
      },
    }),
    'json',
  );
}

export function syntheticVex(
  rand: () => number,
  image: ImageRecord,
  findings: readonly Finding[],
  count: number,
): VexStatement[] {
  return Array.from({ length: count }, (_, i) => {
    const f = findings[Math.floor(rand() * findings.length)];
    return {
      vulnerability: f.id,
      aliases: [],
      products: [`pkg:oci/app@${image.digest.replace(':', '%3A')}`],
      subcomponents: i % 2 === 0 ? [`pkg:deb/debian/${f.package}@${f.installedVersion}`] : [],
      status: i % 4 === 0 ? 'affected' : 'not_affected',
      justification: null,
      impactStatement: null,
      timestamp: '2026-11-01T00:00:00Z',
      documentId: `bench-vex-${i % 5}`,
      author: null,
      signer: 'bench-vex',
      source: null,
    };
  });
}

/** One image with its findings, VEX and a policy carrying `exceptions` allowedCves. */
export function singleImageWorkload(o: WorkloadOptions): Workload {
  const rand = prng(o.seed);
  const image = syntheticImage(rand, 1, o.now);
  const findings = syntheticFindings(rand, o.findings, o.packages);
  const policy = syntheticPolicy(rand, findings, o.exceptions, o.now);
  const vex = syntheticVex(rand, image, findings, o.vexStatements);
  return { image, findings, vex, policy };
}
