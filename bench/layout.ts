// The findings storage-layout experiment: `npm run bench:layout`; Firestore operations of each candidate layout against the emulator, per scan, rescan and fleet query. The last line is one JSON object.
import { createHash } from 'node:crypto';
import type { DocumentReference, Firestore, Transaction } from '@google-cloud/firestore';
import { resetFirestore, startEmulators } from '../scripts/lib/emulators.js';
import type { Finding } from '../shared/findings/finding.js';
import { findingKey } from '../shared/findings/finding.js';
import {
  chunkDocId,
  FindingChunk,
  planChunks,
  vulnerabilityIds,
} from '../shared/ledger/finding-chunks.js';
import { prng, syntheticFindings } from './lib/evaluate-workload.js';

const IMAGES = Number(process.env.BENCH_LAYOUT_IMAGES ?? 20);
const FINDINGS = Number(process.env.BENCH_LAYOUT_FINDINGS ?? 1_000);
/** The CVE every image has (Debian's tar) and one only two images have. */
const COMMON = 'CVE-2005-2541';
const RARE = 'CVE-2099-0001';
const SOURCE = 'container-analysis' as const;

/** Document reads and writes (deletes counted apart), as Firestore bills them. */
class Ops {
  reads = 0;
  writes = 0;
  deletes = 0;
  get(tx: Transaction, ref: DocumentReference) {
    this.reads += 1;
    return tx.get(ref);
  }
  set(tx: Transaction, ref: DocumentReference, data: Record<string, unknown>) {
    this.writes += 1;
    tx.set(ref, data);
  }
  delete(tx: Transaction, ref: DocumentReference) {
    this.deletes += 1;
    tx.delete(ref);
  }
  /** A query: one read per document returned, one if none. */
  count(n: number) {
    this.reads += Math.max(1, n);
  }
}

const hashId = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 40);
const canonical = (f: Finding) =>
  JSON.stringify(Object.entries(f).sort(([a], [b]) => a.localeCompare(b)));

/** A candidate layout: how one scan is stored, how one image's findings and the fleet query are read. */
interface Layout {
  name: string;
  description: string;
  /** Stores `findings` as the source's current set, in one transaction with image, audit entry and marker. */
  scan(db: Firestore, ops: Ops, imageId: string, event: string, findings: Finding[]): Promise<void>;
  findings(db: Firestore, ops: Ops, imageId: string): Promise<Finding[]>;
  imagesWith(db: Firestore, ops: Ops, vulnerability: string): Promise<Set<string>>;
}

/** What every layout writes per event besides findings: the image summary, the audit entry, the marker. */
async function envelope(
  db: Firestore,
  tx: Transaction,
  ops: Ops,
  imageId: string,
  event: string,
): Promise<Record<string, unknown> | undefined> {
  const image = db.collection('images').doc(imageId);
  const marker = db.collection('events').doc(event);
  const [m, snap] = await Promise.all([ops.get(tx, marker), ops.get(tx, image)]);
  if (m.exists) throw new Error(`event ${event} applied twice`);
  return snap.data();
}

function finishEnvelope(
  db: Firestore,
  tx: Transaction,
  ops: Ops,
  imageId: string,
  event: string,
  total: number,
  extra: Record<string, unknown> = {},
) {
  const image = db.collection('images').doc(imageId);
  ops.set(tx, image, { id: imageId, scanRef: event, total, ...extra });
  ops.set(tx, image.collection('audit').doc(event), { kind: 'scan-finished', total });
  ops.set(tx, db.collection('events').doc(event), { imageId });
}

/** A: a document per finding, written as a diff against the stored documents (read in the transaction). */
const perFinding: Layout = {
  name: 'per-finding',
  description:
    'a document per finding (images/{id}/findings/{key}); diff by reading the stored ones',
  async scan(db, ops, imageId, event, findings) {
    const col = db.collection('images').doc(imageId).collection('findingsA');
    await db.runTransaction(async (tx) => {
      await envelope(db, tx, ops, imageId, event);
      const stored = await tx.get(col.where('source', '==', SOURCE));
      ops.count(stored.size);
      const old = new Map(stored.docs.map((d) => [d.id, canonical(d.data() as Finding)]));
      const keep = new Set<string>();
      for (const f of findings) {
        const id = hashId(findingKey(f));
        keep.add(id);
        const doc = { ...f, vulnerabilities: vulnerabilityIds([f]) };
        if (old.get(id) !== canonical(doc as Finding)) ops.set(tx, col.doc(id), doc);
      }
      for (const id of old.keys()) if (!keep.has(id)) ops.delete(tx, col.doc(id));
      finishEnvelope(db, tx, ops, imageId, event, findings.length);
    });
  },
  async findings(db, ops, imageId) {
    const snap = await db.collection('images').doc(imageId).collection('findingsA').get();
    ops.count(snap.size);
    return snap.docs.map((d) => {
      const { vulnerabilities: _, ...f } = d.data();
      return f as Finding;
    });
  },
  async imagesWith(db, ops, vulnerability) {
    const snap = await db
      .collectionGroup('findingsA')
      .where('vulnerabilities', 'array-contains', vulnerability)
      .get();
    ops.count(snap.size);
    return new Set(snap.docs.map((d) => d.ref.parent.parent?.id ?? ''));
  },
};

/** A2: a document per finding, the diff taken against a manifest of content hashes kept on the image. */
const perFindingManifest: Layout = {
  ...perFinding,
  name: 'per-finding+manifest',
  description: 'a document per finding; diff against content hashes kept on the image document',
  async scan(db, ops, imageId, event, findings) {
    const col = db.collection('images').doc(imageId).collection('findingsA');
    await db.runTransaction(async (tx) => {
      const image = await envelope(db, tx, ops, imageId, event);
      const old = new Map(Object.entries((image?.manifest ?? {}) as Record<string, string>));
      const manifest: Record<string, string> = {};
      for (const f of findings) {
        const id = hashId(findingKey(f));
        const doc = { ...f, vulnerabilities: vulnerabilityIds([f]) };
        manifest[id] = hashId(canonical(doc as Finding)).slice(0, 16);
        if (old.get(id) !== manifest[id]) ops.set(tx, col.doc(id), doc);
      }
      for (const id of old.keys()) if (!(id in manifest)) ops.delete(tx, col.doc(id));
      finishEnvelope(db, tx, ops, imageId, event, findings.length, { manifest });
    });
  },
};

async function storedChunks(
  tx: Transaction,
  ops: Ops,
  col: FirebaseFirestore.CollectionReference,
): Promise<FindingChunk[]> {
  const snap = await tx.get(col.where('source', '==', SOURCE));
  ops.count(snap.size);
  return snap.docs.map((d) => FindingChunk.parse(d.data()));
}

/** B: compact chunks per source; the chunks' `vulnerabilities` arrays are the fleet index. */
const chunks: Layout = {
  name: 'chunks',
  description:
    'findings of a source in chunk documents (≤ 1,000 findings / 600 KB), rewritten where changed; fleet query on their vulnerability arrays',
  async scan(db, ops, imageId, event, findings) {
    const col = db.collection('images').doc(imageId).collection('findingChunks');
    await db.runTransaction(async (tx) => {
      await envelope(db, tx, ops, imageId, event);
      const plan = planChunks(SOURCE, await storedChunks(tx, ops, col), findings);
      for (const c of plan.write) ops.set(tx, col.doc(chunkDocId(c.source, c.n)), { ...c });
      for (const n of plan.remove) ops.delete(tx, col.doc(chunkDocId(SOURCE, n)));
      finishEnvelope(db, tx, ops, imageId, event, findings.length);
    });
  },
  async findings(db, ops, imageId) {
    const snap = await db.collection('images').doc(imageId).collection('findingChunks').get();
    ops.count(snap.size);
    return snap.docs.flatMap((d) => FindingChunk.parse(d.data()).findings);
  },
  async imagesWith(db, ops, vulnerability) {
    const snap = await db
      .collectionGroup('findingChunks')
      .where('vulnerabilities', 'array-contains', vulnerability)
      .select()
      .get();
    ops.count(snap.size);
    return new Set(snap.docs.map((d) => d.ref.parent.parent?.id ?? ''));
  },
};

/** B2: compact chunks plus a separate index document per (vulnerability, image), updated from the diff. */
const chunksIndexDocs: Layout = {
  ...chunks,
  name: 'chunks+index-docs',
  description:
    'the same chunks, plus vulnerabilities/{id}/images/{image} documents written from the diff',
  async scan(db, ops, imageId, event, findings) {
    const col = db.collection('images').doc(imageId).collection('findingChunks');
    const index = (v: string) =>
      db.collection('vulnerabilities').doc(hashId(v)).collection('images').doc(imageId);
    await db.runTransaction(async (tx) => {
      await envelope(db, tx, ops, imageId, event);
      const stored = await storedChunks(tx, ops, col);
      const before = new Set(vulnerabilityIds(stored.flatMap((c) => c.findings)));
      const after = new Set(vulnerabilityIds(findings));
      const plan = planChunks(SOURCE, stored, findings);
      for (const c of plan.write) ops.set(tx, col.doc(chunkDocId(c.source, c.n)), { ...c });
      for (const n of plan.remove) ops.delete(tx, col.doc(chunkDocId(SOURCE, n)));
      for (const v of after)
        if (!before.has(v)) ops.set(tx, index(v), { vulnerability: v, imageId });
      for (const v of before) if (!after.has(v)) ops.delete(tx, index(v));
      finishEnvelope(db, tx, ops, imageId, event, findings.length);
    });
  },
  async imagesWith(db, ops, vulnerability) {
    const snap = await db
      .collection('vulnerabilities')
      .doc(hashId(vulnerability))
      .collection('images')
      .get();
    ops.count(snap.size);
    return new Set(snap.docs.map((d) => d.id));
  },
};

const LAYOUTS = [perFinding, perFindingManifest, chunks, chunksIndexDocs];

/** Findings as Artifact Analysis reports them: a description and a link each. */
function imageFindings(i: number): Finding[] {
  const rand = prng(1_000 + i);
  const base = syntheticFindings(rand, FINDINGS - (i < 2 ? 2 : 1), 300).map((f) => ({
    ...f,
    description:
      `${f.id} in ${f.package}: ${'a flaw in input handling lets a remote attacker cause a denial of service or possibly execute code. '.repeat(3)}`.slice(
        0,
        300,
      ),
    url: `https://security-tracker.debian.org/tracker/${f.id}`,
  }));
  const extra = (id: string): Finding => ({
    id,
    aliases: [],
    package: 'tar',
    packageType: 'deb',
    installedVersion: '1.34+dfsg-1.2',
    fixedVersion: null,
    fixState: 'wont-fix',
    severity: 'LOW',
    cvss: 7.8,
    source: SOURCE,
    description: 'tar allows extraction of files with absolute names',
    url: `https://security-tracker.debian.org/tracker/${id}`,
  });
  return [...base, extra(COMMON), ...(i < 2 ? [extra(RARE)] : [])];
}

/** k changed findings: a third with a new severity, a third new, a third gone. */
function changed(findings: Finding[], k: number): Finding[] {
  const third = Math.floor(k / 3);
  const modified = k - 2 * third;
  const out = findings
    .filter((_, i) => i < modified || i >= modified + third)
    .map(
      (f, i): Finding =>
        i < modified ? { ...f, severity: f.severity === 'CRITICAL' ? 'HIGH' : 'CRITICAL' } : f,
    );
  for (let j = 0; j < third; j++) {
    out.push({
      ...(findings[0] as Finding),
      id: `CVE-2026-9${String(j).padStart(4, '0')}`,
      aliases: [],
    });
  }
  return out;
}

/** Every document's update time (metadata only, one query per collection name): to count writes independently. */
async function updateTimes(db: Firestore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of ['images', 'events', 'audit', 'findingsA', 'findingChunks']) {
    const snap = await db.collectionGroup(name).select().get();
    for (const d of snap.docs) out.set(d.ref.path, d.updateTime.valueOf());
  }
  return out;
}

function diffTimes(a: Map<string, string>, b: Map<string, string>) {
  let written = 0;
  let deleted = 0;
  for (const [path, t] of b) if (a.get(path) !== t) written += 1;
  for (const path of a.keys()) if (!b.has(path)) deleted += 1;
  return { written, deleted };
}

const K = 10;
const results: Record<string, number | string | boolean> = {};

async function main(): Promise<void> {
  const emulators = await startEmulators({
    ports: 'free',
    projectId: 'demo-bench-layout',
    group: `bench-layout-${process.pid}`,
  });
  Object.assign(process.env, emulators.env);
  const { Firestore } = await import('@google-cloud/firestore');
  const db = new Firestore({ projectId: emulators.projectId });
  try {
    console.log(
      `findings layouts: ${IMAGES} images × ${FINDINGS} findings (Firestore emulator); rescans of one image; ${COMMON} in every image, ${RARE} in 2`,
    );
    for (const layout of LAYOUTS) {
      await resetFirestore(emulators.firestoreHost, emulators.projectId);
      const sets = Array.from({ length: IMAGES }, (_, i) => imageFindings(i));
      const first = new Ops();
      const t0 = performance.now();
      for (const [i, f] of sets.entries())
        await layout.scan(db, first, `img-${i}`, `scan-${i}-1`, f);
      const firstMs = (performance.now() - t0) / IMAGES;
      // Rescans of image 0, counted by the layout and checked against the documents' update times.
      const step = async (event: string, f: Finding[]) => {
        const ops = new Ops();
        const before = await updateTimes(db);
        const t = performance.now();
        await layout.scan(db, ops, 'img-0', event, f);
        const ms = performance.now() - t;
        const seen = diffTimes(before, await updateTimes(db));
        if (seen.written !== ops.writes || seen.deleted !== ops.deletes) {
          throw new Error(
            `${layout.name} ${event}: counted ${ops.writes} writes and ${ops.deletes} deletes, update times say ${seen.written} and ${seen.deleted}`,
          );
        }
        return { ops, ms };
      };
      const same = await step('scan-0-2', sets[0] as Finding[]);
      const next = changed(sets[0] as Finding[], K);
      const diff = await step('scan-0-3', next);
      const read = new Ops();
      const got = await layout.findings(db, read, 'img-0');
      if (got.length !== next.length)
        throw new Error(`${layout.name}: read ${got.length} findings, stored ${next.length}`);
      const common = new Ops();
      const withCommon = await layout.imagesWith(db, common, COMMON);
      const rare = new Ops();
      const withRare = await layout.imagesWith(db, rare, RARE);
      if (withCommon.size !== IMAGES || withRare.size !== 2) {
        throw new Error(
          `${layout.name}: fleet query found ${withCommon.size} and ${withRare.size} images`,
        );
      }
      const key = layout.name.replaceAll(/[^a-z0-9]+/g, '_');
      const r = (name: string, v: number) => {
        results[`${key}_${name}`] = Math.round(v * 100) / 100;
      };
      r('first_scan_reads', first.reads / IMAGES);
      r('first_scan_writes', first.writes / IMAGES);
      r('first_scan_ms', firstMs);
      r('rescan_unchanged_reads', same.ops.reads);
      r('rescan_unchanged_writes', same.ops.writes + same.ops.deletes);
      r('rescan_changed_reads', diff.ops.reads);
      r('rescan_changed_writes', diff.ops.writes + diff.ops.deletes);
      r('rescan_changed_ms', diff.ms);
      r('image_findings_reads', read.reads);
      r('fleet_query_common_reads', common.reads);
      r('fleet_query_rare_reads', rare.reads);
      console.log(`${layout.name}: ${layout.description}`);
      console.log(
        `  first scan        ${first.reads / IMAGES} reads, ${first.writes / IMAGES} writes per image (${firstMs.toFixed(0)} ms)`,
      );
      console.log(
        `  unchanged rescan  ${same.ops.reads} reads, ${same.ops.writes} writes, ${same.ops.deletes} deletes (${same.ms.toFixed(0)} ms)`,
      );
      console.log(
        `  rescan, ${K} changed ${diff.ops.reads} reads, ${diff.ops.writes} writes, ${diff.ops.deletes} deletes (${diff.ms.toFixed(0)} ms)`,
      );
      console.log(`  one image's findings (evaluation)  ${read.reads} reads`);
      console.log(
        `  which images have ${COMMON} (${IMAGES})  ${common.reads} reads; ${RARE} (2)  ${rare.reads} reads`,
      );
    }
    results.images = IMAGES;
    results.findings_per_image = FINDINGS;
    results.changed_findings = K;
  } finally {
    await db.terminate();
    await emulators.stop();
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => console.log(JSON.stringify(results)));
