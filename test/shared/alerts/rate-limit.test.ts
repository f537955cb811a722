import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BucketLimits,
  type BucketState,
  DEFAULT_LIMITS,
  memoryTokenBuckets,
  takeToken,
} from '../../../shared/alerts/rate-limit.js';

const chat = DEFAULT_LIMITS['google-chat'];
const slack = DEFAULT_LIMITS.slack;

/** Sends each request as soon as a token allows (waiting as told); returns the send times. */
function simulate(arrivals: number[], limits: BucketLimits): number[] {
  let state: BucketState | null = null;
  let t = 0;
  const sent: number[] = [];
  for (const a of [...arrivals].sort((x, y) => x - y)) {
    t = Math.max(t, a);
    for (;;) {
      const r = takeToken(state, t, limits);
      state = r.state;
      if (r.granted) break;
      t += r.waitMs;
    }
    sent.push(t);
  }
  return sent;
}

function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

describe('takeToken', () => {
  it('starts full and lets a burst of `capacity` through, then says how long to wait', () => {
    let state: BucketState | null = null;
    for (let i = 0; i < chat.capacity; i++) {
      const r = takeToken(state, 0, chat);
      expect(r.granted).toBe(true);
      state = r.state;
    }
    const refused = takeToken(state, 0, chat);
    expect(refused.granted).toBe(false);
    expect(refused.waitMs).toBe(1200);
    expect(takeToken(refused.state, 1199, chat).granted).toBe(false);
    expect(takeToken(refused.state, 1200, chat).granted).toBe(true);
  });

  it('never refills past capacity', () => {
    const r = takeToken({ tokens: 0, updatedAtMs: 0 }, 10 * 60_000, chat);
    expect(r.state.tokens).toBe(chat.capacity - 1);
  });

  it('refills nothing when the caller clock is behind the stored state', () => {
    const r = takeToken({ tokens: 0.5, updatedAtMs: 10_000 }, 9_000, slack);
    expect(r.granted).toBe(false);
    expect(r.state.tokens).toBe(0.5);
    expect(r.waitMs).toBe(500 + 1000);
  });

  it('200 alerts arriving within one minute: Google Chat sends at most 60 in any minute, all 200 eventually', () => {
    const arrivals = Array.from({ length: 200 }, (_, i) => i * 300);
    const sent = simulate(arrivals, chat);
    expect(sent).toHaveLength(200);
    expect(maxInWindow(sent, 60_000)).toBeLessThanOrEqual(60);
  });

  it('holds the per-minute bound for Chat and the per-second bound for Slack for any arrivals', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300_000 }), { maxLength: 300 }), (arr) => {
        const chatSent = simulate(arr, chat);
        const slackSent = simulate(arr, slack);
        return (
          chatSent.length === arr.length &&
          maxInWindow(chatSent, 60_000) <= 60 &&
          maxInWindow(slackSent, 1000) <= 1
        );
      }),
      { numRuns: 200 },
    );
  });

  it('memory store keeps spaces apart', async () => {
    const store = memoryTokenBuckets();
    expect((await store.take('a', 0, slack)).granted).toBe(true);
    expect((await store.take('a', 0, slack)).granted).toBe(false);
    expect((await store.take('b', 0, slack)).granted).toBe(true);
  });
});
