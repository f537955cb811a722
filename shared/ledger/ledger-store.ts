// The Firestore image ledger: idempotent, order-independent application of registry and scan events.
import { createHash, randomUUID } from 'node:crypto';
import type {
  DocumentReference,
  DocumentSnapshot,
  Firestore,
  Transaction,
} from '@google-cloud/firestore';
import { countFindings, type Finding } from '../findings/finding.js';
import {
  type EnrichmentState,
  ImageRecord,
  type PlatformChild,
  type Provenance,
  type ScannerRun,
  type ScanSummary,
} from '../image-record.js';
import { imageDocId as imageId, parseImageDocId } from '../image-ref/image-ref.js';
import { utf8OrNull } from '../json-bytes.js';
import type { Verdict } from '../verdict.js';
import { COLLECTIONS, externalDocId } from './collections.js';
import { applyEnrichment, type Enrichment, maxIso } from './enrichment.js';
import { ENRICHMENT_BACKOFF_CAP_MS, nextEnrichmentAttempt } from './enrichment-schedule.js';
import { type ChunkPlan, chunkDocId, type FindingChunk, planChunks } from './finding-chunks.js';
import {
  chunkFindingsOfRange,
  findingsOfChunks,
  getChunkFindings,
  imagesWithVulnerability,
  readChunks,
  stageChunks,
} from './findings-store.js';
import { fleetRowRef, indexImageWrite } from './fleet-index.js';
import type {
  AuditEntry,
  BaseDependent,
  DeadLetter,
  EventMeta,
  ImageLedger,
  LedgerWrites,
  Mutation,
  PendingEffects,
  TransactOptions,
  TransactResult,
} from './image-ledger.js';
import { finishRecord } from './state.js';
import { resolveTagDoc, type TagDoc, tagDocId } from './tag-index.js';

export { applyEnrichment, type Enrichment } from './enrichment.js';
export type { DeadLetter, EventMeta } from './image-ledger.js';
export { resolveTagDoc, type TagDoc, tagDocId } from './tag-index.js';

/** A registry event, normalised from gcr, distribution, Harbor or GitHub. */
export interface LedgerRegistryEvent {
  action: 'push' | 'delete';
  registry: string;
  repository: string;
  digest: string | null;
  tag: string | null;
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
  /** Transaction attempts started: more than `transactions` when contention made the client retry. */
  attempts = 0;
  /** Batched writes committed (findings, stale-finding deletes). */
  batches = 0;
  reset(): void {
    this.reads = 0;
    this.writes = 0;
    this.auditWrites = 0;
    this.transactions = 0;
    this.attempts = 0;
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
  /** The vulnerability database the scanner used, when it says. */
  database?: string | null;
  /** Who uploaded it (a CI caller); absent for Artifact Analysis. */
  uploader?: string | null;
}

/** The scanner a finding source's runs count as under `requireScan`. */
export const SCANNER_OF_SOURCE = {
  'container-analysis': 'artifact-analysis',
  trivy: 'trivy',
  grype: 'grype',
} as const satisfies Record<Finding['source'], string>;

const MAX_RAW = 256 * 1024;

/** The stored form of raw input: text when the bytes are valid UTF-8, else base64 (never U+FFFD). */
export function encodeRaw(raw: Buffer | string): { raw: string; rawEncoding: 'utf8' | 'base64' } {
  if (typeof raw === 'string') return { raw, rawEncoding: 'utf8' };
  const text = utf8OrNull(raw);
  return text === null
    ? { raw: raw.toString('base64'), rawEncoding: 'base64' }
    : { raw: text, rawEncoding: 'utf8' };
}
const NO_CHANGE: ChunkPlan = { write: [], remove: [], changedFindings: 0 };
/** FieldPath.documentId() by name: this module loads no Firestore code until a client is passed in. */
const DOCUMENT_ID = '__name__';

function hashId(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 40);
}

/** A record for an image the ledger has not seen yet (events may arrive before its push). */
export function emptyImageRecord(
  id: string,
  name: { registry: string; repository: string; digest: string },
  now: Date,
): ImageRecord {
  const { registry, repository, digest } = name;
  return ImageRecord.parse({
    id,
    registry,
    repository,
    digest,
    state: 'pushed',
    // A new image has no finding chunks: they are written only with their image.
    findingChunks: [],
    updatedAt: now.toISOString(),
  });
}

/** How often a transaction that a contending one closed is started again before the error is passed on. */
const CLOSED_TRANSACTION_RETRIES = 5;
/**
 * Rounds of the client's own ABORTED retries (5 attempts each): a hot image under a burst of events
 * can lose 5 lock races in a row, and a ledger write given up here costs a whole redelivery.
 */
const ABORTED_ROUNDS = 3;
const ABORTED = 10;

/**
 * A transaction wounded by a contending one fails its next read with INVALID_ARGUMENT ("Transaction
 * is invalid or closed", the emulator) instead of ABORTED, which the client would retry itself.
 * Only that case is retried; any other INVALID_ARGUMENT is final.
 */
function isClosedTransaction(err: unknown): boolean {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (e?.code !== 3) return false;
  const text = `${typeof e.details === 'string' ? e.details : ''} ${typeof e.message === 'string' ? e.message : ''}`;
  return /transaction (is invalid or closed|has expired)/i.test(text);
}

/** The composite indexes of the enrich sweep's queries (imagesDueForEnrichment), as firestore.indexes.json declares them. */
export const ENRICHMENT_SWEEP_INDEXES = [
  {
    collectionGroup: COLLECTIONS.images,
    fields: ['enrichment.status', 'enrichment.nextAttemptAt'],
  },
  {
    collectionGroup: COLLECTIONS.images,
    fields: ['enrichment.status', 'enrichment.lastAttemptAt'],
  },
] as const;

export class FirestoreLedger implements ImageLedger {
  readonly ops = new OpCounter();

  constructor(
    private readonly db: Firestore,
    private readonly options: { eventTtlDays: number } = { eventTtlDays: 7 },
  ) {}

  private images() {
    return this.db.collection(COLLECTIONS.images);
  }

  private imageRef(id: string): DocumentReference {
    return this.images().doc(id);
  }

  private markerRef(meta: Pick<EventMeta, 'source' | 'messageId'>): DocumentReference {
    return this.db.collection(COLLECTIONS.events).doc(eventDocId(meta));
  }

  /** Counts of the running attempt of each transaction: a retried attempt's reads and writes are not billed as written. */
  private readonly attempts = new WeakMap<Transaction, Attempt>();

  private async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    let last: Attempt | undefined;
    const run = () =>
      this.db.runTransaction(async (tx) => {
        last = { reads: 0, writes: 0, auditWrites: 0 };
        this.ops.attempts += 1;
        this.attempts.set(tx, last);
        return fn(tx);
      });
    let out: T;
    let aborted = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        out = await run();
        break;
      } catch (err) {
        if ((err as { code?: unknown })?.code === ABORTED) {
          aborted += 1;
          if (aborted >= ABORTED_ROUNDS) throw err;
          await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
          continue;
        }
        if (attempt >= CLOSED_TRANSACTION_RETRIES || !isClosedTransaction(err)) throw err;
        await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 30));
      }
    }
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

  /** An event marker; it expires after the configured event TTL (Firestore TTL on `expireAt`). */
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
    entry: AuditEntry,
    now: string,
    auditId?: string,
  ): void {
    // The audit entry's id is the event's, so a redelivery can never add a second one.
    const ref = this.imageRef(id)
      .collection(COLLECTIONS.audit)
      .doc(externalDocId(auditId ?? `${meta.source}:${meta.messageId}`));
    this.counter(tx).auditWrites += 1;
    this.txSet(tx, ref, {
      ...entry,
      source: meta.source,
      messageId: meta.messageId,
      at: meta.at,
      ...(meta.claimedAt ? { claimedAt: meta.claimedAt, clamped: meta.clamped === true } : {}),
      recordedAt: now,
    });
  }

  /**
   * The one write of an image document. The fleet index (fleet-index.ts) is a projection of it:
   * its row and counter delta go in the same transaction, from the row read in that transaction.
   */
  private writeImage(
    tx: Transaction,
    w: {
      previous: ImageRecord | null;
      next: ImageRecord;
      fleetRow: DocumentSnapshot | null | undefined;
      scan?: { source: string; findings: readonly Finding[] } | undefined;
    },
  ): void {
    this.txSet(tx, this.imageRef(w.next.id), w.next);
    this.counter(tx).writes += indexImageWrite(tx, {
      db: this.db,
      previous: w.previous,
      next: w.next,
      previousRow: w.fleetRow,
      scan: w.scan,
    });
  }

  private writes(tx: Transaction, id: string): LedgerWrites {
    return {
      mergeTagIndex: (tag, fields) =>
        this.txSet(
          tx,
          this.db.collection(COLLECTIONS.tags).doc(tagDocId(tag.registry, tag.repository, tag.tag)),
          { registry: tag.registry, repository: tag.repository, tag: tag.tag, ...fields },
          true,
        ),
      deleteAttestationClaim: (claimId) => {
        this.counter(tx).writes += 1;
        tx.delete(this.imageRef(id).collection(COLLECTIONS.attestationClaims).doc(claimId));
      },
    };
  }

  /**
   * The one read-modify-write path for an image document: marker and image read, the image (next
   * version, derived state), marker and audit entry written in one transaction. Side effects
   * computed here are kept on the marker until `settle`, so a crash before publishing them is
   * repaired by redelivery.
   */
  async transact<E = never, S extends string = never>(
    id: string,
    meta: EventMeta,
    mutate: (current: ImageRecord | null, writes: LedgerWrites) => Mutation<E, S>,
    options: TransactOptions,
  ): Promise<TransactResult<E, S>> {
    return this.run(id, meta, mutate, options);
  }

  /** `transact`, with `read` reading more inside the transaction once the event is known to be new. */
  private async run<E, S extends string>(
    id: string,
    meta: EventMeta,
    mutate: (current: ImageRecord | null, writes: LedgerWrites) => Mutation<E, S>,
    options: TransactOptions,
    read?: (tx: Transaction, previous: ImageRecord | null) => Promise<void>,
  ): Promise<TransactResult<E, S>> {
    const nowIso = options.now.toISOString();
    const dedupe = options.dedupe ?? true;
    return this.transaction(async (tx) => {
      let snap: DocumentSnapshot | undefined;
      if (dedupe) {
        const [marker, image] = await this.txGet(tx, this.markerRef(meta), this.imageRef(id));
        if (marker?.exists) {
          const pending =
            marker.get('effectsDone') === false
              ? ((marker.get('effects') as E[] | undefined) ?? [])
              : [];
          return { outcome: 'duplicate' as const, image: null, previous: null, effects: pending };
        }
        snap = image;
      } else {
        [snap] = await this.txGet(tx, this.imageRef(id));
      }
      // The fleet row is written only with its image: a new image has none, so a first push reads two documents.
      const fleetRow = snap?.exists
        ? ((await this.txGet(tx, fleetRowRef(this.db, id)))[0] ?? null)
        : null;
      const previous = snap?.exists ? ImageRecord.parse({ id, ...snap.data() }) : null;
      await read?.(tx, previous);
      const change = mutate(previous, this.writes(tx, id));
      if ('skip' in change) {
        if (change.marker) {
          this.txSet(
            tx,
            this.markerRef(meta),
            this.marker(meta, nowIso, { imageId: id, [change.skip]: true }),
          );
        }
        return { outcome: change.skip, image: previous, previous, effects: [] };
      }
      const rec = change.keepState
        ? { ...change.record, version: change.record.version + 1, updatedAt: nowIso }
        : finishRecord(change.record, nowIso);
      this.writeImage(tx, { previous, next: rec, fleetRow, scan: change.scanFindings });
      // Stored as JSON: effects may carry undefined fields, which Firestore refuses.
      const effects: E[] = JSON.parse(JSON.stringify(change.effects?.(previous, rec) ?? []));
      if (dedupe || effects.length > 0) {
        this.txSet(
          tx,
          this.markerRef(meta),
          this.marker(
            meta,
            nowIso,
            effects.length > 0 ? { imageId: id, effects, effectsDone: false } : { imageId: id },
          ),
        );
      }
      // One audit entry per event; a verdict change it caused is part of that entry.
      const changes = verdictChanges(previous, rec);
      this.audit(
        tx,
        id,
        meta,
        changes.length > 0
          ? {
              ...change.audit,
              verdictChanges: changes,
              policyHash: Object.values(rec.verdicts)[0]?.policyHash ?? null,
            }
          : change.audit,
        nowIso,
        change.auditId,
      );
      return { outcome: 'applied' as const, image: rec, previous, effects };
    });
  }

  async settle<E>(
    meta: EventMeta,
    effects: readonly E[],
    publish: (e: readonly E[]) => Promise<void>,
  ): Promise<void> {
    if (effects.length === 0) return;
    await publish(effects);
    await this.markerRef(meta).set({ effectsDone: true }, { merge: true });
    this.ops.writes += 1;
  }

  async pendingEffects<E>(
    which: { metas: readonly EventMeta[] } | { source: string; limit: number },
  ): Promise<PendingEffects<E>[]> {
    let snaps: DocumentSnapshot[];
    if ('metas' in which) {
      if (which.metas.length === 0) return [];
      snaps = await this.db.getAll(...which.metas.map((m) => this.markerRef(m)));
      this.ops.reads += which.metas.length;
    } else {
      const q = await this.db
        .collection(COLLECTIONS.events)
        .where('source', '==', which.source)
        .where('effectsDone', '==', false)
        .limit(which.limit)
        .get();
      this.ops.reads += Math.max(1, q.size);
      snaps = q.docs;
    }
    const out: PendingEffects<E>[] = [];
    for (const s of snaps) {
      if (!s.exists) continue;
      out.push({
        done: s.get('effectsDone') !== false,
        meta: {
          source: String(s.get('source')),
          messageId: String(s.get('messageId')),
          at: String(s.get('at')),
        },
        effects: (s.get('effects') as E[] | undefined) ?? [],
      });
    }
    return out;
  }

  /** Adds an audit entry to an image (creating its record if needed) without changing its verdict inputs. */
  async recordAudit(
    id: string,
    meta: EventMeta,
    entry: AuditEntry,
    now: Date,
    options: { auditId?: string; onlyIfExists?: boolean } = {},
  ): Promise<'applied' | 'duplicate' | 'stale' | 'missing'> {
    if (options.onlyIfExists) {
      // An annotation of a known image (break-glass): the entry alone, the record untouched.
      const ref = this.imageRef(id)
        .collection(COLLECTIONS.audit)
        .doc(externalDocId(options.auditId ?? `${meta.source}:${meta.messageId}`));
      await ref.set({
        ...entry,
        source: meta.source,
        messageId: meta.messageId,
        at: meta.at,
        recordedAt: now.toISOString(),
      });
      this.ops.writes += 1;
      this.ops.auditWrites += 1;
      return 'applied';
    }
    const parsed = parseImageDocId(id);
    const result = await this.transact<never>(
      id,
      meta,
      (current) => ({
        record: current ?? emptyImageRecord(id, parsed, now),
        audit: entry,
        ...(options.auditId ? { auditId: options.auditId } : {}),
      }),
      { now },
    );
    return result.outcome;
  }

  /** Applies a push or delete of one manifest; a tag-only push must be resolved to a digest first. */
  async applyRegistryEvent<E = never>(
    ev: LedgerRegistryEvent & { digest: string },
    meta: EventMeta,
    now: Date,
    options: {
      enrichment?: Enrichment | undefined;
      /** The registry is still to be read: the push marks the record `needed` (unless already read). */
      enrichmentNeeded?: boolean | undefined;
      evaluate?: ((rec: ImageRecord) => Record<string, Verdict> | null) | undefined;
      effects?: ((previous: ImageRecord | null, next: ImageRecord) => E[]) | undefined;
    } = {},
  ): Promise<ImageTransaction<E>> {
    const id = imageId(ev.registry, ev.repository, ev.digest);
    return this.transact<E>(
      id,
      meta,
      (current, writes) => {
        const rec = current ?? emptyImageRecord(id, ev, now);
        let next: ImageRecord;
        if (ev.action === 'push') {
          next = {
            ...rec,
            tags: ev.tag && !rec.tags.includes(ev.tag) ? [...rec.tags, ev.tag].sort() : rec.tags,
            pushedAt: maxIso(rec.pushedAt, meta.at),
          };
          if (options.enrichment) next = applyEnrichment(next, options.enrichment);
          // Read once per digest: done and failed (the registry answered for good) are kept.
          if (options.enrichmentNeeded && !next.enrichment) {
            next = {
              ...next,
              enrichment: {
                status: 'needed',
                reason: null,
                attempts: 0,
                lastAttemptAt: null,
                // The push reads it itself; the sweep steps in only if that read never ran.
                nextAttemptAt: nextEnrichmentAttempt(0, id, now),
                reopened: 0,
              },
            };
          }
        } else {
          next = { ...rec, deletedAt: maxIso(rec.deletedAt, meta.at) };
        }
        if (ev.tag) {
          // The tag index is written without reading it: a map of digest → time, resolved at read.
          const field = ev.action === 'push' ? 'pushes' : 'deletes';
          writes.mergeTagIndex({ ...ev, tag: ev.tag }, { [field]: { [ev.digest]: meta.at } });
        }
        return {
          record: withVerdicts(next, options.evaluate),
          audit: { kind: `registry-${ev.action}`, tag: ev.tag, digest: ev.digest },
          effects: options.effects,
        };
      },
      { now },
    );
  }

  /**
   * Records what reading the registry for a pushed image gave: its facts (`done`), a final failure
   * (`failed`), or a transient one (`retry`, still needed). Idempotent from the record: an image
   * already read, or already failed for good, is left alone (`unchanged`).
   */
  async recordEnrichment<E = never>(
    ref: { registry: string; repository: string; digest: string },
    outcome:
      | { kind: 'done'; enrichment: Enrichment }
      | { kind: 'failed'; reason: string }
      | { kind: 'retry'; reason: string },
    now: Date,
    options: {
      evaluate?: ((rec: ImageRecord) => Record<string, Verdict> | null) | undefined;
      effects?: ((previous: ImageRecord | null, next: ImageRecord) => E[]) | undefined;
    } = {},
  ): Promise<TransactResult<E, 'unchanged'> & { meta: EventMeta }> {
    const id = imageId(ref.registry, ref.repository, ref.digest);
    const nowIso = now.toISOString();
    // The marker (held only while effects are unpublished) is per outcome; the audit entry per attempt.
    const meta: EventMeta = {
      source: 'enrichment',
      messageId: `${id}:${outcome.kind}`,
      at: nowIso,
    };
    const result = await this.transact<E, 'unchanged'>(
      id,
      meta,
      (current) => {
        const state = current?.enrichment;
        if (!current || !state || state.status !== 'needed') return { skip: 'unchanged' };
        const attempts = state.attempts + 1;
        const enrichment: EnrichmentState = {
          status: outcome.kind === 'retry' ? ('needed' as const) : outcome.kind,
          reason: outcome.kind === 'done' ? null : outcome.reason,
          attempts,
          lastAttemptAt: nowIso,
          // Backoff for the sweep only: a push's own redelivery reads again whenever it comes.
          nextAttemptAt: outcome.kind === 'retry' ? nextEnrichmentAttempt(attempts, id, now) : null,
          reopened: state.reopened,
        };
        const base =
          outcome.kind === 'done' ? applyEnrichment(current, outcome.enrichment) : current;
        const next = { ...base, enrichment };
        return {
          // A transient failure changes no verdict input: the verdict stays what it was (pending).
          record: outcome.kind === 'retry' ? next : withVerdicts(next, options.evaluate),
          audit:
            outcome.kind === 'done'
              ? { kind: 'registry-read', digest: ref.digest, attempts }
              : outcome.kind === 'failed'
                ? {
                    kind: 'registry-unreadable',
                    digest: ref.digest,
                    reason: outcome.reason,
                    attempts,
                  }
                : {
                    kind: 'registry-read-failed',
                    digest: ref.digest,
                    reason: outcome.reason,
                    attempts,
                  },
          // Attempts restart when an operator reopens the read: the round keeps earlier entries.
          auditId:
            state.reopened > 0
              ? `enrichment:r${state.reopened}:${outcome.kind}:${attempts}`
              : `enrichment:${outcome.kind}:${attempts}`,
          ...(outcome.kind === 'retry' ? {} : { effects: options.effects }),
        };
      },
      { now, dedupe: false },
    );
    return { ...result, meta };
  }

  /**
   * Images waiting for their registry read whose backoff has run out at `now`, up to `limit`, the
   * longest-due first, so a long outage starves none. Records written before `nextAttemptAt`
   * existed have no such field (a range query cannot see them): they are due, and come first.
   * Indexes: (enrichment.status, enrichment.nextAttemptAt) and (enrichment.status,
   * enrichment.lastAttemptAt), declared in firestore.indexes.json (ENRICHMENT_SWEEP_INDEXES).
   */
  async imagesDueForEnrichment(now: Date, limit: number): Promise<ImageRecord[]> {
    const needed = this.images().where('enrichment.status', '==', 'needed');
    // A record without the field was last written before it existed, so last attempted over a
    // backoff cap ago (or never): any record written since with so old an attempt is due anyway.
    const cutoff = new Date(now.getTime() - ENRICHMENT_BACKOFF_CAP_MS).toISOString();
    const older = await needed.orderBy('enrichment.lastAttemptAt').endAt(cutoff).limit(limit).get();
    this.ops.reads += Math.max(1, older.size);
    const docs = older.docs.filter((d) => d.get('enrichment.nextAttemptAt') === undefined);
    if (docs.length < limit) {
      // Nulls order before every time: an explicit null is due too.
      const due = await needed
        .orderBy('enrichment.nextAttemptAt')
        .endAt(now.toISOString())
        .limit(limit - docs.length)
        .get();
      this.ops.reads += Math.max(1, due.size);
      docs.push(...due.docs);
    }
    return docs.map((d) => ImageRecord.parse(d.data()));
  }

  /**
   * Sets an image's registry read back to `needed`, due now, attempts restarted: an operator's
   * retry after fixing what made it `failed` (a registry permission). Only a `failed` read unless
   * `force` (any read: a wait cut short, a `done` read taken again). Transactional, with an audit
   * entry naming who asked; a repeated request (same `requestId`) is a duplicate, and a read that
   * is already waiting and due is left `unchanged`. The verdict is kept (a failed read still
   * denies) until the read writes a new one.
   */
  async reopenEnrichment(
    id: string,
    request: { by: string; requestId: string; reason?: string | null; force?: boolean },
    now: Date,
  ): Promise<
    TransactResult<never, 'missing' | 'not-failed' | 'unchanged'> & {
      enrichment: EnrichmentState | null;
    }
  > {
    const nowIso = now.toISOString();
    let seen: EnrichmentState | null = null;
    const result = await this.transact<never, 'missing' | 'not-failed' | 'unchanged'>(
      id,
      { source: 'operator', messageId: `re-enrich:${request.requestId}`, at: nowIso },
      (current) => {
        seen = current?.enrichment ?? null;
        if (!current) return { skip: 'missing' };
        const state = current.enrichment;
        if (state?.status !== 'failed' && !request.force) return { skip: 'not-failed' };
        if (
          state?.status === 'needed' &&
          state.attempts === 0 &&
          (state.nextAttemptAt === null || state.nextAttemptAt <= nowIso)
        )
          return { skip: 'unchanged' };
        const enrichment: EnrichmentState = {
          status: 'needed',
          reason: null,
          attempts: 0,
          lastAttemptAt: state?.lastAttemptAt ?? null,
          nextAttemptAt: nowIso,
          reopened: (state?.reopened ?? 0) + 1,
        };
        return {
          record: { ...current, enrichment },
          audit: {
            kind: 'enrichment-reopened',
            by: request.by,
            reason: request.reason ?? null,
            force: request.force === true,
            previous: state
              ? { status: state.status, reason: state.reason, attempts: state.attempts }
              : null,
          },
        };
      },
      { now },
    );
    return { ...result, enrichment: seen };
  }

  /** Records a tag deletion that names no digest: the tag stops resolving from this time on. */
  async applyTagDelete(
    ev: LedgerRegistryEvent & { tag: string },
    meta: EventMeta,
    now: Date,
  ): Promise<ApplyOutcome> {
    const nowIso = now.toISOString();
    // No image document changes: only the tag index and the event's marker.
    return this.transaction(async (tx) => {
      const [marker] = await this.txGet(tx, this.markerRef(meta));
      if (marker?.exists) return 'duplicate' as const;
      this.writes(tx, '').mergeTagIndex(ev, {
        tagDeletes: { [externalDocId(meta.messageId)]: meta.at },
      });
      this.txSet(tx, this.markerRef(meta), this.marker(meta, nowIso));
      return 'applied' as const;
    });
  }

  /** Links the children of an index to it (each child its own record, parents merged). */
  async linkChildren(
    parent: { registry: string; repository: string; digest: string },
    children: { platform: PlatformChild; enrichment: Enrichment | null }[],
    meta: EventMeta,
    now: Date,
  ): Promise<void> {
    const nowIso = now.toISOString();
    // Each child is its own image (scanners report on the platform manifests), pushed with its index.
    for (const { platform, enrichment } of children) {
      const id = imageId(parent.registry, parent.repository, platform.digest);
      await this.transaction(async (tx) => {
        const [snap, fleetRow] = await this.txGet(tx, this.imageRef(id), fleetRowRef(this.db, id));
        const prev = snap?.exists
          ? ImageRecord.parse(snap.data())
          : emptyImageRecord(id, { ...parent, digest: platform.digest }, now);
        let next: ImageRecord = {
          ...prev,
          parents: [...new Set([...prev.parents, parent.digest])].sort(),
          pushedAt: maxIso(prev.pushedAt, meta.at),
        };
        if (enrichment) next = applyEnrichment(next, enrichment);
        if (snap?.exists && JSON.stringify(next) === JSON.stringify(prev)) return;
        // The index's event carries the audit entry; a child's link is bookkeeping of that event.
        this.writeImage(tx, {
          previous: snap?.exists ? prev : null,
          next: finishRecord(next, nowIso),
          fleetRow,
        });
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
    const id = imageId(scan.registry, scan.repository, scan.digest);
    const ref = this.imageRef(id);
    let tx: Transaction | undefined;
    let stored: FindingChunk[] = [];
    let plan: ChunkPlan = NO_CHANGE;
    const result = await this.run<E, 'stale'>(
      id,
      meta,
      (current) => {
        const rec = current ?? emptyImageRecord(id, scan, now);
        const known = rec.scanRefs[scan.source];
        if (known && known > scan.scanRef) return { skip: 'stale', marker: true };
        // A finished scan's findings replace the source's; a failed one leaves the source with
        // none (its scan reference no longer names the old ones); a scan in progress changes nothing.
        const mine =
          scan.status === 'scanning'
            ? findingsOfChunks(stored, [scan.source])
            : scan.status === 'finished'
              ? scan.findings
              : [];
        plan =
          scan.status === 'scanning'
            ? NO_CHANGE
            : planChunks(
                scan.source,
                stored.filter((c) => c.source === scan.source),
                mine,
              );
        if (tx) stageChunks(tx, ref, scan.source, plan, this.counter(tx));
        const chunkIds = new Set(stored.map((c) => chunkDocId(c.source, c.n)));
        for (const c of plan.write) chunkIds.add(chunkDocId(c.source, c.n));
        for (const n of plan.remove) chunkIds.delete(chunkDocId(scan.source, n));
        const all = [...mine, ...findingsOfChunks(stored.filter((c) => c.source !== scan.source))];
        const evaluate = options.evaluate;
        const effects = options.effects;
        return {
          record: withVerdicts(
            { ...applyScanSummary(rec, scan), findingChunks: [...chunkIds].sort() },
            evaluate && ((r) => evaluate(r, all)),
          ),
          audit: {
            kind: `scan-${scan.status}`,
            scanner: scan.scanner,
            total: scan.findings.length,
            scanRef: scan.scanRef,
          },
          effects: effects && ((previous, next) => effects(previous, next, all)),
          // The fleet row's vulnerabilities follow the source's findings as the chunk plan stores them.
          scanFindings:
            scan.status === 'scanning' ? undefined : { source: scan.source, findings: mine },
        };
      },
      { now },
      async (t, previous) => {
        tx = t;
        stored = await readChunks(t, ref, previous ? previous.findingChunks : [], this.counter(t));
      },
    );
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

  /** The current findings of consecutive images (in id order), with one range query for all of them. */
  async findingsOfRange(
    images: readonly Pick<ImageRecord, 'id'>[],
  ): Promise<Map<string, Finding[]>> {
    return chunkFindingsOfRange(
      this.db,
      images.map((i) => i.id),
      this.ops,
    );
  }

  async imagesWithVulnerability(
    vulnerability: string,
    options: { limit?: number; after?: string } = {},
  ): Promise<string[]> {
    return imagesWithVulnerability(this.db, vulnerability, this.ops, options);
  }

  /** One page of image records in id order, after `cursor`. */
  async listImages(cursor: string | null, limit: number): Promise<ImageRecord[]> {
    let q = this.images().orderBy(DOCUMENT_ID).limit(limit);
    if (cursor) q = q.startAfter(cursor);
    const snap = await q.get();
    this.ops.reads += Math.max(1, snap.size);
    return snap.docs.map((d) => ImageRecord.parse(d.data()));
  }

  /** How many images the ledger holds (an aggregation query); null when it cannot be counted. */
  async countImages(): Promise<number | null> {
    try {
      return (await this.images().count().get()).data().count;
    } catch {
      return null;
    }
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

  async imagesOnBase(
    base: { name: string; digest: string; digests: readonly string[] },
    options: { unclassifiedOnly: boolean },
  ): Promise<BaseDependent[]> {
    const images = this.images();
    const out: BaseDependent[] = [];
    // Composite indexes (base.name, base.digest) and (base.name, base.status, base.digest): firestore.indexes.json.
    const byName = options.unclassifiedOnly
      ? [images.where('base.name', '==', base.name).where('base.status', '==', 'unknown')]
      : [
          images.where('base.name', '==', base.name).where('base.digest', '!=', base.digest),
          images.where('base.name', '==', base.name).where('base.digest', '==', base.digest),
        ];
    for (const q of byName) {
      const snap = await q.get();
      this.ops.reads += Math.max(1, snap.size);
      out.push(...snap.docs);
    }
    // Digest-only bases: the image says which digest it was built on, not which tag.
    for (let i = 0; i < base.digests.length; i += 30) {
      let q = images
        .where('base.name', '==', null)
        .where('base.digest', 'in', base.digests.slice(i, i + 30));
      if (options.unclassifiedOnly) q = q.where('base.status', '==', 'unknown');
      const snap = await q.get();
      this.ops.reads += Math.max(1, snap.size);
      out.push(...snap.docs);
    }
    return out;
  }

  async recordDeadLetter(dl: DeadLetter, now: Date): Promise<string> {
    const bytes = typeof dl.raw === 'string' ? Buffer.from(dl.raw, 'utf8') : dl.raw;
    const stored = encodeRaw(dl.raw);
    const truncated = stored.raw.length > MAX_RAW;
    // Without a message id two different rejects can carry the same raw text (a request that is
    // no CloudEvent reaches the handler as an empty event): each keeps its own record.
    const id = externalDocId(
      `${dl.source}:${dl.messageId ?? `unidentified-${hashId(bytes.toString('base64')).slice(0, 16)}-${randomUUID()}`}`,
    );
    await this.db
      .collection(COLLECTIONS.deadLetters)
      .doc(id)
      .set({
        source: dl.source,
        reason: dl.reason,
        problems: dl.problems ?? [],
        raw: truncated ? stored.raw.slice(0, MAX_RAW) : stored.raw,
        rawEncoding: stored.rawEncoding,
        rawBytes: bytes.length,
        truncated,
        messageId: dl.messageId ?? null,
        attributes: dl.attributes ?? {},
        receivedAt: now.toISOString(),
      });
    this.ops.writes += 1;
    return id;
  }
}

/** The event marker's document id. */
function eventDocId(meta: Pick<EventMeta, 'source' | 'messageId'>): string {
  return externalDocId(`${meta.source}:${meta.messageId}`);
}

function withVerdicts(
  rec: ImageRecord,
  evaluate: ((rec: ImageRecord) => Record<string, Verdict> | null) | undefined,
): ImageRecord {
  const verdicts = evaluate?.(rec);
  return verdicts ? { ...rec, verdicts } : rec;
}

/** The record with a scan's summary and scan reference applied (pure). */
export function applyScanSummary(rec: ImageRecord, scan: ScanResult): ImageRecord {
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
    scan.status === 'scanning' ? rec.scanRefs : { ...rec.scanRefs, [scan.source]: scan.scanRef };
  // Each scanner's own latest run: requireScan counts only the scanners the policy names.
  const scanner = SCANNER_OF_SOURCE[scan.source];
  const previous = rec.scans[scanner];
  const run: ScannerRun = {
    ...(scan.status === 'scanning'
      ? {
          status: previous?.status === 'finished' ? 'finished' : 'scanning',
          scanner: scan.scanner,
          completedAt: previous?.completedAt ?? null,
          counts: previous?.counts ?? null,
          failureReason: null,
        }
      : summary),
    database: scan.database ?? (scan.status === 'scanning' ? (previous?.database ?? null) : null),
    uploader: scan.uploader ?? null,
  };
  const scans = { ...rec.scans, [scanner]: run };
  return {
    ...rec,
    scan: latestRun(scans) ?? summary,
    scanRefs,
    scans,
    provenance: scan.provenance ?? rec.provenance,
  };
}

/**
 * The image's scan summary: of its scanners' runs, the one that completed last (a run never
 * completed counts as oldest; the scanner's name breaks a tie). Not the run that arrived last:
 * two scanners' results delivered in either order must leave the same record.
 */
function latestRun(scans: Readonly<Record<string, ScannerRun>>): ScanSummary | null {
  let best: [string, ScannerRun] | null = null;
  for (const entry of Object.entries(scans)) {
    const [name, run] = entry;
    if (!best) {
      best = entry;
      continue;
    }
    const a = run.completedAt ?? '';
    const b = best[1].completedAt ?? '';
    if (a > b || (a === b && name > best[0])) best = entry;
  }
  if (!best) return null;
  const { status, scanner, completedAt, counts, failureReason } = best[1];
  return { status, scanner, completedAt, counts, failureReason };
}
