// The port every writer of an image document goes through: one transaction owns version, state, audit entry, event marker and outbox.
import type { Finding } from '../findings/finding.js';
import type { ImageRecord } from '../image-record.js';
import type { FirestoreLedger } from './ledger-store.js';

/** Where an event came from and when it was published; `messageId` makes it idempotent. */
export interface EventMeta {
  source: string;
  messageId: string;
  /** Arrival of the event (Pub/Sub publishTime, request time; RFC 3339): orders pushes against deletes. */
  at: string;
  /** The payload's own timestamp, a claim clamped near the arrival (shared/trust/event-time.ts); kept in the audit. */
  claimedAt?: string | null;
  /** Whether the claim was outside the window and clamped. */
  clamped?: boolean;
}

/** What one event did to an image's audit trail (its kind and details; source and times are added). */
export type AuditEntry = Record<string, unknown>;

/** Writes a mutation may add to the image's transaction, besides the image itself. */
export interface LedgerWrites {
  /** Merges into a tag's index document without reading it (see tag-index.ts). */
  mergeTagIndex(
    tag: { registry: string; repository: string; tag: string },
    fields: Record<string, unknown>,
  ): void;
  /** Drops the image's attestation claim (see attestation-ledger.ts). */
  deleteAttestationClaim(claimId: string): void;
}

/** A change to write: the record as the event leaves it, its audit entry and the effects to publish. */
export interface ImageChange<E> {
  record: ImageRecord;
  audit: AuditEntry;
  /** Audit document id when the event's own id does not identify the change (default `source:messageId`). */
  auditId?: string;
  /** The change touches no input of the state (base status): the stored state is kept as it is. */
  keepState?: boolean;
  /** Effects of moving from `previous` to the written record (version, state and time set). */
  effects?: (previous: ImageRecord | null, next: ImageRecord) => E[];
  /**
   * A finished (or failed: no findings) scan of one source: its vulnerabilities replace that
   * source's in the image's fleet-index row (fleet-index.ts), written in the same transaction.
   */
  scanFindings?: { source: string; findings: readonly Finding[] } | undefined;
}

/** Nothing to write, and why; `marker` records the event as seen so a redelivery is a duplicate. */
export interface ImageSkip<S extends string> {
  skip: S;
  marker?: boolean;
}

export type Mutation<E, S extends string> = ImageChange<E> | ImageSkip<S>;

export interface TransactOptions {
  now: Date;
  /**
   * true (default): the event marker is read first and a redelivered event is a duplicate. false:
   * the caller decides idempotency from the record (re-evaluation, base watch, attestations) and the
   * marker is written only to hold effects until they are published.
   */
  dedupe?: boolean;
}

export interface TransactResult<E, S extends string> {
  outcome: 'applied' | 'duplicate' | S;
  /** The record as written (applied) or as found (skipped); null for a duplicate. */
  image: ImageRecord | null;
  previous: ImageRecord | null;
  /** Effects to publish: new ones, or those a crashed earlier delivery left unpublished. */
  effects: E[];
}

export interface DeadLetter {
  source: string;
  reason: string;
  problems?: { path: string; message: string }[];
  /** The input exactly as received: bytes are kept as text when they are UTF-8, as base64 otherwise. */
  raw: Buffer | string;
  messageId?: string | null;
  attributes?: Record<string, string>;
}

/** An image document's base fields, as the base watcher classifies them (unknown: as stored). */
export interface BaseDependent {
  id: string;
  get(field: 'base.digest' | 'base.currentDigest' | 'base.name' | 'base.status'): unknown;
}

/** Effects kept on an event marker; `done` once published. */
export interface PendingEffects<E> {
  meta: EventMeta;
  effects: E[];
  done: boolean;
}

export interface ImageLedger {
  /**
   * The one read-modify-write of an image document. `mutate` sees the stored record (null when
   * absent) and may be called more than once (the transaction retries); it must not have side effects.
   */
  transact<E = never, S extends string = never>(
    imageId: string,
    meta: EventMeta,
    mutate: (current: ImageRecord | null, writes: LedgerWrites) => Mutation<E, S>,
    options: TransactOptions,
  ): Promise<TransactResult<E, S>>;
  /** Publishes an event's effects, then marks them done on its marker (the outbox). */
  settle<E>(
    meta: EventMeta,
    effects: readonly E[],
    publish: (e: readonly E[]) => Promise<void>,
  ): Promise<void>;
  /** The markers of these events that exist (done or not), or the pending markers of `source` (up to `limit`). */
  pendingEffects<E>(
    which: { metas: readonly EventMeta[] } | { source: string; limit: number },
  ): Promise<PendingEffects<E>[]>;
  getImage(id: string): Promise<ImageRecord | null>;
  getFindings(image: Pick<ImageRecord, 'id' | 'scanRefs'>, sources?: string[]): Promise<Finding[]>;
  /** Ids of the images with a finding of this vulnerability (id or alias) across the fleet, in id order. */
  imagesWithVulnerability(
    vulnerability: string,
    options?: { limit?: number; after?: string },
  ): Promise<string[]>;
  resolveTag(registry: string, repository: string, tag: string): Promise<string | null>;
  /**
   * The base fields of images built on a tracked base: those naming it (all, or only those not yet
   * classified) and digest-only bases on one of `digests`. The caller classifies them.
   */
  imagesOnBase(
    base: { name: string; digest: string; digests: readonly string[] },
    options: { unclassifiedOnly: boolean },
  ): Promise<BaseDependent[]>;
  recordAudit(
    id: string,
    meta: EventMeta,
    entry: AuditEntry,
    now: Date,
    options?: { auditId?: string; onlyIfExists?: boolean },
  ): Promise<'applied' | 'duplicate' | 'stale' | 'missing'>;
  recordDeadLetter(dl: DeadLetter, now: Date): Promise<string>;
}

/**
 * What the use cases (ingestion, re-evaluation) ask of the ledger: the port plus the event-shaped
 * writes and paged reads of the Firestore adapter, as a type, so a use case depends on this
 * interface and a test can hand it any object that satisfies it.
 */
export type UseCaseLedger = ImageLedger &
  Pick<
    FirestoreLedger,
    | 'applyScan'
    | 'applyRegistryEvent'
    | 'applyTagDelete'
    | 'linkChildren'
    | 'recordEnrichment'
    | 'imagesDueForEnrichment'
    | 'reopenEnrichment'
    | 'findingsOfRange'
    | 'countImages'
    | 'listImages'
    | 'ops'
  >;
