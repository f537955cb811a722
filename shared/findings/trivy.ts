// Reads Trivy's JSON report (SchemaVersion 2) into Findings.
import { z } from 'zod';
import { parseInput } from '../parse-input.js';
import { type Finding, type FixState, findingKey, type Severity } from './finding.js';

const text = (max: number) => z.string().max(max);

const TrivyCvss = z
  .object({ V2Score: z.number().nullish(), V3Score: z.number().nullish() })
  .loose();

export const TrivyVulnerability = z.object({
  VulnerabilityID: text(200).min(1),
  PkgName: text(500).min(1),
  PkgIdentifier: z.object({ PURL: text(2000).nullish() }).nullish(),
  InstalledVersion: text(500).default(''),
  FixedVersion: text(2000).nullish(),
  Status: text(50).nullish(),
  Severity: text(50).default('UNKNOWN'),
  SeveritySource: text(100).nullish(),
  Title: text(100_000).nullish(),
  Description: text(100_000).nullish(),
  PrimaryURL: text(2000).nullish(),
  CVSS: z.record(z.string(), TrivyCvss).nullish(),
});
export type TrivyVulnerability = z.infer<typeof TrivyVulnerability>;

export const TrivyReport = z.object({
  SchemaVersion: z.literal(2, { message: 'only Trivy JSON SchemaVersion 2 is supported' }),
  ArtifactName: text(2000).nullish(),
  ArtifactType: text(100).nullish(),
  CreatedAt: text(100).nullish(),
  Trivy: z.object({ Version: text(100).nullish() }).nullish(),
  Metadata: z
    .object({
      RepoTags: z.array(text(600)).max(1000).nullish(),
      RepoDigests: z.array(text(600)).max(1000).nullish(),
      Reference: text(600).nullish(),
      ImageID: text(200).nullish(),
    })
    .nullish(),
  Results: z
    .array(
      z.object({
        Target: text(2000).nullish(),
        Class: text(100).nullish(),
        Type: text(100).nullish(),
        Vulnerabilities: z.array(TrivyVulnerability).max(200_000).nullish(),
      }),
    )
    .max(10_000)
    .nullish(),
});
export type TrivyReport = z.infer<typeof TrivyReport>;

const SEVERITY: Readonly<Record<string, Severity>> = {
  UNKNOWN: 'UNSPECIFIED',
  LOW: 'LOW',
  MEDIUM: 'MEDIUM',
  HIGH: 'HIGH',
  CRITICAL: 'CRITICAL',
};

/**
 * Trivy's Status → our fix state. `not_affected` is not a finding at all (returned as null):
 * the vendor says the package is not vulnerable, which is what a VEX not_affected would say.
 */
export function trivyFixState(
  status: string | null | undefined,
  fixedVersion: string | null,
): FixState | null {
  switch (status) {
    case 'fixed':
      return 'fixed';
    // affected: no fix published yet; fix_deferred: the vendor will fix it later, not now.
    case 'affected':
    case 'fix_deferred':
      return 'not-fixed';
    // will_not_fix: the vendor declined; end_of_life: the release gets no more fixes.
    case 'will_not_fix':
    case 'end_of_life':
      return 'wont-fix';
    case 'under_investigation':
    case 'unknown':
      return 'unknown';
    case 'not_affected':
      return null;
    case null:
    case undefined:
    case '':
      // Reports from before Trivy had Status: a fixed version means fixed, none means none yet.
      return fixedVersion ? 'fixed' : 'not-fixed';
    default:
      return 'unknown';
  }
}

function cvssOf(v: TrivyVulnerability): number | null {
  const cvss = v.CVSS;
  if (!cvss) return null;
  const sources = [v.SeveritySource, 'nvd', ...Object.keys(cvss)].filter(
    (s): s is string => !!s && !!cvss[s],
  );
  for (const key of ['V3Score', 'V2Score'] as const) {
    for (const s of sources) {
      const score = cvss[s]?.[key];
      if (typeof score === 'number' && score > 0 && score <= 10) return score;
    }
  }
  return null;
}

export interface ScannerReport {
  findings: Finding[];
  subjects: string[];
  scanner: string | null;
  createdAt: string | null;
  /** Vulnerabilities the scanner itself marked not affected, left out of findings. */
  notAffected: number;
}

export function uniqueStrings(values: ReadonlyArray<string | null | undefined>): string[] {
  return [...new Set(values.filter((v): v is string => typeof v === 'string' && v.trim() !== ''))];
}

export function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = findingKey(f);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Reads a validated Trivy report (see parseTrivy for raw input). */
export function findingsFromTrivy(report: TrivyReport): ScannerReport {
  const findings: Finding[] = [];
  let notAffected = 0;
  for (const result of report.Results ?? []) {
    for (const v of result.Vulnerabilities ?? []) {
      const fixedVersion = v.FixedVersion ? v.FixedVersion.slice(0, 500) : null;
      const fixState = trivyFixState(v.Status, fixedVersion);
      if (fixState === null) {
        notAffected += 1;
        continue;
      }
      findings.push({
        id: v.VulnerabilityID,
        aliases: [],
        package: v.PkgName,
        packageType: result.Type ? result.Type : null,
        installedVersion: v.InstalledVersion,
        fixedVersion,
        fixState,
        severity: SEVERITY[v.Severity.toUpperCase()] ?? 'UNSPECIFIED',
        cvss: cvssOf(v),
        source: 'trivy',
        description: (v.Title || v.Description || null)?.slice(0, 2000) ?? null,
        url: v.PrimaryURL ? v.PrimaryURL : null,
      });
    }
  }
  const m = report.Metadata;
  return {
    findings: dedupe(findings),
    subjects: uniqueStrings([
      ...(m?.RepoDigests ?? []),
      m?.Reference,
      ...(m?.RepoTags ?? []),
      report.ArtifactName,
    ]),
    scanner: report.Trivy?.Version ? `trivy ${report.Trivy.Version}` : 'trivy',
    createdAt: report.CreatedAt ?? null,
    notAffected,
  };
}

export function parseTrivy(json: unknown): ScannerReport {
  return findingsFromTrivy(parseInput(TrivyReport, json, 'Trivy report'));
}
