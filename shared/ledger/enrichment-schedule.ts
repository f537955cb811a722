// When the enrich sweep reads a waiting image again, and when it stops (pure): exponential backoff with per-image jitter, bounded by attempts.
import { createHash } from 'node:crypto';

/** The wait after the first failed read; each further failure doubles it. */
export const ENRICHMENT_BACKOFF_BASE_MS = 60_000;
/** The longest wait between two sweep reads of one image. */
export const ENRICHMENT_BACKOFF_CAP_MS = 3_600_000;
/**
 * Up to this share of a wait is taken off, by image: a fleet pushed during one outage is not read
 * again in lockstep, and no wait exceeds the cap.
 */
export const ENRICHMENT_JITTER = 0.1;
/**
 * Registry reads (the push's own, its redeliveries and the sweep's) after which a transient failure
 * is final: the image ends `failed` (dead letter, audit entry). 72 reads are about three days of
 * sweeps at the one-hour cap (1+2+4+…+32 minutes, then hourly): longer than a weekend outage.
 */
export const MAX_ENRICHMENT_ATTEMPTS = 72;

/** A fraction in [0, 1) fixed by the image id (the first 32 bits of its SHA-256). */
export function jitterFraction(imageId: string): number {
  return createHash('sha256').update(imageId).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * How long to wait after `attempts` failed reads of `imageId` before the sweep reads it again:
 * base·2^(attempts−1), capped, less up to `ENRICHMENT_JITTER` of it by image. `attempts` < 1
 * (nothing failed yet) waits the base: the push reads the image itself first.
 */
export function enrichmentBackoffMs(attempts: number, imageId: string): number {
  const n = Math.max(1, Math.floor(attempts));
  // 2^(n-1) overflows nothing that matters: past the cap the exponent is clamped.
  const exp = Math.min(n - 1, 32);
  const delay = Math.min(ENRICHMENT_BACKOFF_CAP_MS, ENRICHMENT_BACKOFF_BASE_MS * 2 ** exp);
  return Math.round(delay * (1 - ENRICHMENT_JITTER * jitterFraction(imageId)));
}

/** When the sweep may read `imageId` again after `attempts` failed reads, from `now` (RFC 3339). */
export function nextEnrichmentAttempt(attempts: number, imageId: string, now: Date): string {
  return new Date(now.getTime() + enrichmentBackoffMs(attempts, imageId)).toISOString();
}

/** Whether an image waiting with this `nextAttemptAt` is due at `now`; none recorded (older records) is due. */
export function isEnrichmentDue(nextAttemptAt: string | null | undefined, now: Date): boolean {
  return !nextAttemptAt || Date.parse(nextAttemptAt) <= now.getTime();
}
