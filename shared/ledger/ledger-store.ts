// The Firestore image ledger: idempotent, order-independent application of registry and scan events.
import { createHash } from 'node:crypto';
import type {
  DocumentReference,
  DocumentSnapshot,
  Firestore,
  Transaction,
} from '@google-cloud/firestore';
import { countFindings, type Finding, findingKey, type VexStatement } from '../findings/finding.js';
import { COLLECTIONS, safeDocId } from './collections.js';
import {
  type Attestation,
  ImageRecord,
  type Platform,
  type ScanSummary,
  type Verdict,
} from './image-record.js';
import { deriveState } from './state.js';

/** A registry event, normalised from gcr, distribution, Harbor or GitHub. */
export interface LedgerRegistryEvent {
  action: 'push' | 'delete';
  registry: string;
  repository: string;
  digest: string | null;
  tag: string | null;
}

/** Where an event came from and when it was published; `messageId` makes it idempotent. */
export interface EventMeta {
  source: string;
  messageId: string;
  /** Publish time of the event (RFC 3339); orders pushes against deletes. */
  at: string;
}

/** What the registry said about a manifest, read before the transaction. */
export interface Enrichment {
  mediaType: string | null;
  platforms: Platform[];
  created: string | null;
  user: string | null;
  labels: Record<string, string>;
  base: { name: string | null; digest: string | null } | null;
}

export type ApplyOutcome = 'applied' | 'duplicate';

/** Counts document reads and writes, so benchmarks report what the store really does. */
export class OpCounter {
  reads = 0;
  writes = 0;
  reset(): void {
    this.reads = 0;
    this.writes = 0;
  }
}

export interface ScanResult {
  registry: string;
  repository: string;
  digest: string;
  source: Finding['source'];
  scanner: string;
  /** Identifies this scan run (e.g. the discovery occurrence's update time); newer wins. */
  scanRef: string;
  completedAt: string;
  status: 'finished' | 'failed' | 'scanning';
  failureReason?: string | null;
  findings: Finding[];
}

export interface DeadLetter {
  source: string;
  reason: string;
  problems?: { path: string; message: string }[];
  raw: string;
  messageId?: string | null;
  attributes?: Record<string, string>;
}

/** An image record together with the findings and VEX statements its verdict depends on. */
export interface ImageContext {
  image: ImageRecord;
  findings: Finding[];
  vex: VexStatement[];
}

const MAX_RAW = 256 * 1024;

function hashId(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 40);
}

export function imageId(registry: string, repository: string, digest: string): string {
  return `${registry}/${repository}@${digest}`.replaceAll('/', '~');
}

export function tagDocId(registry: string, repository: string, tag: string): string {
  return `${registry}/${repository}:${tag}`.replaceAll('/', '~');
}

function maxIso(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return a >= b ? a : b;
}

function emptyRecord(
  id: string,
  registry: string,
  repository: string,
  digest: string,
  now: string,
): ImageRecord {
  return ImageRecord.parse({ id, registry, repository, digest, state: 'pushed', updatedAt: now });
}

export class FirestoreLedger {
  readonly ops = new OpCounter();

  constructor(
    private readonly db: Firestore,
    private readonly options: { eventTtlDays: number } = { eventTtlDays: 7 },
  ) {}

  private images() {
    return this.db.collection(COLLECTIONS.images);
  }

  imageRef(id: string): DocumentReference {
    return this.images().doc(id);
  }

  private markerRef(meta: EventMeta): DocumentReference {
    return this.db
      .collection(COLLECTIONS.events)
      .doc(safeDocId(`${meta.source}:${meta.messageId}`));
  }

  private async txGet(tx: Transaction, ...refs: DocumentReference[]): Promise<DocumentSnapshot[]> {
    this.ops.reads += refs.length;
    return tx.getAll(...refs);
  }

  private txSet(
    tx: Transaction,
    ref: DocumentReference,
    data: Record<string, unknown>,
    merge = false,
  ): void {
    this.ops.writes += 1;
    if (merge) tx.set(ref, data, { merge: true });
    else tx.set(ref, data);
  }

  private marker(
    meta: EventMeta,
    now: string,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    const expireAt = new Date(Date.parse(now) + this.options.eventTtlDays * 86_400_000);
    return {
      source: meta.source,
      messageId: meta.messageId,
      at: meta.at,
      processedAt: now,
      expireAt,
      ...extra,
    };
  }

  private audit(
    tx: Transaction,
    id: string,
    meta: EventMeta,
    entry: Record<string, unknown>,
    now: string,
  ): void {
    // The audit entry's id is the event's, so a redelivery can never add a second one.
    const ref = this.imageRef(id)
      .collection(COLLECTIONS.audit)
      .doc(safeDocId(`${meta.source}:${meta.messageId}`));
    this.txSet(tx, ref, {
      ...entry,
      source: meta.source,
      messageId: meta.messageId,
      at: meta.at,
      recordedAt: now,
    });
  }

  private finish(rec: ImageRecord, now: string): ImageRecord {
    const next = { ...rec, version: rec.version + 1, updatedAt: now };
    next.state = deriveState(next);
    return next;
  }

  /** Applies a push or delete of one manifest; a tag-only push must be resolved to a digest first. */
  async applyRegistryEvent(
    ev: LedgerRegistryEvent & { digest: string },
    meta: EventMeta,
    now: Date,
    enrichment?: Enrichment,
  ): Promise<{ outcome: ApplyOutcome; image: ImageRecord | null; previous: ImageRecord | null }> {
    const nowIso = now.toISOString();
    const id = imageId(ev.registry, ev.repository, ev.digest);
    return this.db.runTransaction(async (tx) => {
      const [marker, snap] = await this.txGet(tx, this.markerRef(meta), this.imageRef(id));
      if (marker?.exists) return { outcome: 'duplicate' as const, image: null, previous: null };
      const previous = snap?.exists ? ImageRecord.parse(snap.data()) : null;
      let rec = previous ?? emptyRecord(id, ev.registry, ev.repository, ev.digest, nowIso);
      if (ev.action === 'push') {
        rec = {
          ...rec,
          tags: ev.tag && !rec.tags.includes(ev.tag) ? [...rec.tags, ev.tag].sort() : rec.tags,
          pushedAt: maxIso(rec.pushedAt, meta.at),
        };
        if (enrichment) rec = applyEnrichment(rec, enrichment);
      } else {
        rec = { ...rec, deletedAt: maxIso(rec.deletedAt, meta.at) };
      }
      rec = this.finish(rec, nowIso);
      this.txSet(tx, this.imageRef(id), rec);
      if (ev.tag) {
        const field = ev.action === 'push' ? 'pushes' : 'deletes';
        this.txSet(
          tx,
          this.db.collection(COLLECTIONS.tags).doc(tagDocId(ev.registry, ev.repository, ev.tag)),
          {
            registry: ev.registry,
            repository: ev.repository,
            tag: ev.tag,
            [field]: { [ev.digest]: meta.at },
          },
          true,
        );
      }
      this.txSet(tx, this.markerRef(meta), this.marker(meta, nowIso, { imageId: id }));
      this.audit(
        tx,
        id,
        meta,
        { kind: `registry-${ev.action}`, tag: ev.tag, digest: ev.digest },
        nowIso,
      );
      return { outcome: 'applied' as const, image: rec, previous };
    });
  }

  /** Records a tag deletion that names no digest: the tag stops resolving from this time on. */
  async applyTagDelete(
    ev: LedgerRegistryEvent & { tag: string },
    meta: EventMeta,
    now: Date,
  ): Promise<ApplyOutcome> {
    const nowIso = now.toISOString();
    return this.db.runTransaction(async (tx) => {
      const [marker] = await this.txGet(tx, this.markerRef(meta));
      if (marker?.exists) return 'duplicate' as const;
      this.txSet(
        tx,
        this.db.collection(COLLECTIONS.tags).doc(tagDocId(ev.registry, ev.repository, ev.tag)),
        {
          registry: ev.registry,
          repository: ev.repository,
          tag: ev.tag,
          tagDeletes: { [safeDocId(meta.messageId)]: meta.at },
        },
        true,
      );
      this.txSet(tx, this.markerRef(meta), this.marker(meta, nowIso));
      return 'applied' as const;
    });
  }

  /** Links the children of an index to it (each child its own record, parents merged). */
  async linkChildren(
    parent: { registry: string; repository: string; digest: string },
    platforms: Platform[],
    now: Date,
  ): Promise<void> {
    const nowIso = now.toISOString();
    for (const p of platforms) {
      const id = imageId(parent.registry, parent.repository, p.digest);
      await this.db.runTransaction(async (tx) => {
        const [snap] = await this.txGet(tx, this.imageRef(id));
        const prev = snap?.exists
          ? ImageRecord.parse(snap.data())
          : emptyRecord(id, parent.registry, parent.repository, p.digest, nowIso);
        if (prev.parents.includes(parent.digest) && snap?.exists) return;
        const rec = this.finish(
          { ...prev, parents: [...new Set([...prev.parents, parent.digest])].sort() },
          nowIso,
        );
        this.txSet(tx, this.imageRef(id), rec);
      });
    }
  }

  /**
   * Stores a scan's findings (batched writes, not one transaction per finding), then the summary
   * in a transaction; findings of an older scan from the same source are removed afterwards.
   */
  async applyScan(
    scan: ScanResult,
    meta: EventMeta,
    now: Date,
    evaluate?: (ctx: ImageContext) => Record<string, Verdict>,
  ): Promise<{
    outcome: ApplyOutcome | 'stale';
    image: ImageRecord | null;
    previous: ImageRecord | null;
  }> {
    const nowIso = now.toISOString();
    const id = imageId(scan.registry, scan.repository, scan.digest);
    const ref = this.imageRef(id);
    const findingsCol = ref.collection(COLLECTIONS.findings);
    if (scan.status === 'finished') {
      const writer = this.db.batch();
      let inBatch = 0;
      let batches: FirebaseFirestore.WriteBatch[] = [writer];
      let current = writer;
      for (const f of scan.findings) {
        if (inBatch === 500) {
          current = this.db.batch();
          batches = [...batches, current];
          inBatch = 0;
        }
        current.set(findingsCol.doc(hashId(findingKey(f))), { ...f, scanRef: scan.scanRef });
        inBatch += 1;
        this.ops.writes += 1;
      }
      await Promise.all(batches.map((b) => b.commit()));
    }
    const result = await this.db.runTransaction(async (tx) => {
      const [marker, snap] = await this.txGet(tx, this.markerRef(meta), ref);
      if (marker?.exists) return { outcome: 'duplicate' as const, image: null, previous: null };
      const previous = snap?.exists ? ImageRecord.parse(snap.data()) : null;
      let rec = previous ?? emptyRecord(id, scan.registry, scan.repository, scan.digest, nowIso);
      const scanRefs = { ...((snap?.get('scanRefs') as Record<string, string> | undefined) ?? {}) };
      const known = scanRefs[scan.source];
      if (known && known > scan.scanRef) {
        this.txSet(
          tx,
          this.markerRef(meta),
          this.marker(meta, nowIso, { imageId: id, stale: true }),
        );
        return { outcome: 'stale' as const, image: previous, previous };
      }
      const summary: ScanSummary =
        scan.status === 'finished'
          ? {
              status: 'finished',
              scanner: scan.scanner,
              completedAt: scan.completedAt,
              counts: countFindings(scan.findings),
              failureReason: null,
            }
          : scan.status === 'failed'
            ? {
                status: 'failed',
                scanner: scan.scanner,
                completedAt: scan.completedAt,
                counts: null,
                failureReason: scan.failureReason ?? 'scan failed',
              }
            : {
                ...rec.scan,
                status: rec.scan.status === 'finished' ? 'finished' : 'scanning',
                scanner: scan.scanner,
              };
      if (scan.status !== 'scanning') scanRefs[scan.source] = scan.scanRef;
      rec = { ...rec, scan: summary };
      if (evaluate && scan.status !== 'scanning') {
        rec = { ...rec, verdicts: evaluate({ image: rec, findings: scan.findings, vex: [] }) };
      }
      rec = this.finish(rec, nowIso);
      this.txSet(tx, ref, { ...rec, scanRefs });
      this.txSet(tx, this.markerRef(meta), this.marker(meta, nowIso, { imageId: id }));
      this.audit(
        tx,
        id,
        meta,
        { kind: `scan-${scan.status}`, scanner: scan.scanner, total: scan.findings.length },
        nowIso,
      );
      return { outcome: 'applied' as const, image: rec, previous };
    });
    if (result.outcome === 'applied' && scan.status === 'finished') {
      const stale = await findingsCol
        .where('source', '==', scan.source)
        .where('scanRef', '!=', scan.scanRef)
        .get();
      this.ops.reads += stale.size;
      if (!stale.empty) {
        const batch = this.db.batch();
        for (const d of stale.docs.slice(0, 500)) batch.delete(d.ref);
        this.ops.writes += Math.min(stale.size, 500);
        await batch.commit();
      }
    }
    return result;
  }

  async getImage(id: string): Promise<ImageRecord | null> {
    const snap = await this.imageRef(id).get();
    this.ops.reads += 1;
    return snap.exists ? ImageRecord.parse(snap.data()) : null;
  }

  /** Findings of the image's current scans (one per source). */
  async getFindings(id: string, scanRefs?: Record<string, string>): Promise<Finding[]> {
    const refs =
      scanRefs ??
      ((await this.imageRef(id).get()).get('scanRefs') as Record<string, string> | undefined) ??
      {};
    const snap = await this.imageRef(id).collection(COLLECTIONS.findings).get();
    this.ops.reads += snap.size;
    const out: Finding[] = [];
    for (const d of snap.docs) {
      const data = d.data() as Finding & { scanRef?: string };
      if (refs[data.source] && data.scanRef !== refs[data.source]) continue;
      const { scanRef: _ignored, ...f } = data;
      out.push(f as Finding);
    }
    return out;
  }

  /** The digest a tag points at now: the latest push, unless the tag was deleted after it. */
  async resolveTag(registry: string, repository: string, tag: string): Promise<string | null> {
    const snap = await this.db
      .collection(COLLECTIONS.tags)
      .doc(tagDocId(registry, repository, tag))
      .get();
    this.ops.reads += 1;
    if (!snap.exists) return null;
    return resolveTagDoc(snap.data() as TagDoc);
  }

  async recordDeadLetter(dl: DeadLetter, now: Date): Promise<string> {
    const truncated = dl.raw.length > MAX_RAW;
    const id = safeDocId(`${dl.source}:${dl.messageId ?? hashId(dl.raw)}`);
    await this.db
      .collection(COLLECTIONS.deadLetters)
      .doc(id)
      .set({
        source: dl.source,
        reason: dl.reason,
        problems: dl.problems ?? [],
        raw: truncated ? dl.raw.slice(0, MAX_RAW) : dl.raw,
        rawBytes: Buffer.byteLength(dl.raw),
        truncated,
        messageId: dl.messageId ?? null,
        attributes: dl.attributes ?? {},
        receivedAt: now.toISOString(),
      });
    this.ops.writes += 1;
    return id;
  }

  /** Replaces attestations on an image record (used by the attestation service). */
  async setAttestations(
    id: string,
    update: (current: Attestation[]) => Attestation[],
    now: Date,
  ): Promise<ImageRecord | null> {
    const nowIso = now.toISOString();
    return this.db.runTransaction(async (tx) => {
      const [snap] = await this.txGet(tx, this.imageRef(id));
      if (!snap?.exists) return null;
      const prev = ImageRecord.parse(snap.data());
      const rec = this.finish({ ...prev, attestations: update(prev.attestations) }, nowIso);
      this.txSet(tx, this.imageRef(id), rec, true);
      return rec;
    });
  }
}

export interface TagDoc {
  pushes?: Record<string, string>;
  deletes?: Record<string, string>;
  tagDeletes?: Record<string, string>;
}

export function resolveTagDoc(doc: TagDoc): string | null {
  let best: [string, string] | null = null;
  for (const [digest, at] of Object.entries(doc.pushes ?? {})) {
    const deletedAt = doc.deletes?.[digest];
    if (deletedAt && deletedAt >= at) continue;
    if (!best || at > best[1] || (at === best[1] && digest > best[0])) best = [digest, at];
  }
  if (!best) return null;
  const lastTagDelete = Object.values(doc.tagDeletes ?? {})
    .sort()
    .at(-1);
  if (lastTagDelete && lastTagDelete >= best[1]) return null;
  return best[0];
}

export function applyEnrichment(rec: ImageRecord, e: Enrichment): ImageRecord {
  const owner = e.labels.owner ?? e.labels['org.opencontainers.image.vendor'] ?? rec.owner;
  return {
    ...rec,
    mediaType: e.mediaType ?? rec.mediaType,
    platforms: e.platforms.length > 0 ? e.platforms : rec.platforms,
    created: e.created ?? rec.created,
    user: e.user ?? rec.user,
    labels: { ...rec.labels, ...e.labels },
    owner: owner ?? null,
    base:
      e.base && (e.base.name || e.base.digest)
        ? {
            name: e.base.name,
            digest: e.base.digest,
            status: rec.base?.status ?? 'unknown',
            supersededAt: rec.base?.supersededAt ?? null,
            currentDigest: rec.base?.currentDigest ?? null,
            source: 'annotation',
          }
        : rec.base,
  };
}
