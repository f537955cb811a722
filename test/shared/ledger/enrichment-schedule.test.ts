// The enrich sweep's backoff: doubling from one minute, capped at an hour, jittered by image (never above the cap), the same for the same inputs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ENRICHMENT_BACKOFF_BASE_MS,
  ENRICHMENT_BACKOFF_CAP_MS,
  ENRICHMENT_JITTER,
  enrichmentBackoffMs,
  isEnrichmentDue,
  jitterFraction,
  MAX_ENRICHMENT_ATTEMPTS,
  nextEnrichmentAttempt,
} from '../../../shared/ledger/enrichment-schedule.js';
import { ENRICHMENT_SWEEP_INDEXES } from '../../../shared/ledger/ledger-store.js';

const ids = Array.from({ length: 200 }, (_, i) => `reg~team~app~sha256:${i.toString(16)}`);
/** The wait without jitter: what the jittered one is measured against. */
const plain = (attempts: number) =>
  Math.min(
    ENRICHMENT_BACKOFF_CAP_MS,
    ENRICHMENT_BACKOFF_BASE_MS * 2 ** (Math.max(1, attempts) - 1),
  );

describe('enrichmentBackoffMs', () => {
  it('doubles from one minute with each failed read, up to the one-hour cap', () => {
    expect(ENRICHMENT_BACKOFF_BASE_MS).toBe(60_000);
    expect(ENRICHMENT_BACKOFF_CAP_MS).toBe(3_600_000);
    const id = ids[0] as string;
    const waits = [1, 2, 3, 4, 5, 6, 7, 8, 20, 71, 10_000].map((n) => enrichmentBackoffMs(n, id));
    // Each wait twice the previous one (to the millisecond the rounding allows).
    for (let i = 1; i < 6; i++)
      expect(Math.abs((waits[i] as number) - 2 * (waits[i - 1] as number))).toBeLessThanOrEqual(1);
    // From the 7th failure on (64 minutes uncapped) the cap holds, whatever the count.
    expect(new Set(waits.slice(6)).size).toBe(1);
    expect(waits[6]).toBeLessThanOrEqual(ENRICHMENT_BACKOFF_CAP_MS);
    expect(waits[6]).toBeGreaterThan(waits[5] as number);
  });

  it('takes off at most the jitter share, never adds: every wait is within [0.9, 1] of the plain one', () => {
    for (const id of ids)
      for (const n of [0, 1, 2, 3, 6, 7, 50]) {
        const w = enrichmentBackoffMs(n, id);
        expect(w).toBeLessThanOrEqual(plain(n));
        expect(w).toBeGreaterThanOrEqual(Math.floor(plain(n) * (1 - ENRICHMENT_JITTER)));
      }
  });

  it('spreads a fleet: images failing together are not all due at the same instant', () => {
    const atCap = new Set(ids.map((id) => enrichmentBackoffMs(30, id)));
    expect(atCap.size).toBeGreaterThan(150);
    const fractions = ids.map(jitterFraction);
    expect(Math.min(...fractions)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...fractions)).toBeLessThan(1);
    // Both halves of the range are used (a hash, not a constant).
    expect(fractions.some((f) => f < 0.5) && fractions.some((f) => f >= 0.5)).toBe(true);
  });

  it('is deterministic: the same image and count give the same wait, in any order', () => {
    const first = ids.map((id) => enrichmentBackoffMs(4, id));
    const again = [...ids]
      .reverse()
      .map((id) => enrichmentBackoffMs(4, id))
      .reverse();
    expect(again).toEqual(first);
  });

  it('waits the base before the first read has failed (the push reads the image itself)', () => {
    const id = ids[3] as string;
    expect(enrichmentBackoffMs(0, id)).toBe(enrichmentBackoffMs(1, id));
  });
});

describe('nextEnrichmentAttempt / isEnrichmentDue', () => {
  const now = new Date('2026-12-01T08:00:00Z');
  it('adds the backoff to now', () => {
    const id = ids[5] as string;
    expect(Date.parse(nextEnrichmentAttempt(3, id, now)) - now.getTime()).toBe(
      enrichmentBackoffMs(3, id),
    );
  });

  it('is due at or after the time, and always when none is recorded (older records)', () => {
    expect(isEnrichmentDue('2026-12-01T08:00:00.000Z', now)).toBe(true);
    expect(isEnrichmentDue('2026-12-01T07:59:59.000Z', now)).toBe(true);
    expect(isEnrichmentDue('2026-12-01T08:00:00.001Z', now)).toBe(false);
    expect(isEnrichmentDue(null, now)).toBe(true);
    expect(isEnrichmentDue(undefined, now)).toBe(true);
  });

  it('bounds the retries: the attempts limit spans about three days of hourly sweeps', () => {
    const id = ids[7] as string;
    let total = 0;
    for (let n = 1; n < MAX_ENRICHMENT_ATTEMPTS; n++) total += enrichmentBackoffMs(n, id);
    expect(total / 86_400_000).toBeGreaterThan(2.4);
    expect(total / 86_400_000).toBeLessThan(3);
  });
});

describe('the sweep query indexes', () => {
  it('are declared in firestore.indexes.json (the emulator needs none, a project does)', () => {
    const file = JSON.parse(readFileSync('firestore.indexes.json', 'utf8')) as {
      indexes: { collectionGroup: string; fields: { fieldPath: string; order?: string }[] }[];
    };
    const declared = file.indexes.map(
      (i) => `${i.collectionGroup}(${i.fields.map((f) => `${f.fieldPath} ${f.order}`).join(', ')})`,
    );
    for (const index of ENRICHMENT_SWEEP_INDEXES)
      expect(declared).toContain(
        `${index.collectionGroup}(${index.fields.map((f) => `${f} ASCENDING`).join(', ')})`,
      );
  });
});
