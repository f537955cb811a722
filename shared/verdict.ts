// Verdicts and their reasons: what the policy decides about an image per environment (stored by the ledger, read by the check).
import { z } from 'zod';

export const DECISIONS = ['allow', 'deny', 'pending'] as const;
export const Decision = z.enum(DECISIONS);
export type Decision = z.infer<typeof Decision>;

export const MODES = ['enforce', 'dryrun'] as const;
export const Mode = z.enum(MODES);
export type Mode = z.infer<typeof Mode>;

export const Reason = z.object({
  ruleId: z.string(),
  /** deny: fails the rule; warn: reported but does not deny (also every reason in dry-run). */
  level: z.enum(['deny', 'warn']),
  message: z.string(),
  remediation: z.string().nullable().default(null),
  /** The CVE exception the reason is about (vulnerabilities.exception-*): data, never parsed from the message. */
  exception: z.string().optional(),
  /** The fix grace the reason is about (vulnerabilities.fix-grace*): data, never parsed from the message. */
  grace: z
    .object({
      package: z.string(),
      installedVersion: z.string(),
      fixedVersion: z.string(),
      /** The findings' ids as the message quotes them. */
      vulnerabilities: z.string(),
      /** YYYY-MM-DD (UTC): the fix was first seen that day. */
      availableSince: z.string(),
      /** YYYY-MM-DD (UTC): denied from 00:00 that day. */
      endsOn: z.string(),
    })
    .optional(),
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

/** A dry-run deny is stored as a warning whose message starts with this; the check reads it back as the deny it would be. */
export const DRYRUN_PREFIX = 'dry-run, would deny: ';

/** Kinds of uploaded evidence that can flip a verdict, and so must be verified before they count. */
export const EVIDENCE_KINDS = ['provenance', 'vex'] as const;
