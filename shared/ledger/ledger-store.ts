// The Firestore image ledger: idempotent, order-independent application of registry and scan events.
import { createHash, randomUUID } from 'node:crypto';
import type {
  DocumentReference,
  DocumentSnapshot,
  Firestore,
  Transaction,
} from '@google-cloud/firestore';
import { countFindings, type Finding } from '../findings/finding.js';
import { imageDocId as imageId, parseImageDocId } from '../image-ref/image-ref.js';
import { COLLECTIONS, safeDocId } from './collections.js';
import { type ChunkPlan, type FindingChunk, planChunks } from './finding-chunks.js';
import {
  chunkFindingsOfRange,
  findingsOfChunks,
  getChunkFindings,
  imagesWithVulnerability,
  readChunks,
  stageChunks,
} from './findings-store.js';
import {
  ImageRecord,
  type Platform,
  type Provenance,
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

export type ApplyOutcome = 'applied' | 'duplicate' | 'stale';

export interface ImageTransaction<E> {
  outcome: ApplyOutcome;
  image: ImageRecord | null;
  previous: ImageRecord | null;
  /** Side effects to publish: new ones, or those a crashed earlier delivery left unpublished. */
  effects: E[];
}

/** Environments whose decision changed between two records. */
export function verdictChanges(
  previous: ImageRecord | null,
  next: ImageRecord,
): { environment: string; from: string | null; to: string }[] {
  const out: { environment: string; from: string | null; to: string }[] = [];
  for (const [env, v] of Object.entries(next.verdicts).sort(([a], [b]) => a.localeCompare(b))) {
    const before = previous?.verdicts[env]?.decision ?? null;
    if (before !== v.decision) out.push({ environment: env, from: before, to: v.decision });
  }
  return out;
}

/** Reads and writes of one transaction attempt. */
interface Attempt {
  reads: number;
  writes: number;
  auditWrites: number;
}

/** Counts document reads and writes, so benchmarks report what the store really does. */
export class OpCounter {
  reads = 0;
  /** Every document write, audit-trail entries included. */
  writes = 0;
  /** The part of `writes` that is audit-trail entries (one per event, verdict changes included). */
  auditWrites = 0;
  /** Transactions committed (not attempts: a retried transaction counts once). */
  transactions = 0;
  /** Batched writes committed (findings, stale-finding deletes). */
  batches = 0;
  reset(): void {
    this.reads = 0;
    this.writes = 0;
    this.auditWrites = 0;
    this.transactions = 0;
    this.batches = 0;
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
  /** Build provenance found next to the scan (Cloud Build BUILD occurrence), if any. */
  provenance?: Provenance | null;
}

export interface DeadLetter {
  source: string;
  reason: string;
  problems?: { path: string; message: string }[];
  raw: string;
  messageId?: string | null;
  attributes?: Record<string, string>;
}

const MAX_RAW = 256 * 1024;

function hashId(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 40);
}

export function tagDocId(registry: string, repository: string, tag: string): string {
  return `${registry}/${repository}:${tag}`.replaceAll('/', '~');
}

function maxIso(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return a >= b ? a : b;
}

/** A record for an image the ledger has not seen yet (events may arrive before its push). */
export function emptyImageRecord(
  id: string,
  name: { registry: string; repository: string; digest: string },
  now: Date,
): ImageRecord {
  return emptyRecord(id, name.registry, name.repository, name.digest, now.toISOString());
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

  /** Counts of the running attempt of each transaction: a retried attempt's reads and writes are not billed as written. */
  private readonly attempts = new WeakMap<Transaction, Attempt>();

  private async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    let last: Attempt | undefined;
    const out = await this.db.runTransaction(async (tx) => {
      last = { reads: 0, writes: 0, auditWrites: 0 };
      this.attempts.set(tx, last);
      return fn(tx);
    });
    if (last) {
      this.ops.reads += last.reads;
      this.ops.writes += last.writes;
      this.ops.auditWrites += last.auditWrites;
    }
    this.ops.transactions += 1;
    return out;
  }

  /** Where a transaction's operations are counted until it commits. */
  private counter(tx: Transaction): Attempt {
    return this.attempts.get(tx) ?? this.ops;
  }

  private async txGet(tx: Transaction, ...refs: DocumentReference[]): Promise<DocumentSnapshot[]> {
    this.counter(tx).reads += refs.length;
    return tx.getAll(...refs);
  }

  private txSet(
    tx: Transaction,
    ref: DocumentReference,
    data: Record<string, unknown>,
    merge = false,
  ): void {
    this.counter(tx).writes += 1;
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
    this.counter(tx).auditWrites += 1;
    this.txSet(tx, ref, {
      ...entry,
      source: meta.source,
      messageId: meta.messageId,
      at: meta.at,
      recordedAt: now,
    });
  }

  /** Merges into a tag's index document without reading it; `resolveTagDoc` makes sense of it at read time. */
  private mergeTagIndex(
    tx: Transaction,
    ev: LedgerRegistryEvent & { tag: string },
    fields: Record<string, unknown>,
  ): void {
    this.txSet(
      tx,
      this.db.collection(COLLECTIONS.tags).doc(tagDocId(ev.registry, ev.repository, ev.tag)),
      { registry: ev.registry, repository: ev.repository, tag: ev.tag, ...fields },
      true,
    );
  }

  private finish(rec: ImageRecord, now: string): ImageRecord {
    const next = { ...rec, version: rec.version + 1, updatedAt: now };
    next.state = deriveState(next);
    return next;
  }

  /**
   * The one read-modify-write path for an image document: marker and image read (2 reads), the
   * image, marker and audit entry written in one transaction. Side effects computed here are kept
   * on the marker until `effectsDone`, so a crash before publishing them is repaired by redelivery.
   */
  async transactImage<E>(input: {
    meta: EventMeta;
    now: Date;
    id: string;
    init: () => ImageRecord;
    /** Reads more inside the transaction, after marker and image (not for a duplicate). */
    read?: ((tx: Transaction) => Promise<void>) | undefined;
    mutate: (
      rec: ImageRecord,
      previous: ImageRecord | null,
      tx: Transaction,
    ) => ImageRecord | 'stale';
    evaluate?: ((rec: ImageRecord) => Record<string, Verdict> | null) | undefined;
    audit: Record<string, unknown>;
    effects?: ((previous: ImageRecord | null, next: ImageRecord) => E[]) | undefined;
    extra?: Record<string, unknown>;
  }): Promise<ImageTransaction<E>> {
    const { meta, id } = input;
    const nowIso = input.now.toISOString();
    return this.transaction(async (tx) => {
      const [marker, snap] = await this.txGet(tx, this.markerRef(meta), this.imageRef(id));
      if (marker?.exists) {
        const pending =
          marker.get('effectsDone') === false
            ? ((marker.get('effects') as E[] | undefined) ?? [])
            : [];
        return { outcome: 'duplicate' as const, image: null, previous: null, effects: pending };
      }
      const previous = snap?.exists ? ImageRecord.parse(snap.data()) : null;
      await input.read?.(tx);
      const mutated = input.mutate(previous ?? input.init(), previous, tx);
      if (mutated === 'stale') {
        this.txSet(
          tx,
          this.markerRef(meta),
          this.marker(meta, nowIso, { imageId: id, stale: true }),
        );
        return { outcome: 'stale' as const, image: previous, previous, effects: [] };
      }
      let rec = mutated;
      const verdicts = input.evaluate?.(rec);
      if (verdicts) rec = { ...rec, verdicts };
      rec = this.finish(rec, nowIso);
      this.txSet(
        tx,
        this.imageRef(id),
        { ...rec, ...(input.extra ?? {}) },
        input.extra !== undefined,
      );
      const effects = input.effects?.(previous, rec) ?? [];
      this.txSet(
        tx,
        this.markerRef(meta),
        this.marker(
          meta,
          nowIso,
          effects.length > 0 ? { imageId: id, effects, effectsDone: false } : { imageId: id },
        ),
      );
      // One audit entry per event; a verdict change it caused is part of that entry.
      const changes = verdictChanges(previous, rec);
      this.audit(
        tx,
        id,
        meta,
        changes.length > 0
          ? {
              ...input.audit,
              verdictChanges: changes,
              policyHash: Object.values(rec.verdicts)[0]?.policyHash ?? null,
            }
          : input.audit,
        nowIso,
      );
      return { outcome: 'applied' as const, image: rec, previous, effects };
    });
  }

  /** Adds an audit entry to an image (creating its record if needed) without changing its verdict inputs. */
  async recordAudit(
    id: string,
    meta: EventMeta,
    entry: Record<string, unknown>,
    now: Date,
  ): Promise<ApplyOutcome> {
    const parsed = parseImageDocId(id);
    const result = await this.transactImage<never>({
      meta,
      now,
      id,
      init: () =>
        emptyRecord(id, parsed.registry, parsed.repository, parsed.digest, now.toISOString()),
      mutate: (rec) => rec,
      audit: entry,
    });
    return result.outcome;
  }

  /** Marks an event's side effects as published. */
  async effectsDone(meta: EventMeta): Promise<void> {
    await this.markerRef(meta).set({ effectsDone: true }, { merge: true });
    this.ops.writes += 1;
  }

  /** Applies a push or delete of one manifest; a tag-only push must be resolved to a digest first. */
  async applyRegistryEvent<E = never>(
    ev: LedgerRegistryEvent & { digest: string },
    meta: EventMeta,
    now: Date,
    options: {
      enrichment?: Enrichment | undefined;
      evaluate?: ((rec: ImageRecord) => Record<string, Verdict> | null) | undefined;
      effects?: ((previous: ImageRecord | null, next: ImageRecord) => E[]) | undefined;
    } = {},
  ): Promise<ImageTransaction<E>> {
    const nowIso = now.toISOString();
    const id = imageId(ev.registry, ev.repository, ev.digest);
    return this.transactImage<E>({
      meta,
      now,
      id,
      init: () => emptyRecord(id, ev.registry, ev.repository, ev.digest, nowIso),
      mutate: (rec, _prev, tx) => {
        let next: ImageRecord;
        if (ev.action === 'push') {
          next = {
            ...rec,
            tags: ev.tag && !rec.tags.includes(ev.tag) ? [...rec.tags, ev.tag].sort() : rec.tags,
            pushedAt: maxIso(rec.pushedAt, meta.at),
          };
          if (options.enrichment) next = applyEnrichment(next, options.enrichment);
        } else {
          next = { ...rec, deletedAt: maxIso(rec.deletedAt, meta.at) };
        }
        if (ev.tag) {
          // The tag index is written without reading it: a map of digest → time, resolved at read.
          const field = ev.action === 'push' ? 'pushes' : 'deletes';
          this.mergeTagIndex(tx, { ...ev, tag: ev.tag }, { [field]: { [ev.digest]: meta.at } });
        }
        return next;
      },
      evaluate: options.evaluate,
      effects: options.effects,
      audit: { kind: `registry-${ev.action}`, tag: ev.tag, digest: ev.digest },
    });
  }

  /** Records a tag deletion that names no digest: the tag stops resolving from this time on. */
  async applyTagDelete(
    ev: LedgerRegistryEvent & { tag: string },
    meta: EventMeta,
    now: Date,
  ): Promise<ApplyOutcome> {
    const nowIso = now.toISOString();
    return this.transaction(async (tx) => {
      const [marker] = await this.txGet(tx, this.markerRef(meta));
      if (marker?.exists) return 'duplicate' as const;
      this.mergeTagIndex(tx, ev, { tagDeletes: { [safeDocId(meta.messageId)]: meta.at } });
      this.txSet(tx, this.markerRef(meta), this.marker(meta, nowIso));
      return 'applied' as const;
    });
  }

  /** Links the children of an index to it (each child its own record, parents merged). */
  async linkChildren(
    parent: { registry: string; repository: string; digest: string },
    children: { platform: Platform; enrichment: Enrichment | null }[],
    at: string,
    now: Date,
  ): Promise<void> {
    const nowIso = now.toISOString();
    // Each child is its own image (scanners report on the platform manifests), pushed with its index.
    for (const { platform, enrichment } of children) {
      const id = imageId(parent.registry, parent.repository, platform.digest);
      await this.transaction(async (tx) => {
        const [snap] = await this.txGet(tx, this.imageRef(id));
        const prev = snap?.exists
          ? ImageRecord.parse(snap.data())
          : emptyRecord(id, parent.registry, parent.repository, platform.digest, nowIso);
        let next: ImageRecord = {
          ...prev,
          parents: [...new Set([...prev.parents, parent.digest])].sort(),
          pushedAt: maxIso(prev.pushedAt, at),
        };
        if (enrichment) next = applyEnrichment(next, enrichment);
        if (snap?.exists && JSON.stringify(next) === JSON.stringify(prev)) return;
        this.txSet(tx, this.imageRef(id), this.finish(next, nowIso));
      });
    }
  }

  /**
   * Stores a scan in one transaction: the image's summary and verdicts, its audit entry and marker,
   * and the source's findings where they changed. Findings live in chunk documents per source
   * (finding-chunks.ts), read in the transaction and rewritten only where a finding was added,
   * changed or removed: a rescan that finds the same writes 3 documents, k changed findings at most
   * k more. `evaluate` and `effects` see every current finding of the image (all sources).
   */
  async applyScan<E = never>(
    scan: ScanResult,
    meta: EventMeta,
    now: Date,
    options: {
      evaluate?:
        | ((rec: ImageRecord, findings: Finding[]) => Record<string, Verdict> | null)
        | undefined;
      effects?:
        | ((previous: ImageRecord | null, next: ImageRecord, findings: Finding[]) => E[])
        | undefined;
    } = {},
  ): Promise<ImageTransaction<E> & { changedFindings: number }> {
    const nowIso = now.toISOString();
    const id = imageId(scan.registry, scan.repository, scan.digest);
    const ref = this.imageRef(id);
    let stored: FindingChunk[] = [];
    let plan: ChunkPlan = { write: [], remove: [], changedFindings: 0 };
    let all: Finding[] = [];
    const result = await this.transactImage<E>({
      meta,
      now,
      id,
      init: () => emptyRecord(id, scan.registry, scan.repository, scan.digest, nowIso),
      read: async (tx) => {
        stored = await readChunks(tx, ref, this.counter(tx));
      },
      mutate: (rec, _previous, tx) => {
        const known = rec.scanRefs[scan.source];
        if (known && known > scan.scanRef) return 'stale';
        const others = stored.filter((c) => c.source !== scan.source);
        // A finished scan's findings replace the source's; a failed one leaves the source with
        // none (as its scan reference no longer names the old ones); a scan in progress changes nothing.
        const mine =
          scan.status === 'scanning'
            ? findingsOfChunks(stored, [scan.source])
            : scan.status === 'finished'
              ? scan.findings
              : [];
        plan =
          scan.status === 'scanning'
            ? { write: [], remove: [], changedFindings: 0 }
            : planChunks(
                scan.source,
                stored.filter((c) => c.source === scan.source),
                mine,
              );
        stageChunks(tx, ref, scan.source, plan, this.counter(tx));
        all = [...mine, ...findingsOfChunks(others)];
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
        const scanRefs =
          scan.status === 'scanning'
            ? rec.scanRefs
            : { ...rec.scanRefs, [scan.source]: scan.scanRef };
        return { ...rec, scan: summary, scanRefs, provenance: scan.provenance ?? rec.provenance };
      },
      evaluate: options.evaluate && ((rec) => options.evaluate?.(rec, all) ?? null),
      effects:
        options.effects && ((previous, next) => options.effects?.(previous, next, all) ?? []),
      audit: {
        kind: `scan-${scan.status}`,
        scanner: scan.scanner,
        total: scan.findings.length,
        scanRef: scan.scanRef,
      },
    });
    return { ...result, changedFindings: result.outcome === 'applied' ? plan.changedFindings : 0 };
  }

  async getImage(id: string): Promise<ImageRecord | null> {
    const snap = await this.imageRef(id).get();
    this.ops.reads += 1;
    return snap.exists ? ImageRecord.parse(snap.data()) : null;
  }

  /** Findings of the image's current scans (one scan run per source); `sources` limits which. */
  async getFindings(image: Pick<ImageRecord, 'id'>, sources?: string[]): Promise<Finding[]> {
    return getChunkFindings(this.imageRef(image.id), this.ops, sources);
  }

  /** Findings of consecutive images (in id order), with one range query for all of them. */
  async findingsOfRange(ids: readonly string[]): Promise<Map<string, Finding[]>> {
    return chunkFindingsOfRange(this.db, ids, this.ops);
  }

  /** The images with a finding of this vulnerability (id or alias), across the fleet, in id order. */
  async imagesWithVulnerability(
    vulnerability: string,
    options: { limit?: number; after?: string } = {},
  ): Promise<string[]> {
    return imagesWithVulnerability(this.db, vulnerability, this.ops, options);
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
    // Without a message id two different rejects can carry the same raw text (a request that is
    // no CloudEvent reaches the handler as an empty event): each keeps its own record.
    const id = safeDocId(
      `${dl.source}:${dl.messageId ?? `unidentified-${hashId(dl.raw).slice(0, 16)}-${randomUUID()}`}`,
    );
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
