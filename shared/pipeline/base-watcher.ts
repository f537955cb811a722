// Base-image watcher: follows each tracked base tag, records when its digest moves, and marks the images built on older digests stale.
import type { Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import { Alert } from '../alerts/alert.js';
import { type BaseProofDeps, trackBaseDigest } from '../bases/base-proof.js';
import { errorMessage, isRetryable } from '../errors.js';
import type { ImageRecord } from '../image-record.js';
import { formatImageRef, isDigest, parseImageRef } from '../image-ref/image-ref.js';
import { COLLECTIONS } from '../ledger/collections.js';
import type { EventMeta, ImageLedger } from '../ledger/image-ledger.js';
import type { OpCounter } from '../ledger/ledger-store.js';
import type { Logger } from '../logging/logger.js';
import type { Registry } from '../registry/client.js';
import type { Effect, EffectPublisher } from './effects.js';

/** Superseded digests kept per base: enough to date any image still in use, small enough for one document. */
export const MAX_BASE_HISTORY = 100;
const MARKER_SOURCE = 'base-watch';

export const BaseHistoryEntry = z.object({
  digest: z.string(),
  seenAt: z.string(),
  supersededAt: z.string(),
});
export type BaseHistoryEntry = z.infer<typeof BaseHistoryEntry>;

/** `bases/{id}`: a tracked base tag, its current digest and the digests it pointed at before. */
export const TrackedBase = z.object({
  name: z.string(),
  digest: z.string(),
  seenAt: z.string(),
  history: z.array(BaseHistoryEntry).default([]),
  /** The digest for which every dependent was classified; until it equals `digest`, passes scan them all. */
  settledDigest: z.string().nullable().default(null),
});
export type TrackedBase = z.infer<typeof TrackedBase>;

export interface BaseWatcherDeps {
  db: Firestore;
  registry: Pick<Registry, 'resolveTag'>;
  publisher: EffectPublisher;
  logger?: Logger;
  /** Every write of an image goes through the ledger; its counter also counts the watcher's own reads. */
  ledger: Pick<ImageLedger, 'transact' | 'settle' | 'pendingEffects' | 'imagesOnBase'> & {
    ops?: OpCounter;
  };
  /** Caches each digest a tag points at and marks it tracked, so images without labels can be matched by layers. */
  bases?: BaseProofDeps;
}

export interface BaseWatchResult {
  name: string;
  digest: string | null;
  /** first: never seen before; moved: the tag points at a new digest; unchanged otherwise. */
  change: 'first' | 'moved' | 'unchanged' | 'error';
  markedStale: number;
  markedCurrent: number;
  alerts: number;
  error?: string;
  retryable?: boolean;
}

/** The id of a tracked base's document: its normalised reference (a validated image name: no `~`, no `__`), slashes as `~`. */
export function baseDocId(name: string): string {
  return name.replaceAll('/', '~');
}

/** `host/repo:tag`, normalised (Docker Hub defaults, lower-case host); a digest-pinned name cannot move and is refused. */
export function normaliseBaseName(input: string): {
  name: string;
  registry: string;
  repository: string;
  tag: string;
} {
  const ref = parseImageRef(input.trim());
  if (ref.digest !== null) {
    throw new Error(`tracked base ${JSON.stringify(input)} names a digest; track a tag instead`);
  }
  const tag = ref.tag ?? 'latest';
  return {
    name: formatImageRef({ ...ref, tag, digest: null }),
    registry: ref.registry,
    repository: ref.repository,
    tag,
  };
}

function count(ops: OpCounter | undefined, reads: number, writes: number): void {
  if (!ops) return;
  ops.reads += reads;
  ops.writes += writes;
}

/** Records the resolved digest; returns the base as stored and what changed. */
async function recordDigest(
  deps: BaseWatcherDeps,
  name: string,
  digest: string,
  now: Date,
): Promise<{ base: TrackedBase; change: 'first' | 'moved' | 'unchanged' }> {
  const ref = deps.db.collection(COLLECTIONS.bases).doc(baseDocId(name));
  const nowIso = now.toISOString();
  return deps.db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    count(deps.ledger.ops, 1, 0);
    if (!snap.exists) {
      const base: TrackedBase = { name, digest, seenAt: nowIso, history: [], settledDigest: null };
      tx.set(ref, base);
      count(deps.ledger.ops, 0, 1);
      return { base, change: 'first' as const };
    }
    const prev = TrackedBase.parse(snap.data());
    if (prev.digest === digest) return { base: prev, change: 'unchanged' as const };
    // A tag moved back to an older digest: that digest leaves the history, being current again.
    const history = [
      ...prev.history.filter((h) => h.digest !== digest && h.digest !== prev.digest),
      { digest: prev.digest, seenAt: prev.seenAt, supersededAt: nowIso },
    ].slice(-MAX_BASE_HISTORY);
    const base: TrackedBase = { name, digest, seenAt: nowIso, history, settledDigest: null };
    tx.set(ref, base);
    count(deps.ledger.ops, 0, 1);
    return { base, change: 'moved' as const };
  });
}

/** When the tag moved past `digest`: from the history, else no later than the oldest digest we know was seen. */
export function supersededAt(base: TrackedBase, digest: string): string {
  const known = base.history.find((h) => h.digest === digest);
  if (known) return known.supersededAt;
  return base.history[0]?.seenAt ?? base.seenAt;
}

function rebuildAlert(
  image: ImageRecord,
  base: TrackedBase,
  oldDigest: string,
  since: string,
  now: Date,
): Alert | null {
  const parsed = Alert.safeParse({
    type: 'rebuild-needed',
    image: {
      registry: image.registry,
      repository: image.repository,
      digest: image.digest,
      tags: image.tags.slice(0, 100),
    },
    labels: image.labels,
    detectedAt: now.toISOString(),
    links: {},
    base: { name: base.name, oldDigest, newDigest: base.digest, since },
  });
  return parsed.success ? parsed.data : null;
}

/** The event a base status change of one image is recorded as (its marker keeps the effects). */
function eventOf(base: TrackedBase, imageId: string, now: Date): EventMeta {
  return {
    source: MARKER_SOURCE,
    messageId: `${baseDocId(base.name)}:${base.digest}:${imageId}`,
    at: now.toISOString(),
  };
}

/**
 * Sets an image's base status through the ledger, which keeps the effects on the event's marker
 * until they are published. Returns the effects, or null when nothing changed.
 */
async function markImage(
  deps: BaseWatcherDeps,
  imageId: string,
  base: TrackedBase,
  status: 'stale' | 'current',
  now: Date,
): Promise<Effect[] | null> {
  const meta = eventOf(base, imageId, now);
  const result = await deps.ledger.transact<Effect, 'unchanged'>(
    imageId,
    meta,
    (image) => {
      const old = image?.base;
      if (!image || !old?.digest || image.state === 'deleted') return { skip: 'unchanged' };
      const since = status === 'stale' ? supersededAt(base, old.digest) : null;
      const next = {
        ...old,
        name: old.name ?? base.name,
        status,
        supersededAt: since,
        currentDigest: base.digest,
      };
      if (
        old.name === next.name &&
        old.status === next.status &&
        old.supersededAt === next.supersededAt &&
        old.currentDigest === next.currentDigest
      ) {
        return { skip: 'unchanged' };
      }
      return {
        record: { ...image, base: next },
        audit: {
          kind: 'base-status',
          base: base.name,
          from: old.status,
          to: status,
          baseDigest: old.digest,
          currentDigest: base.digest,
          supersededAt: since,
        },
        auditId: `base-watch:${image.version}`,
        keepState: true,
        effects: (_previous, updated) => {
          const effects: Effect[] = [];
          // Only staleness enters a verdict (base-image.fresh); unknown → current changes nothing to evaluate.
          if (status === 'stale' || old.status === 'stale')
            effects.push({ kind: 'reevaluate', imageId });
          if (
            status === 'stale' &&
            since &&
            (old.status !== 'stale' || old.currentDigest !== base.digest)
          ) {
            const alert = rebuildAlert(updated, base, old.digest as string, since, now);
            if (alert) effects.push({ kind: 'alert', alert });
            else
              deps.logger?.warn('rebuild alert not sent: image or digest out of the alert format', {
                imageId,
              });
          }
          return effects;
        },
      };
    },
    { now, dedupe: false },
  );
  if (result.outcome !== 'applied') return null;
  await deps.ledger.settle(meta, result.effects, (e) => deps.publisher.publish(e));
  return result.effects;
}

/**
 * Ids of images whose base is this tag (by name, or by a digest-only base matching one of its
 * digests), split by the status they should have. A full pass reads every dependent; once a digest
 * is settled, a pass reads only images not yet classified (base.status unknown: pushed since), so
 * the daily cost follows new images, not the fleet.
 */
async function dependents(
  deps: BaseWatcherDeps,
  base: TrackedBase,
  full: boolean,
): Promise<{ stale: string[]; current: string[] }> {
  const stale = new Set<string>();
  const current = new Set<string>();
  const docs = await deps.ledger.imagesOnBase(
    {
      name: base.name,
      digest: base.digest,
      digests: [base.digest, ...base.history.map((h) => h.digest)],
    },
    { unclassifiedOnly: !full },
  );
  for (const d of docs) {
    const digest = d.get('base.digest');
    if (typeof digest !== 'string') continue;
    // Already classified against this digest: nothing to write, so no transaction either.
    const settled = d.get('base.currentDigest') === base.digest && d.get('base.name') !== null;
    const status = d.get('base.status');
    if (digest === base.digest) {
      if (!(settled && status === 'current')) current.add(d.id);
    } else if (!(settled && status === 'stale')) stale.add(d.id);
  }
  return { stale: [...stale].sort(), current: [...current].sort() };
}

/** Records that every dependent of `digest` has been classified (unless the tag moved meanwhile). */
async function settle(deps: BaseWatcherDeps, base: TrackedBase): Promise<void> {
  const ref = deps.db.collection(COLLECTIONS.bases).doc(baseDocId(base.name));
  await deps.db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    if (!snap.exists || snap.get('digest') !== base.digest) return;
    tx.update(ref, { settledDigest: base.digest });
  });
  count(deps.ledger.ops, 1, 1);
}

/** Effects an earlier run wrote but could not publish (it crashed or Pub/Sub failed). */
async function republishPending(deps: BaseWatcherDeps): Promise<number> {
  const pending = await deps.ledger.pendingEffects<Effect>({ source: MARKER_SOURCE, limit: 500 });
  for (const p of pending) {
    await deps.ledger.settle(p.meta, p.effects, (e) => deps.publisher.publish(e));
  }
  return pending.length;
}

async function watchOne(deps: BaseWatcherDeps, input: string, now: Date): Promise<BaseWatchResult> {
  const { name, registry, repository, tag } = normaliseBaseName(input);
  const resolved = await deps.registry.resolveTag(registry, repository, tag);
  if (!isDigest(resolved.digest)) throw new Error(`registry gave no digest for ${name}`);
  const { base, change } = await recordDigest(deps, name, resolved.digest, now);
  if (deps.bases) {
    try {
      await trackBaseDigest(deps.bases, name, base.digest, now);
    } catch (err) {
      // Staleness does not depend on the layers: a base that cannot be read is still followed.
      if (isRetryable(err)) throw err;
      deps.logger?.warn('base layers not cached; images on it cannot be matched by layers', {
        base: name,
        reason: errorMessage(err),
      });
    }
  }
  // Dependents are checked on every run, not just when the tag moves: images pushed since the last
  // run are caught. A crash before `settle` leaves the digest unsettled, so the next run scans all.
  const full = base.settledDigest !== base.digest;
  const { stale, current } = await dependents(deps, base, full);
  const result: BaseWatchResult = {
    name,
    digest: base.digest,
    change,
    markedStale: 0,
    markedCurrent: 0,
    alerts: 0,
  };
  for (const [ids, status] of [
    [stale, 'stale'],
    [current, 'current'],
  ] as const) {
    for (const id of ids) {
      const effects = await markImage(deps, id, base, status, now);
      if (!effects) continue;
      if (status === 'stale') result.markedStale += 1;
      else result.markedCurrent += 1;
      result.alerts += effects.filter((e) => e.kind === 'alert').length;
    }
  }
  if (full) await settle(deps, base);
  return result;
}

/**
 * One pass over the tracked bases. A base whose tag cannot be resolved is reported and the others
 * still run; the pass is idempotent, so the scheduler may simply retry it.
 */
export async function followBaseTags(
  deps: BaseWatcherDeps,
  tracked: readonly string[],
  now: Date,
): Promise<{ bases: BaseWatchResult[]; republished: number }> {
  const republished = await republishPending(deps);
  const bases: BaseWatchResult[] = [];
  for (const input of tracked) {
    try {
      bases.push(await watchOne(deps, input, now));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      deps.logger?.warn('base image not checked', { base: input, reason: message });
      bases.push({
        name: input,
        digest: null,
        change: 'error',
        markedStale: 0,
        markedCurrent: 0,
        alerts: 0,
        error: message,
        retryable: isRetryable(err),
      });
    }
  }
  return { bases, republished };
}
