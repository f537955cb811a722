// The current policy, read from Firestore and cached per instance for a short time.
import type { Firestore } from '@google-cloud/firestore';
import { admissionSettingsOf } from '../../check/decide.js';
import { ADMISSION_SETTINGS_DOC } from '../../check/firestore-store.js';
import type { Clock } from '../../clock.js';
import { COLLECTIONS } from '../../ledger/collections.js';
import { type Policy, type PolicyFormat, parsePolicy, policyHash } from '../policy.js';

export interface PolicySnapshot {
  policy: Policy;
  hash: string;
}

export interface PolicySource {
  current(): Promise<PolicySnapshot | null>;
}

/** The stored form: the source text is kept so history shows exactly what was applied. */
export interface StoredPolicy {
  hash: string;
  source: string;
  format: PolicyFormat;
  appliedAt: string;
  appliedBy: string | null;
}

export const CURRENT_POLICY_DOC = 'current';

export function firestorePolicySource(
  db: Firestore,
  clock: Clock,
  ttlMs = 30_000,
): PolicySource & { invalidate(): void } {
  let cached: { value: PolicySnapshot | null; expires: number } | undefined;
  return {
    invalidate: () => {
      cached = undefined;
    },
    async current() {
      const now = clock.now().getTime();
      if (cached && cached.expires > now) return cached.value;
      const snap = await db.collection(COLLECTIONS.policies).doc(CURRENT_POLICY_DOC).get();
      let value: PolicySnapshot | null = null;
      if (snap.exists) {
        const stored = snap.data() as StoredPolicy;
        const policy = parsePolicy(stored.source, stored.format);
        value = { policy, hash: policyHash(policy) };
      }
      cached = { value, expires: now + ttlMs };
      return value;
    },
  };
}

/** Stores a validated policy as current and keeps the previous one in the history subcollection. */
export async function storePolicy(
  db: Firestore,
  input: { source: string; format: PolicyFormat; appliedBy: string | null; now: Date },
): Promise<StoredPolicy> {
  const policy = parsePolicy(input.source, input.format);
  const stored: StoredPolicy = {
    hash: policyHash(policy),
    source: input.source,
    format: input.format,
    appliedAt: input.now.toISOString(),
    appliedBy: input.appliedBy,
  };
  const ref = db.collection(COLLECTIONS.policies).doc(CURRENT_POLICY_DOC);
  await db.runTransaction(async (tx) => {
    tx.set(ref, stored);
    // The deploy check reads only these settings, so it never loads the policy engine.
    tx.set(
      db.collection(COLLECTIONS.policies).doc(ADMISSION_SETTINGS_DOC),
      admissionSettingsOf(policy, stored.hash),
    );
    tx.set(
      ref.collection('history').doc(`${stored.appliedAt}_${stored.hash.slice(7, 19)}`),
      stored,
    );
  });
  return stored;
}
