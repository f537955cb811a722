// The one finding model every scanner's output is normalised into (Artifact Analysis, Trivy, Grype).
import { z } from 'zod';

/** One severity scale for every source, lowest first; Grafeas' names. */
export const SEVERITIES = ['UNSPECIFIED', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export const Severity = z.enum(SEVERITIES);
export type Severity = z.infer<typeof Severity>;

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** fixed: a fixed version exists; not-fixed: none yet; wont-fix: the distro declined; unknown: the scanner did not say. */
export const FIX_STATES = ['fixed', 'not-fixed', 'wont-fix', 'unknown'] as const;
export const FixState = z.enum(FIX_STATES);
export type FixState = z.infer<typeof FixState>;

export const FINDING_SOURCES = ['container-analysis', 'trivy', 'grype'] as const;
export const FindingSource = z.enum(FINDING_SOURCES);
export type FindingSource = z.infer<typeof FindingSource>;

export const Finding = z.object({
  /** Primary vulnerability id, e.g. CVE-2005-2541 or GHSA-…. */
  id: z.string().min(1).max(200),
  aliases: z.array(z.string().max(200)).default([]),
  package: z.string().min(1).max(500),
  packageType: z.string().max(100).nullable().default(null),
  installedVersion: z.string().max(500),
  fixedVersion: z.string().max(500).nullable(),
  fixState: FixState,
  severity: Severity,
  cvss: z.number().min(0).max(10).nullable(),
  source: FindingSource,
  description: z.string().max(2000).nullable().default(null),
  url: z.string().max(2000).nullable().default(null),
});
export type Finding = z.infer<typeof Finding>;

/** VEX statuses, OpenVEX v0.2.0 names. */
export const VEX_STATUSES = ['not_affected', 'affected', 'fixed', 'under_investigation'] as const;
export const VexStatus = z.enum(VEX_STATUSES);
export type VexStatus = z.infer<typeof VexStatus>;

/** A VEX statement kept as the policy will apply it: which vulnerability, for which products. */
export const VexStatement = z.object({
  vulnerability: z.string().min(1),
  aliases: z.array(z.string()).default([]),
  /** Product identifiers as written (purls such as pkg:oci/…?repository_url=… or image references). */
  products: z.array(z.string()),
  /** Subcomponent identifiers (usually package purls) the statement is limited to; empty = whole product. */
  subcomponents: z.array(z.string()).default([]),
  status: VexStatus,
  justification: z.string().nullable().default(null),
  impactStatement: z.string().nullable().default(null),
  timestamp: z.string().nullable().default(null),
  /** The @id of the VEX document the statement came from. */
  documentId: z.string(),
  /** The document's own author field: a claim. */
  author: z.string().nullable().default(null),
  /**
   * The policy signer whose signature over the document verified; null when unsigned or signed by
   * no one the policy trusts. Only signed statements apply, and a signer listed earlier in
   * `trust.signers` is never overridden by one listed later.
   */
  signer: z.string().nullable().default(null),
  /** The channel it came through (e.g. `report:ci@acme.iam.gserviceaccount.com`). */
  source: z.string().nullable().default(null),
});
export type VexStatement = z.infer<typeof VexStatement>;

/** Counts kept on the image so a verdict summary never needs the findings subcollection. */
export const FindingCounts = z.object({
  total: z.number().int().nonnegative(),
  bySeverity: z.record(Severity, z.number().int().nonnegative()),
  byFixState: z.record(FixState, z.number().int().nonnegative()),
});
export type FindingCounts = z.infer<typeof FindingCounts>;

export function countFindings(findings: readonly Finding[]): FindingCounts {
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  const byFixState = Object.fromEntries(FIX_STATES.map((s) => [s, 0])) as Record<FixState, number>;
  for (const f of findings) {
    bySeverity[f.severity] += 1;
    byFixState[f.fixState] += 1;
  }
  return { total: findings.length, bySeverity, byFixState };
}

/** Deterministic key of a finding: the same vulnerability in the same package version from the same source. */
export function findingKey(
  f: Pick<Finding, 'source' | 'id' | 'package' | 'installedVersion'>,
): string {
  return `${f.source}|${f.id}|${f.package}|${f.installedVersion}`;
}
