// A small ledger built through the real write paths (ledger, attestations, a watcher-style stale mark) so the ledger keeps the fleet index.
import { createHash } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import type { Finding } from '../../shared/findings/finding.js';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { firestoreAttestationLedger } from '../../shared/ledger/attestation-ledger.js';
import { COLLECTIONS } from '../../shared/ledger/collections.js';
import { getChunkFindings } from '../../shared/ledger/findings-store.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { evaluate } from '../../shared/policy/evaluate.js';
import { parsePolicy, policyHash } from '../../shared/policy/policy.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';

export const REGISTRY = 'us-docker.pkg.dev';
export const HOSTILE_TEAM = '<script>window.__pwned=1</script>';
export const HOSTILE_REPO = 'acme/apps/x"><img src=x onerror="window.__pwned=2">';
export const HOSTILE_LABEL = '<img src=x onerror="window.__pwned=3">';

export function fleetPolicy(now: Date): string {
  const soon = new Date(now.getTime() + 12 * 86_400_000).toISOString().slice(0, 10);
  return `apiVersion: clearance/v1
metadata: { name: fleet-test }
environments:
  prod: { mode: enforce }
  dev: { mode: dryrun }
rules:
  trustedRepositories: ["${REGISTRY}/acme/**"]
  vulnerabilities:
    requireScan: true
    maximumFixableSeverity: MEDIUM
    maximumUnfixableSeverity: HIGH
    allowedCves:
      - id: CVE-2005-2541
        reason: tar restores setuid bits by design
        owner: platform-team@example.com
        expires: ${soon}
`;
}

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

function finding(
  id: string,
  severity: Finding['severity'],
  fixed: boolean,
  pkg = 'openssl',
): Finding {
  return {
    id,
    aliases: [],
    package: pkg,
    packageType: 'deb',
    installedVersion: '1.0.0-1',
    fixedVersion: fixed ? '1.0.1-1' : null,
    fixState: fixed ? 'fixed' : 'not-fixed',
    severity,
    cvss: null,
    source: 'container-analysis',
    description: null,
    url: null,
  };
}

export interface FleetImage {
  id: string;
  repository: string;
  team: string;
  findings: Finding[];
  attest: boolean;
  stale: boolean;
}

/** Image `i`: teams by i % 3, a denying CVE for i % 4 === 1, attested when it passes and i is even. */
export function fleetImages(count: number): FleetImage[] {
  const out: FleetImage[] = [];
  for (let i = 0; i < count; i++) {
    const repository = `acme/${i % 2 === 0 ? 'apps' : 'jobs'}/svc-${i}`;
    const findings = [finding('CVE-2005-2541', 'LOW', false, 'tar')];
    if (i % 4 === 1) findings.push(finding('CVE-2026-0001', 'CRITICAL', true));
    if (i % 5 === 2) findings.push(finding('CVE-2026-0002', 'HIGH', false, 'zlib'));
    out.push({
      id: imageDocId(REGISTRY, repository, sha(`fleet-${i}`)),
      repository,
      team: ['payments', 'search', 'platform'][i % 3] as string,
      findings,
      attest: i % 4 !== 1 && i % 2 === 0,
      stale: i % 6 === 3,
    });
  }
  out.push({
    id: imageDocId(REGISTRY, 'acme/apps/hostile', sha('hostile')),
    repository: 'acme/apps/hostile',
    team: HOSTILE_TEAM,
    findings: [finding('CVE-2026-0001', 'CRITICAL', true)],
    attest: false,
    stale: false,
  });
  return out;
}

/** A watcher-style write: the base goes stale, through the ledger's one write path (as the base watcher does). */
export async function markStale(db: Firestore, id: string, since: string): Promise<void> {
  await new FirestoreLedger(db).transact(
    id,
    { source: 'test-base-watch', messageId: id, at: since },
    (image) => {
      if (!image) throw new Error(`no image ${id}`);
      return {
        record: {
          ...image,
          base: {
            name: `${REGISTRY}/acme/base/debian12`,
            digest: sha('old-base'),
            status: 'stale',
            supersededAt: since,
            currentDigest: sha('new-base'),
            source: 'annotation',
            verification: null,
          },
        },
        audit: { kind: 'base-status' },
        keepState: true,
      };
    },
    { now: new Date(since), dedupe: false },
  );
}

/** Pushes, scans (with verdicts), attests and marks stale through the real write paths. */
export async function seedFleet(
  db: Firestore,
  count: number,
  now: Date,
  options: { hostileRepository?: boolean } = {},
): Promise<FleetImage[]> {
  const source = fleetPolicy(now);
  await storePolicy(db, { source, format: 'yaml', appliedBy: 'test', now });
  const policy = parsePolicy(source, 'yaml');
  const hash = policyHash(policy);
  const ledger = new FirestoreLedger(db);
  const attestations = firestoreAttestationLedger({ db });
  const images = fleetImages(count);
  await Promise.all(
    images.map(async (img, i) => {
      const digest = img.id.split('@')[1] as string;
      const at = new Date(now.getTime() - (count - i) * 60_000).toISOString();
      // The scan finishes a second after the push, so the timeline has one order to show.
      const scannedAt = new Date(Date.parse(at) + 1_000).toISOString();
      const labels: Record<string, string> = { team: img.team };
      if (img.team === HOSTILE_TEAM) labels['org.example.note'] = HOSTILE_LABEL;
      await ledger.applyRegistryEvent(
        { action: 'push', registry: REGISTRY, repository: img.repository, digest, tag: `v${i}` },
        { source: 'test', messageId: `push-${i}`, at },
        now,
        {
          enrichment: {
            mediaType: null,
            platforms: [],
            created: at,
            user: '65532',
            labels,
            base: null,
          },
        },
      );
      await ledger.applyScan(
        {
          registry: REGISTRY,
          repository: img.repository,
          digest,
          source: 'container-analysis',
          scanner: 'artifact-analysis',
          scanRef: `${scannedAt}#1`,
          completedAt: scannedAt,
          status: 'finished',
          findings: img.findings,
        },
        { source: 'test', messageId: `scan-${i}`, at: scannedAt },
        now,
        {
          evaluate: (rec) =>
            evaluate({
              image: rec,
              findings: img.findings,
              vex: [],
              policy,
              policyHash: hash,
              now,
            }),
        },
      );
      if (img.attest) {
        await attestations.record(
          img.id,
          {
            format: 'dsse',
            keyId: 'local:test',
            policyHash: hash,
            occurrence: null,
            envelope: null,
            createdAt: now.toISOString(),
            revokedAt: null,
            revokedReason: null,
          },
          () => true,
        );
      }
      if (img.stale)
        await markStale(db, img.id, new Date(now.getTime() - 3 * 86_400_000).toISOString());
    }),
  );
  if (options.hostileRepository) {
    // A repository name no registry would accept, written as a raw record: the pages must still escape it.
    const id = imageDocId(REGISTRY, 'acme/apps/raw', sha('raw'));
    const rec = ImageRecord.parse({
      id,
      registry: REGISTRY,
      repository: HOSTILE_REPO,
      digest: sha('raw'),
      labels: { team: HOSTILE_TEAM },
      state: 'pushed',
      pushedAt: now.toISOString(),
      updatedAt: now.toISOString(),
    });
    await ledger.transact(
      id,
      { source: 'test', messageId: 'raw', at: now.toISOString() },
      () => ({ record: rec, audit: { kind: 'raw' } }),
      { now },
    );
  }
  return images;
}

/** What the ledger says, counted the slow way (whole collection): the oracle the fast paths are checked against. */
export async function ledgerTruth(db: Firestore): Promise<{
  records: ImageRecord[];
  kinds: Record<'denied' | 'attested' | 'pending' | 'stale', string[]>;
  envs: Record<string, Record<string, number>>;
  deniedByTeam: Record<string, number>;
  cveImages: Record<string, number>;
}> {
  const snap = await db.collection(COLLECTIONS.images).get();
  const records = snap.docs.map((d) => ImageRecord.parse(d.data()));
  const kinds = { denied: [], attested: [], pending: [], stale: [] } as Record<
    'denied' | 'attested' | 'pending' | 'stale',
    string[]
  >;
  const envs: Record<string, Record<string, number>> = {};
  const deniedByTeam: Record<string, number> = {};
  const cveImages: Record<string, number> = {};
  for (const r of records) {
    if (r.state === 'deleted') continue;
    const team = r.labels.team ?? 'unassigned';
    if (r.state === 'denied' || r.state === 'revoked') {
      kinds.denied.push(r.id);
      deniedByTeam[team] = (deniedByTeam[team] ?? 0) + 1;
    } else if (r.state === 'attested') kinds.attested.push(r.id);
    else kinds.pending.push(r.id);
    if (r.base?.status === 'stale') kinds.stale.push(r.id);
    for (const [env, v] of Object.entries(r.verdicts)) {
      envs[env] ??= {};
      const e = envs[env] as Record<string, number>;
      e[v.decision] = (e[v.decision] ?? 0) + 1;
    }
    const fs = await getChunkFindings(
      db.collection(COLLECTIONS.images).doc(r.id),
      { reads: 0, writes: 0 },
      Object.keys(r.scanRefs),
    );
    const ids = new Set(fs.map((f) => f.id));
    for (const id of ids) cveImages[id] = (cveImages[id] ?? 0) + 1;
  }
  return { records, kinds, envs, deniedByTeam, cveImages };
}
