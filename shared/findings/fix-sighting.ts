// When Clearance first saw a fix: one record per (vulnerability, package, fixed version), the clock a fix grace period counts from.
import { z } from 'zod';
import type { Finding } from './finding.js';

export const FixSighting = z.object({
  /** The finding's primary id, upper case (CVE-…, GHSA-…). */
  vulnerability: z.string().min(1).max(200),
  package: z.string().min(1).max(500),
  /** As the scanner wrote it. */
  fixedVersion: z.string().min(1).max(500),
  /** The first time any scan reaching Clearance reported this fix (RFC 3339). */
  firstSeenAt: z.string(),
});
export type FixSighting = z.infer<typeof FixSighting>;

/** The identity of a sighting; ids are upper-cased so CVE spellings agree. */
export function fixKey(vulnerability: string, pkg: string, fixedVersion: string): string {
  return `${vulnerability.toUpperCase()}\u0000${pkg}\u0000${fixedVersion}`;
}

/** The fixes a scan reports: one per fixable finding with a fixed version, de-duplicated. */
export function fixesIn(
  findings: readonly Finding[],
): { vulnerability: string; package: string; fixedVersion: string; key: string }[] {
  const out = new Map<
    string,
    { vulnerability: string; package: string; fixedVersion: string; key: string }
  >();
  for (const f of findings) {
    if (f.fixState !== 'fixed' || !f.fixedVersion) continue;
    const key = fixKey(f.id, f.package, f.fixedVersion);
    if (!out.has(key)) {
      out.set(key, {
        vulnerability: f.id.toUpperCase(),
        package: f.package,
        fixedVersion: f.fixedVersion,
        key,
      });
    }
  }
  return [...out.values()];
}
