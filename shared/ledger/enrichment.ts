// Merging what the registry said about a manifest into its record (pure).
import type { BaseImage, BaseVerification, ImageRecord, PlatformChild } from '../image-record.js';

/** What the registry said about a manifest, read before the transaction. */
export interface Enrichment {
  mediaType: string | null;
  platforms: PlatformChild[];
  created: string | null;
  user: string | null;
  labels: Record<string, string>;
  base: {
    name: string | null;
    digest: string | null;
    /** Where the claim was read, or `layers` when Clearance inferred it; default annotation. */
    source?: BaseImage['source'];
    /** The layer check of the claim, done before the transaction (null: not checked). */
    verification?: BaseVerification | null;
  } | null;
}

export function maxIso(a: string | null | undefined, b: string | null | undefined): string | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return a >= b ? a : b;
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
            source: e.base.source ?? 'annotation',
            verification: e.base.verification ?? null,
          }
        : rec.base,
  };
}
