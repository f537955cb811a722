// Registry events → ledger: record a push from its message, then enrich it from the registry (retried on its own), evaluate, publish effects.
import {
  type BaseClaim,
  type BaseProofDeps,
  indexBase,
  normaliseBaseClaim,
  type ProvenBase,
  proveBase,
} from '../bases/base-proof.js';
import {
  ClearanceError,
  errorMessage,
  InvalidInputError,
  isRetryable,
  TransientError,
} from '../errors.js';
import type { RegistryEvent } from '../events/gcr-event.js';
import type { ImageRecord } from '../image-record.js';
import { imageDocId } from '../image-ref/image-ref.js';
import { MAX_ENRICHMENT_ATTEMPTS } from '../ledger/enrichment-schedule.js';
import type { UseCaseLedger } from '../ledger/image-ledger.js';
import type { Enrichment, EventMeta, ImageTransaction } from '../ledger/ledger-store.js';
import type { Logger } from '../logging/logger.js';
import { firstMatch } from '../policy/glob.js';
import type { PolicySource } from '../policy/store/policy-source.js';
import type { ImageDescription, Registry } from '../registry/client.js';
import { computeEffects, type Effect, type EffectPublisher } from './effects.js';
import { verdictsFor } from './evaluator.js';

export interface IngestDeps {
  ledger: UseCaseLedger;
  /** Null where the registry cannot be reached from here: events are recorded without enrichment. */
  registry: Pick<Registry, 'describeImage' | 'resolveTag'> | null;
  policy: PolicySource;
  publisher: EffectPublisher;
  /** Repository globs to ingest (registry/repository); empty = every repository. */
  watch: readonly string[];
  logger: Logger;
  /** Proves base claims against the base's layers and infers missing ones; absent: claims are recorded unchecked. */
  bases?: BaseProofDeps | null;
}

export type IngestOutcome = 'applied' | 'duplicate' | 'stale' | 'ignored';

/** A recorded push as its registry read needs it. */
export type PushedImage = Pick<RegistryEvent, 'action' | 'registry' | 'repository' | 'tag'> & {
  digest: string;
};

/**
 * The base as the watcher tracks it: `registry/repository:tag` (tag defaulting to latest), so an
 * annotation written `debian:12` matches the tracked `docker.io/library/debian:12`; a digest in the
 * name fills in a missing base digest. A name that does not parse is kept as written.
 */
export const normaliseBase = normaliseBaseClaim;

/** What the ledger records from a description; `proven` (when the base was checked) replaces the raw claim. */
export function enrichmentOf(d: ImageDescription, proven?: ProvenBase | null): Enrichment {
  return {
    mediaType: d.mediaType,
    platforms: d.platforms,
    created: d.config?.created ?? null,
    user: d.config?.user ?? null,
    labels: d.config?.labels ?? {},
    base:
      proven !== undefined
        ? proven
        : d.base
          ? { ...normaliseBase(d.base.name, d.base.digest), source: d.base.source }
          : null,
  };
}

/** A claim Clearance may follow: to the image's own registry, or one the deployment allows. */
function proofFor(deps: IngestDeps, registry: string): BaseProofDeps | null {
  const bases = deps.bases;
  if (!bases) return null;
  const own = registry.toLowerCase();
  return {
    ...bases,
    allowRegistry: (r) => r.toLowerCase() === own || (bases.allowRegistry?.(r) ?? true),
  };
}

interface Described {
  description: ImageDescription;
  /** undefined: not checked (no proof dependencies); null: no base claimed or inferred. */
  base: ProvenBase | null | undefined;
}

/**
 * Proves the base of a pushed image before its transaction: a platform image against the base it
 * claims; an index per platform (a child without its own claim inherits the index's annotation).
 */
async function prove(
  deps: IngestDeps,
  ev: PushedImage,
  description: ImageDescription,
  now: Date,
): Promise<{
  self: Described;
  children: { platform: ImageDescription['platforms'][number]; child: Described | null }[];
}> {
  const proof = proofFor(deps, ev.registry);
  const claimOf = (d: ImageDescription): BaseClaim | null => d.base;
  if (description.kind !== 'index') {
    const base = proof ? await proveBase(proof, description, claimOf(description), now) : undefined;
    return { self: { description, base }, children: [] };
  }
  const children = [];
  for (const platform of description.platforms) {
    const d = await describeChild(deps, { ...ev, digest: platform.digest, tag: null });
    if (!d) {
      children.push({ platform, child: null });
      continue;
    }
    const claim = claimOf(d) ?? claimOf(description);
    const base = proof ? await proveBase(proof, d, claim, now) : undefined;
    children.push({ platform, child: { description: d, base } });
  }
  const base = proof
    ? indexBase(
        claimOf(description),
        children.map((c) => ({ platform: c.platform, base: c.child?.base ?? null })),
        now,
      )
    : undefined;
  return { self: { description, base }, children };
}

/** Publishes what a transaction produced, then clears the marker so a redelivery does not repeat it. */
export async function settle<E extends Effect>(
  deps: Pick<IngestDeps, 'ledger' | 'publisher'>,
  meta: EventMeta,
  result: Pick<ImageTransaction<E>, 'effects'>,
): Promise<void> {
  await deps.ledger.settle(meta, result.effects, (e) => deps.publisher.publish(e));
}

/** Reads an index's child; one that is gone or refused is left out (the index is still judged). */
async function describeChild(deps: IngestDeps, ev: PushedImage): Promise<ImageDescription | null> {
  if (!deps.registry) return null;
  try {
    return await deps.registry.describeImage(ev.registry, ev.repository, ev.digest);
  } catch (err) {
    if (err instanceof ClearanceError && (err.code === 'not-found' || err.code === 'forbidden')) {
      deps.logger.warn('could not describe a child of the pushed index', {
        code: err.code,
        digest: ev.digest,
      });
      return null;
    }
    throw err;
  }
}

/** The pushed image as a dead letter keeps it: what the message said, to replay or inspect. */
function rawOfEvent(ev: PushedImage, meta: EventMeta): string {
  return JSON.stringify({
    action: ev.action,
    registry: ev.registry,
    repository: ev.repository,
    digest: ev.digest,
    tag: ev.tag,
    event: { source: meta.source, messageId: meta.messageId, at: meta.at },
  });
}

export type EnrichOutcome = 'enriched' | 'failed' | 'not-needed';

/**
 * Reads the registry for a recorded push (manifest, config, base proof) and writes what it gave.
 * Idempotent: an image already read (or failed for good) costs one ledger read. A transient
 * failure is recorded on the image (with the sweep's next attempt, backed off) and thrown, so the
 * delivery is retried; a final one (the manifest is gone or refused, the config is malformed, or
 * the `MAX_ENRICHMENT_ATTEMPTS`th read failed) ends the image as `failed` with an audit entry and
 * a dead letter, and its verdict denies where a rule needed the registry's facts.
 */
export async function enrichPush(
  deps: IngestDeps,
  ev: PushedImage,
  meta: EventMeta,
  now: Date,
  /** The record as the caller just wrote it; read from the ledger when absent. */
  recorded?: ImageRecord | null,
): Promise<EnrichOutcome> {
  const registry = deps.registry;
  if (!registry) return 'not-needed';
  const current =
    recorded ?? (await deps.ledger.getImage(imageDocId(ev.registry, ev.repository, ev.digest)));
  if (current?.enrichment?.status !== 'needed') return 'not-needed';
  let proven: Awaited<ReturnType<typeof prove>>;
  try {
    const description = await registry.describeImage(ev.registry, ev.repository, ev.digest);
    proven = await prove(deps, ev, description, now);
  } catch (err) {
    const attempts = current.enrichment.attempts + 1;
    // Never retried forever: the last allowed read that fails for now ends the image as failed.
    const exhausted = isRetryable(err) && attempts >= MAX_ENRICHMENT_ATTEMPTS;
    const reason = exhausted
      ? `the registry did not answer in ${attempts} reads (the limit): ${errorMessage(err)}`
      : errorMessage(err);
    if (isRetryable(err) && !exhausted) {
      await deps.ledger.recordEnrichment(ev, { kind: 'retry', reason }, now);
      throw new TransientError(
        `registry read of ${ev.registry}/${ev.repository}@${ev.digest} failed (the push is recorded; the read is retried): ${reason}`,
        { cause: err },
      );
    }
    // The dead letter first, one per image (keyed by it): if recording the failure fails, the
    // retry writes the same one again; concurrent pushes of the digest write one.
    const deadLetter = await deps.ledger.recordDeadLetter(
      {
        source: 'enrichment',
        reason: `image cannot be read from the registry: ${reason}`,
        raw: rawOfEvent(ev, meta),
        messageId: imageDocId(ev.registry, ev.repository, ev.digest),
      },
      now,
    );
    const snapshot = await deps.policy.current();
    const result = await deps.ledger.recordEnrichment<Effect>(ev, { kind: 'failed', reason }, now, {
      evaluate: (rec) =>
        rec.scan.status === 'finished' ? null : verdictsFor(snapshot, rec, [], [], now),
      effects: (prev, next) => {
        const effects = computeEffects(prev, next, null, now);
        if (next.scan.status === 'finished') effects.push({ kind: 'reevaluate', imageId: next.id });
        return effects;
      },
    });
    deps.logger.warn('pushed image cannot be read from the registry; recorded as unreadable', {
      digest: ev.digest,
      reason,
      deadLetter,
    });
    await settle(deps, result.meta, result);
    return 'failed';
  }
  const { description } = proven.self;
  const snapshot = await deps.policy.current();
  const result = await deps.ledger.recordEnrichment<Effect>(
    ev,
    { kind: 'done', enrichment: enrichmentOf(description, proven.self.base) },
    now,
    {
      // Without a finished scan the verdict needs no findings; with one, re-evaluation reads them.
      evaluate: (rec) =>
        rec.scan.status === 'finished' ? null : verdictsFor(snapshot, rec, [], [], now),
      effects: (prev, next) => {
        const effects = computeEffects(prev, next, null, now);
        if (next.scan.status === 'finished') effects.push({ kind: 'reevaluate', imageId: next.id });
        return effects;
      },
    },
  );
  // Also an index without image children: its re-evaluation denies it (index.no-images).
  if (result.outcome === 'applied' && description.kind === 'index') {
    const children = proven.children.map(({ platform, child }) => ({
      platform,
      enrichment: child ? enrichmentOf(child.description, child.base) : null,
    }));
    await deps.ledger.linkChildren(ev, children, meta, now);
    // The index's verdict is composed from its children's, which may already be known.
    if (result.image)
      await deps.publisher.publish([{ kind: 'reevaluate', imageId: result.image.id }]);
  }
  await settle(deps, result.meta, result);
  return result.outcome === 'applied' ? 'enriched' : 'not-needed';
}

/**
 * Records a registry event from its message alone — the image, its tag moved, the push time — in
 * one transaction, then reads the registry for it (`enrichPush`). The verdict stays pending while
 * a rule needs what the registry holds, so an unreadable registry delays a verdict but never loses
 * the push or leaves the tag on its previous digest. A redelivered push whose read failed before
 * retries the read.
 */
export async function ingestRegistryEvent(
  deps: IngestDeps,
  ev: RegistryEvent,
  meta: EventMeta,
  now: Date,
): Promise<IngestOutcome> {
  const name = `${ev.registry}/${ev.repository}`;
  if (deps.watch.length > 0 && !firstMatch(deps.watch, name)) {
    deps.logger.info('event for a repository outside the watch list ignored', { repository: name });
    return 'ignored';
  }
  if (!ev.digest) {
    if (!ev.tag) throw new InvalidInputError('registry event names neither a digest nor a tag');
    if (ev.action === 'delete') {
      return deps.ledger.applyTagDelete({ ...ev, tag: ev.tag }, meta, now);
    }
    if (!deps.registry)
      throw new InvalidInputError(
        `tag-only push of ${name}:${ev.tag} cannot be resolved without a registry client`,
      );
    let digest: string;
    try {
      digest = (await deps.registry.resolveTag(ev.registry, ev.repository, ev.tag)).digest;
    } catch (err) {
      if (err instanceof ClearanceError && err.code === 'not-found') {
        throw new InvalidInputError(`tag ${name}:${ev.tag} no longer exists in the registry`, {
          cause: err,
        });
      }
      throw err;
    }
    return ingestRegistryEvent(deps, { ...ev, digest }, meta, now);
  }
  const withDigest = { ...ev, digest: ev.digest };
  const read = ev.action === 'push' && deps.registry !== null;
  const snapshot = await deps.policy.current();
  const result = await deps.ledger.applyRegistryEvent<Effect>(withDigest, meta, now, {
    enrichmentNeeded: read,
    // Without a finished scan the verdict needs no findings; with one, re-evaluation reads them.
    evaluate: (rec) =>
      rec.scan.status === 'finished' ? null : verdictsFor(snapshot, rec, [], [], now),
    effects: (prev, next) => {
      const effects = computeEffects(prev, next, null, now);
      // A scanned image (scan before push) now waits for its read: its verdict is recomputed as pending.
      const opened = !prev?.enrichment && next.enrichment?.status === 'needed';
      if (opened && next.scan.status === 'finished')
        effects.push({ kind: 'reevaluate', imageId: next.id });
      return effects;
    },
  });
  await settle(deps, meta, result);
  if (read)
    await enrichPush(
      deps,
      withDigest,
      meta,
      now,
      result.outcome === 'applied' ? result.image : null,
    );
  return result.outcome;
}

export interface EnrichmentSweep {
  /** Images found waiting for their registry read. */
  waiting: number;
  enriched: number;
  failed: number;
  /** Still waiting: the registry did not answer (transient), tried again on the next sweep. */
  retrying: number;
}

/**
 * Reads the registry for recorded pushes still waiting for it and due at `now` (their backoff run
 * out), up to `limit`, longest-due first: the retry that outlives a push's own redeliveries
 * (Pub/Sub gives up after the subscription's delivery attempts, the emulator after a few).
 * Scheduled every minute or few; idempotent with any delivery that races it.
 */
export async function sweepEnrichment(
  deps: IngestDeps,
  now: Date,
  limit = 100,
): Promise<EnrichmentSweep> {
  return enrichWaiting(deps, await deps.ledger.imagesDueForEnrichment(now, limit), now);
}

/** Reads the registry for these waiting images now (the sweep's, or one an operator names). */
export async function enrichWaiting(
  deps: IngestDeps,
  waiting: readonly ImageRecord[],
  now: Date,
): Promise<EnrichmentSweep> {
  const out: EnrichmentSweep = { waiting: waiting.length, enriched: 0, failed: 0, retrying: 0 };
  for (const rec of waiting) {
    // Only what this deployment ingests: another deployment sharing the database reads its own.
    if (deps.watch.length > 0 && !firstMatch(deps.watch, `${rec.registry}/${rec.repository}`)) {
      out.waiting -= 1;
      continue;
    }
    const ev = {
      action: 'push' as const,
      registry: rec.registry,
      repository: rec.repository,
      digest: rec.digest,
      tag: null,
    };
    const meta: EventMeta = {
      source: 'enrichment-sweep',
      messageId: rec.id,
      at: now.toISOString(),
    };
    try {
      const outcome = await enrichPush(deps, ev, meta, now, rec);
      if (outcome === 'enriched') out.enriched += 1;
      else if (outcome === 'failed') out.failed += 1;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      out.retrying += 1;
      deps.logger.warn('registry read still failing; retried on the next sweep', {
        imageId: rec.id,
        reason: errorMessage(err),
      });
    }
  }
  return out;
}
