// The image ledger's document model: one record per (repository, manifest digest).
import { z } from 'zod';
import { FindingCounts } from '../findings/finding.js';

export const DECISIONS = ['allow', 'deny', 'pending'] as const;
export const Decision = z.enum(DECISIONS);
export type Decision = z.infer<typeof Decision>;

export const MODES = ['enforce', 'dryrun'] as const;
export const Mode = z.enum(MODES);
export type Mode = z.infer<typeof Mode>;

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

export const Reason = z.object({
  ruleId: z.string(),
  /** deny: fails the rule; warn: reported but does not deny (also every reason in dry-run). */
  level: z.enum(['deny', 'warn']),
  message: z.string(),
  remediation: z.string().nullable().default(null),
  /** The CVE exception the reason is about (vulnerabilities.exception-*): data, never parsed from the message. */
  exception: z.string().optional(),
});
export type Reason = z.infer<typeof Reason>;

export const Verdict = z.object({
  environment: z.string(),
  decision: Decision,
  mode: Mode,
  reasons: z.array(Reason),
  policyHash: z.string(),
  evaluatedAt: z.string(),
});
export type Verdict = z.infer<typeof Verdict>;

export const Platform = z.object({
  digest: z.string(),
  os: z.string().nullable().default(null),
  architecture: z.string().nullable().default(null),
  variant: z.string().nullable().default(null),
});
export type Platform = z.infer<typeof Platform>;

export const BaseImage = z.object({
  /** The base's reference as the image declares it, e.g. marketplace.gcr.io/google/debian12:latest. */
  name: z.string().nullable(),
  digest: z.string().nullable(),
  status: BaseStatus,
  /** When the base's tag moved past this image's base digest (set by the base-image watcher). */
  supersededAt: z.string().nullable().default(null),
  /** The base tag's digest when the image was marked stale. */
  currentDigest: z.string().nullable().default(null),
  source: z.enum(['annotation', 'label', 'provenance', 'layers', 'none']).default('none'),
});
export type BaseImage = z.infer<typeof BaseImage>;

export const Provenance = z.object({
  builderId: z.string().nullable(),
  sourceRepository: z.string().nullable(),
  buildType: z.string().nullable().default(null),
  /** Where it was read: an in-toto SLSA statement or a Cloud Build BUILD occurrence. */
  source: z.enum(['slsa', 'cloud-build']),
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

export const ImageRecord = z.object({
  id: z.string(),
  /** Host, e.g. us-docker.pkg.dev or docker.io. */
  registry: z.string(),
  /** Path below the host, e.g. p/r/img or library/nginx. */
  repository: z.string(),
  digest: z.string(),
  mediaType: z.string().nullable().default(null),
  tags: z.array(z.string()).default([]),
  platforms: z.array(Platform).default([]),
  /** Digests of the indexes that list this manifest as a child. */
  parents: z.array(z.string()).default([]),
  pushedAt: z.string().nullable().default(null),
  created: z.string().nullable().default(null),
  user: z.string().nullable().default(null),
  labels: z.record(z.string(), z.string()).default({}),
  owner: z.string().nullable().default(null),
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
  verdicts: z.record(z.string(), Verdict).default({}),
  attestations: z.array(Attestation).default([]),
  state: ImageState,
  deletedAt: z.string().nullable().default(null),
  /** Increments on every write: the deploy check keys its cache on it. */
  version: z.number().int().nonnegative().default(0),
  updatedAt: z.string(),
});
export type ImageRecord = z.infer<typeof ImageRecord>;
