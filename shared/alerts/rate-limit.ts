// Per-space token buckets (pure maths plus a Firestore-backed store shared by every notifier instance).
import type { Firestore } from '@google-cloud/firestore';
import type { ChannelKind } from './routing.js';

export interface BucketLimits {
  /** Tokens a quiet space accumulates: the largest burst. */
  capacity: number;
  refillPerSecond: number;
}

/**
 * Google Chat allows 60 messages a minute per space, shared with other apps: a burst of 10 plus
 * 50 a minute never exceeds 60 in any minute. Slack asks for about one a second per webhook.
 */
export const DEFAULT_LIMITS: Record<ChannelKind, BucketLimits> = {
  'google-chat': { capacity: 10, refillPerSecond: 50 / 60 },
  slack: { capacity: 1, refillPerSecond: 1 },
};

export interface BucketState {
  tokens: number;
  updatedAtMs: number;
}

export interface TakeResult {
  granted: boolean;
  state: BucketState;
  /** When not granted: how long until a whole token is there. */
  waitMs: number;
}

/**
 * Refills for the time elapsed, then takes one token if a whole one is there. A clock that
 * runs behind the stored state (another instance) refills nothing rather than going back.
 */
export function takeToken(
  state: BucketState | null,
  nowMs: number,
  limits: BucketLimits,
): TakeResult {
  const prev = state ?? { tokens: limits.capacity, updatedAtMs: nowMs };
  const at = Math.max(nowMs, prev.updatedAtMs);
  const elapsed = at - prev.updatedAtMs;
  const tokens = Math.min(limits.capacity, prev.tokens + (elapsed * limits.refillPerSecond) / 1000);
  if (tokens >= 1) {
    return { granted: true, state: { tokens: tokens - 1, updatedAtMs: at }, waitMs: 0 };
  }
  const waitMs = Math.max(1, Math.ceil(((1 - tokens) * 1000) / limits.refillPerSecond));
  // nowMs may be behind `at`: the wait counts from the caller's clock.
  return { granted: false, state: { tokens, updatedAtMs: at }, waitMs: waitMs + (at - nowMs) };
}

export interface TokenBucketStore {
  take(space: string, nowMs: number, limits: BucketLimits): Promise<TakeResult>;
}

/** `rateBuckets/{space}`, read and written in one transaction so instances never double-spend. */
export function firestoreTokenBuckets(db: Firestore, collection = 'rateBuckets'): TokenBucketStore {
  return {
    take(space, nowMs, limits) {
      const ref = db.collection(collection).doc(space);
      return db.runTransaction(async (tx) => {
        const snap = await tx.get(ref);
        const data = snap.data();
        const state =
          data && typeof data.tokens === 'number' && typeof data.updatedAtMs === 'number'
            ? { tokens: data.tokens, updatedAtMs: data.updatedAtMs }
            : null;
        const result = takeToken(state, nowMs, limits);
        if (result.granted) {
          tx.set(
            ref,
            { tokens: result.state.tokens, updatedAtMs: result.state.updatedAtMs },
            { merge: true },
          );
        }
        return result;
      });
    },
  };
}

/** An in-memory store for unit tests and single-process tools. */
export function memoryTokenBuckets(): TokenBucketStore {
  const states = new Map<string, BucketState>();
  return {
    async take(space, nowMs, limits) {
      const result = takeToken(states.get(space) ?? null, nowMs, limits);
      if (result.granted) states.set(space, result.state);
      return result;
    },
  };
}
