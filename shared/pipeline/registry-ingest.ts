// Registry events → ledger: enrich a push from the registry, apply it transactionally, evaluate, publish effects.
import {
  type BaseClaim,
  type BaseProofDeps,
  indexBase,
  normaliseBaseClaim,
  type ProvenBase,
  proveBase,
} from '../bases/base-proof.js';
import { ClearanceError, InvalidInputError } from '../errors.js';
import type { RegistryEvent } from '../events/gcr-event.js';
import type {
  Enrichment,
  EventMeta,
  FirestoreLedger,
  ImageTransaction,
} from '../ledger/ledger-store.js';

import type { Logger } from '../logging/logger.js';
import { firstMatch } from '../policy/glob.js';
import type { PolicySource } from '../policy/store/policy-source.js';
import type { ImageDescription, Registry } from '../registry/client.js';
import { computeEffects, type Effect, type EffectPublisher } from './effects.js';
import { verdictsFor } from './evaluator.js';

export interface IngestDeps {
  ledger: FirestoreLedger;
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
  ev: RegistryEvent & { digest: string },
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
    const d = await describe(deps, { ...ev, digest: platform.digest, tag: null });
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
  result: ImageTransaction<E>,
): Promise<void> {
  await deps.ledger.settle(meta, result.effects, (e) => deps.publisher.publish(e));
}

async function describe(
  deps: IngestDeps,
  ev: RegistryEvent & { digest: string },
): Promise<ImageDescription | null> {
  if (!deps.registry) return null;
  try {
    return await deps.registry.describeImage(ev.registry, ev.repository, ev.digest);
  } catch (err) {
    // Gone already (pushed and deleted quickly), or not ours to read: record the event unenriched.
    if (err instanceof ClearanceError && (err.code === 'not-found' || err.code === 'forbidden')) {
      deps.logger.warn('could not describe the pushed image; recorded without registry details', {
        code: err.code,
        digest: ev.digest,
      });
      return null;
    }
    throw err;
  }
}

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
  const description = ev.action === 'push' ? await describe(deps, withDigest) : null;
  const proven = description ? await prove(deps, withDigest, description, now) : null;
  const snapshot = await deps.policy.current();
  const result = await deps.ledger.applyRegistryEvent<Effect>(withDigest, meta, now, {
    enrichment: proven ? enrichmentOf(proven.self.description, proven.self.base) : undefined,
    // Without a finished scan the verdict needs no findings; with one, re-evaluation reads them.
    evaluate: (rec) =>
      rec.scan.status === 'finished' ? null : verdictsFor(snapshot, rec, [], [], now),
    effects: (prev, next) => {
      const effects = computeEffects(prev, next, null, now);
      const enriched = description !== null && prev !== null && prev.scan.status === 'finished';
      if (enriched && ev.action === 'push') effects.push({ kind: 'reevaluate', imageId: next.id });
      return effects;
    },
  });
  // Also an index without image children: its re-evaluation denies it (index.no-images).
  if (result.outcome === 'applied' && description?.kind === 'index' && proven) {
    const children = proven.children.map(({ platform, child }) => ({
      platform,
      enrichment: child ? enrichmentOf(child.description, child.base) : null,
    }));
    await deps.ledger.linkChildren(withDigest, children, meta, now);
    // The index's verdict is composed from its children's, which may already be known.
    if (result.image)
      await deps.publisher.publish([{ kind: 'reevaluate', imageId: result.image.id }]);
  }
  await settle(deps, meta, result);
  return result.outcome;
}
