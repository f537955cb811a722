// Verdicts of a multi-platform index, composed from its platform images: scanners judge the children, deployers pull the index.

import type { ImageRecord } from '../image-record.js';
import type { Policy } from '../policy/policy.js';
import { INDEX_MEDIA_TYPES } from '../registry/schemas.js';
import type { Reason, Verdict } from '../verdict.js';

export function isIndex(rec: Pick<ImageRecord, 'mediaType' | 'platforms'>): boolean {
  // An index whose children are all attestations has no platforms but is still an index (denied).
  return rec.mediaType === null
    ? rec.platforms.length > 0
    : INDEX_MEDIA_TYPES.includes(rec.mediaType);
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
    if (index.platforms.length === 0) {
      // Nothing in it can run, and nothing in it was judged: never allowed.
      decision = 'deny';
      reasons.push({
        ruleId: 'index.no-images',
        level: settings.mode === 'enforce' ? 'deny' : 'warn',
        message: 'the index lists no image for any platform (only attestations or nothing)',
        remediation: 'push an index with at least one platform image',
      });
    }
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
