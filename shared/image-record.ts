// The image record: the ledger's document model, one record per (repository, manifest digest); neutral so pure policy can read it without importing storage.
import { z } from 'zod';
import { FindingCounts } from './findings/finding.js';
import { EVIDENCE_KINDS, Verdict } from './verdict.js';

/** pushed → scanning → evaluated → attested | denied → revoked | deleted */
export const IMAGE_STATES = [
  'pushed',
  'scanning',
  'evaluated',
  'attested',
  'denied',
  'revoked',
  'deleted',
] as const;
export const ImageState = z.enum(IMAGE_STATES);
export type ImageState = z.infer<typeof ImageState>;

export const BASE_STATUSES = ['current', 'stale', 'unknown'] as const;
export const BaseStatus = z.enum(BASE_STATUSES);
export type BaseStatus = z.infer<typeof BaseStatus>;

export const SCAN_STATUSES = ['none', 'scanning', 'finished', 'failed'] as const;
export const ScanStatus = z.enum(SCAN_STATUSES);
export type ScanStatus = z.infer<typeof ScanStatus>;

/** A platform child of an index: its digest and the platform it is for. */
export const PlatformChild = z.object({
  digest: z.string(),
  os: z.string().nullable().default(null),
  architecture: z.string().nullable().default(null),
  variant: z.string().nullable().default(null),
});
export type PlatformChild = z.infer<typeof PlatformChild>;

export const BASE_VERIFICATION_STATUSES = ['verified', 'mismatch', 'unverified'] as const;
export const BaseVerificationStatus = z.enum(BASE_VERIFICATION_STATUSES);
export type BaseVerificationStatus = z.infer<typeof BaseVerificationStatus>;

/** What Clearance proved about the base claim by comparing layers with the base read from the registry. */
export const BaseVerification = z.object({
  /** verified: the image starts with the base's layers; mismatch: it does not; unverified: could not be checked. */
  status: BaseVerificationStatus,
  /** Why: the first differing layer, or what could not be read. Null when verified. */
  detail: z.string().nullable().default(null),
  /** Number of base layers compared (per platform the same base). */
  baseLayers: z.number().int().nonnegative().nullable().default(null),
  checkedAt: z.string(),
});
export type BaseVerification = z.infer<typeof BaseVerification>;

export const BaseImage = z.object({
  /** The base's reference as the image declares it, e.g. marketplace.gcr.io/google/debian12:latest. */
  name: z.string().nullable(),
  digest: z.string().nullable(),
  status: BaseStatus,
  /** When the base's tag moved past this image's base digest (set by the base-image watcher). */
  supersededAt: z.string().nullable().default(null),
  /** The base tag's digest when the image was marked stale. */
  currentDigest: z.string().nullable().default(null),
  /** Where the claim came from; `layers`: inferred by matching the layer prefix against the tracked bases. */
  source: z.enum(['annotation', 'label', 'provenance', 'layers', 'none']).default('none'),
  /** Null: never checked (recorded before verification, or no registry to read the base from). */
  verification: BaseVerification.nullable().default(null),
});
export type BaseImage = z.infer<typeof BaseImage>;

export const Provenance = z.object({
  builderId: z.string().nullable(),
  sourceRepository: z.string().nullable(),
  buildType: z.string().nullable().default(null),
  /** Where it was read: an in-toto SLSA statement or a Cloud Build BUILD occurrence. */
  source: z.enum(['slsa', 'cloud-build']),
  /**
   * Who vouched for it: the policy signer that signed a SLSA statement; null for Cloud Build's BUILD
   * occurrences, which only Google writes. Unsigned provenance is never stored here.
   */
  signer: z.string().nullable().default(null),
});
export type Provenance = z.infer<typeof Provenance>;

export const ScanSummary = z.object({
  status: ScanStatus,
  scanner: z.string().nullable().default(null),
  completedAt: z.string().nullable().default(null),
  counts: FindingCounts.nullable().default(null),
  failureReason: z.string().nullable().default(null),
});
export type ScanSummary = z.infer<typeof ScanSummary>;

/** One scanner's latest run on the image; `requireScan` counts the scanners it names. */
export const ScannerRun = ScanSummary.extend({
  /** The vulnerability database the run used (e.g. Trivy's DB UpdatedAt), when the scanner says. */
  database: z.string().nullable().default(null),
  /** Who uploaded it (a CI caller); null for Artifact Analysis. */
  uploader: z.string().nullable().default(null),
});
export type ScannerRun = z.infer<typeof ScannerRun>;

/** An upload that could not be verified: kept and shown among the verdict's reasons, never obeyed. */
export const UnverifiedEvidence = z.object({
  kind: z.enum(EVIDENCE_KINDS),
  /** Why it does not count. */
  reason: z.string(),
  /** What it claimed, in a few words (builder and source, or the VEX statement). */
  claim: z.string(),
  /** Keyless: the certificate's subject, unverified or untrusted. */
  claimedIdentity: z.string().nullable().default(null),
  uploader: z.string().nullable().default(null),
  receivedAt: z.string(),
});
export type UnverifiedEvidence = z.infer<typeof UnverifiedEvidence>;
/** Kept per image, newest last: enough to see an attempt without letting uploads grow the document. */
export const MAX_UNVERIFIED_EVIDENCE = 10;

export const ATTESTATION_FORMATS = ['binauthz', 'dsse'] as const;
export const Attestation = z.object({
  format: z.enum(ATTESTATION_FORMATS),
  keyId: z.string(),
  policyHash: z.string(),
  /** Occurrence name for binauthz attestations; null for DSSE envelopes kept in the ledger only. */
  occurrence: z.string().nullable().default(null),
  envelope: z.string().nullable().default(null),
  createdAt: z.string(),
  revokedAt: z.string().nullable().default(null),
  revokedReason: z.string().nullable().default(null),
});
export type Attestation = z.infer<typeof Attestation>;

export const ENRICHMENT_STATUSES = ['needed', 'done', 'failed'] as const;
export const EnrichmentStatus = z.enum(ENRICHMENT_STATUSES);
export type EnrichmentStatus = z.infer<typeof EnrichmentStatus>;

/**
 * Whether the registry's facts about the image (manifest, config, base proof) are in the record.
 * A push is recorded from its message alone (digest, tag, time) and enriched afterwards: `needed`
 * until the registry answers, `done` once it did, `failed` when it answered for good that the image
 * cannot be read (gone, refused, malformed), or stayed unreachable for `MAX_ENRICHMENT_ATTEMPTS`
 * reads. A rule that needs them is pending while `needed` and denies on `failed`; an operator sets a
 * `failed` image back to `needed` with `clearance images re-enrich`.
 */
export const EnrichmentState = z.object({
  status: EnrichmentStatus,
  /** Why it is not done: the last transient error (needed) or the final one (failed). */
  reason: z.string().nullable().default(null),
  /** Registry reads attempted for this image (the push's first attempt included). */
  attempts: z.number().int().nonnegative().default(0),
  lastAttemptAt: z.string().nullable().default(null),
  /**
   * While `needed`: when the enrich sweep may read the image again (backoff after each transient
   * failure, shared/ledger/enrichment-schedule.ts). Null when not waiting, or recorded before the
   * field existed: the sweep takes that as due. A push's own redelivery reads it regardless.
   */
  nextAttemptAt: z.string().nullable().default(null),
  /** Times an operator set a `failed` (or, forced, any) read back to `needed`; each starts the attempts anew. */
  reopened: z.number().int().nonnegative().default(0),
});
export type EnrichmentState = z.infer<typeof EnrichmentState>;

export const ImageRecord = z.object({
  id: z.string(),
  /** Host, e.g. us-docker.pkg.dev or docker.io. */
  registry: z.string(),
  /** Path below the host, e.g. p/r/img or library/nginx. */
  repository: z.string(),
  digest: z.string(),
  mediaType: z.string().nullable().default(null),
  tags: z.array(z.string()).default([]),
  platforms: z.array(PlatformChild).default([]),
  /** Digests of the indexes that list this manifest as a child. */
  parents: z.array(z.string()).default([]),
  pushedAt: z.string().nullable().default(null),
  created: z.string().nullable().default(null),
  user: z.string().nullable().default(null),
  labels: z.record(z.string(), z.string()).default({}),
  owner: z.string().nullable().default(null),
  /** Null: recorded before enrichment was tracked, or without a registry to read: taken as it is. */
  enrichment: EnrichmentState.nullable().default(null),
  base: BaseImage.nullable().default(null),
  provenance: Provenance.nullable().default(null),
  scan: ScanSummary.default({
    status: 'none',
    scanner: null,
    completedAt: null,
    counts: null,
    failureReason: null,
  }),
  /** The current scan run per finding source; findings of other runs are stale. */
  scanRefs: z.record(z.string(), z.string()).default({}),
  /**
   * Ids of the image's finding chunk documents (findingChunks/{source}.{n}), so a scan reads them by
   * id: a query inside a transaction locks more than the image's own chunks (the emulator locks
   * across images). Null: recorded before the list was kept, so the chunks are found by a query.
   */
  findingChunks: z.array(z.string()).nullable().default(null),
  /** Each scanner's latest run (artifact-analysis, trivy, grype). */
  scans: z.record(z.string(), ScannerRun).default({}),
  /** Uploads that did not verify, newest last (at most MAX_UNVERIFIED_EVIDENCE). */
  unverified: z.array(UnverifiedEvidence).default([]),
  verdicts: z.record(z.string(), Verdict).default({}),
  attestations: z.array(Attestation).default([]),
  state: ImageState,
  deletedAt: z.string().nullable().default(null),
  /** Increments on every write: the deploy check keys its cache on it. */
  version: z.number().int().nonnegative().default(0),
  updatedAt: z.string(),
});
export type ImageRecord = z.infer<typeof ImageRecord>;
