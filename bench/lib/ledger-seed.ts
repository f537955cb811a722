// Deterministic ledgers for the re-evaluation benchmark and integration tests: images with findings and verdicts, written in batches.
import { createHash } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { countFindings, type Finding } from '../../shared/findings/finding.js';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { COLLECTIONS } from '../../shared/ledger/collections.js';
import { chunkDocId, planChunks } from '../../shared/ledger/finding-chunks.js';
import { deriveState } from '../../shared/ledger/state.js';
import { evaluate } from '../../shared/policy/evaluate.js';
import type { PolicySnapshot } from '../../shared/policy/store/policy-source.js';

export const SCAN_REF = '2026-11-28T09:00:00Z#seed';

/** Lenient: every finding tolerated. Applied before seeding; the seeded verdicts are its verdicts. */
export const LENIENT_POLICY = `apiVersion: clearance/v1
metadata: { name: lenient }
environments:
  prod: { mode: enforce }
  dev: { mode: dryrun }
rules:
  vulnerabilities:
    maximumFixableSeverity: CRITICAL
    maximumUnfixableSeverity: CRITICAL
`;

/** Stricter: fixable HIGH and unfixable CRITICAL findings now deny in prod (and warn in dev). */
export const STRICT_POLICY = `apiVersion: clearance/v1
metadata: { name: strict }
environments:
  prod: { mode: enforce }
  dev: { mode: dryrun }
rules:
  vulnerabilities:
    maximumFixableSeverity: MEDIUM
    maximumUnfixableSeverity: HIGH
`;

export interface SeededImage {
  record: ImageRecord;
  findings: Finding[];
}

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

function finding(i: number, n: number, severity: Finding['severity'], fixed: boolean): Finding {
  return {
    id: `CVE-2026-${10000 + n}`,
    aliases: [],
    package: `lib${i % 37}`,
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

/** Image `i` of a seeded ledger: five profiles, three of which the strict policy denies. */
export function seededImage(
  i: number,
  prefix: string,
  now: Date,
): Omit<SeededImage, 'record'> & {
  record: Omit<ImageRecord, 'verdicts' | 'state'>;
} {
  const registry = 'us-docker.pkg.dev';
  const repository = `acme/apps/service-${i % 50}`;
  const digest = sha(`${prefix}-${i}`);
  const profile = i % 5;
  const findings: Finding[] = [];
  findings.push(finding(i, i * 10, 'LOW', i % 2 === 0));
  if (profile === 1) findings.push(finding(i, i * 10 + 1, 'HIGH', true));
  if (profile === 2) findings.push(finding(i, i * 10 + 2, 'CRITICAL', false));
  if (profile === 3) findings.push(finding(i, i * 10 + 3, 'MEDIUM', true));
  if (profile === 4) {
    findings.push(finding(i, i * 10 + 4, 'CRITICAL', true));
    findings.push(finding(i, i * 10 + 5, 'HIGH', false));
  }
  const at = new Date(now.getTime() - 86_400_000).toISOString();
  const record = ImageRecord.parse({
    id: imageDocId(registry, repository, digest),
    registry,
    repository,
    digest,
    tags: [`v${i}`],
    pushedAt: at,
    created: at,
    user: '65532',
    labels: { team: `team-${i % 7}` },
    scan: {
      status: 'finished',
      scanner: 'artifact-analysis',
      completedAt: at,
      counts: countFindings(findings),
    },
    scanRefs: { 'container-analysis': SCAN_REF },
    state: 'evaluated',
    version: 2,
    updatedAt: at,
  });
  return { record, findings };
}

/**
 * Writes `count` images (ids from `prefix`) with their findings, verdicts evaluated under `policy`
 * at `now`, in batches of 500 writes committed a few at a time.
 */
export async function seedLedger(
  db: Firestore,
  opts: { count: number; prefix: string; policy: PolicySnapshot; now: Date },
): Promise<SeededImage[]> {
  const out: SeededImage[] = [];
  let batch = db.batch();
  let inBatch = 0;
  let pending: Promise<unknown>[] = [];
  const flush = async (force: boolean) => {
    if (inBatch > 0) {
      pending.push(batch.commit());
      batch = db.batch();
      inBatch = 0;
    }
    if (force || pending.length >= 4) {
      await Promise.all(pending);
      pending = [];
    }
  };
  for (let i = 0; i < opts.count; i++) {
    const s = seededImage(i, opts.prefix, opts.now);
    const verdicts = evaluate({
      image: { ...s.record, verdicts: {}, state: 'evaluated' },
      findings: s.findings,
      vex: [],
      policy: opts.policy.policy,
      policyHash: opts.policy.hash,
      now: opts.now,
    });
    const draft: ImageRecord = { ...s.record, verdicts, state: 'evaluated' };
    const record: ImageRecord = { ...draft, state: deriveState(draft) };
    const ref = db.collection(COLLECTIONS.images).doc(record.id);
    batch.set(ref, record);
    // Findings as the ledger stores them: chunk documents per source (shared/ledger/finding-chunks.ts).
    const { write } = planChunks('container-analysis', [], s.findings);
    for (const c of write) {
      batch.set(ref.collection(COLLECTIONS.findingChunks).doc(chunkDocId(c.source, c.n)), {
        ...c,
        imageId: record.id,
      });
    }
    inBatch += 1 + write.length;
    out.push({ record, findings: s.findings });
    if (inBatch >= 450) await flush(false);
  }
  await flush(true);
  return out;
}
