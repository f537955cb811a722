// Verdicts of a multi-platform index, composed from its platform images: scanners judge the children, deployers pull the index.

import type { ImageRecord, Reason, Verdict } from '../ledger/image-record.js';
import type { Policy } from '../policy/policy.js';
import { INDEX_MEDIA_TYPES } from '../registry/schemas.js';

export function isIndex(rec: Pick<ImageRecord, 'mediaType' | 'platforms'>): boolean {
  return (
    rec.platforms.length > 0 &&
    (rec.mediaType === null || INDEX_MEDIA_TYPES.includes(rec.mediaType))
  );
}

const RANK = { allow: 0, pending: 1, deny: 2 } as const;

/**
 * Per environment, the worst child decision wins (deny > pending > allow); a child not yet in the
 * ledger, or without a verdict, keeps the index pending. Reasons name the platform they come from.
 */
export function aggregateIndexVerdicts(
  index: ImageRecord,
  children: ReadonlyMap<string, ImageRecord>,
  policy: Policy,
  policyHash: string,
  now: Date,
): Record<string, Verdict> {
  const out: Record<string, Verdict> = {};
  for (const [env, settings] of Object.entries(policy.environments).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    let decision: Verdict['decision'] = 'allow';
    const reasons: Reason[] = [];
    for (const p of index.platforms) {
      const label =
        [p.os, p.architecture, p.variant].filter(Boolean).join('/') || p.digest.slice(0, 19);
      const v = children.get(p.digest)?.verdicts[env];
      if (!v || v.policyHash !== policyHash) {
        if (RANK[decision] < RANK.pending) decision = 'pending';
        reasons.push({
          ruleId: 'index.platform-pending',
          level: settings.mode === 'enforce' ? 'deny' : 'warn',
          message: `platform ${label} (${p.digest.slice(0, 19)}…) has no verdict under this policy yet`,
          remediation: 'wait for its scan to finish',
        });
        continue;
      }
      if (RANK[v.decision] > RANK[decision]) decision = v.decision;
      for (const r of v.reasons) reasons.push({ ...r, message: `[${label}] ${r.message}` });
    }
    out[env] = {
      environment: env,
      decision: settings.mode === 'dryrun' ? 'allow' : decision,
      mode: settings.mode,
      reasons,
      policyHash,
      evaluatedAt: now.toISOString(),
    };
  }
  return out;
}
