// Glue between the ledger and the pure policy engine: loads what a verdict depends on and evaluates.
import type { Finding, VexStatement } from '../findings/finding.js';
import type { FixSighting } from '../findings/fix-sighting.js';
import type { ImageRecord } from '../image-record.js';
import { evaluate } from '../policy/evaluate.js';
import type { PolicySnapshot } from '../policy/store/policy-source.js';
import type { Verdict } from '../verdict.js';

/** Verdicts for a record under a policy snapshot; null when no policy has been applied yet. */
export function verdictsFor(
  snapshot: PolicySnapshot | null,
  image: ImageRecord,
  findings: readonly Finding[],
  vex: readonly VexStatement[],
  now: Date,
  fixSightings: readonly FixSighting[] = [],
): Record<string, Verdict> | null {
  if (!snapshot) return null;
  return evaluate({
    image,
    findings,
    vex,
    policy: snapshot.policy,
    policyHash: snapshot.hash,
    now,
    fixSightings,
  });
}
