import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  classifyResponse,
  parseRetryAfter,
} from '../../../shared/alerts/delivery.js';

const now = new Date('2026-11-29T10:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });
  it('reads an HTTP date relative to now, never negative', () => {
    expect(parseRetryAfter('Sun, 29 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });
  it('gives null for missing or unreadable values', () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('-5', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('1.5', now)).toBeNull();
  });
});

describe('backoffDelay (exponential, full jitter)', () => {
  it('spans [0, base·2^attempt) and is capped', () => {
    const opts = { baseMs: 1000, maxMs: 60_000 };
    expect(backoffDelay(0, () => 0, opts)).toBe(0);
    expect(backoffDelay(0, () => 0.5, opts)).toBe(500);
    expect(backoffDelay(3, () => 0.5, opts)).toBe(4000);
    expect(backoffDelay(20, () => 0.999999, opts)).toBe(59_999);
  });

  it('stays within bounds for any attempt and random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const d = backoffDelay(attempt, () => r, { baseMs: 200, maxMs: 30_000 });
          return d >= 0 && d < Math.min(30_000, 200 * 2 ** attempt) + 1e-9;
        },
      ),
    );
  });
});

describe('classifyResponse', () => {
  it('2xx is delivered', () => {
    expect(classifyResponse(200, null, now)).toEqual({ outcome: 'delivered', status: 200 });
  });
  it('429 is retried after Retry-After', () => {
    expect(classifyResponse(429, '2', now)).toMatchObject({ outcome: 'retry', retryAfterMs: 2000 });
  });
  it('5xx and 408 are retried with backoff', () => {
    expect(classifyResponse(503, null, now)).toMatchObject({
      outcome: 'retry',
      retryAfterMs: null,
    });
    expect(classifyResponse(408, null, now)).toMatchObject({ outcome: 'retry' });
  });
  it('other 4xx are permanent, with the status and body in the reason', () => {
    expect(classifyResponse(400, null, now, 'invalid_blocks')).toEqual({
      outcome: 'permanent',
      status: 400,
      reason: 'HTTP 400: invalid_blocks',
    });
    expect(classifyResponse(404, null, now)).toMatchObject({ outcome: 'permanent' });
  });
});
