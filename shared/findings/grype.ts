// Reads Grype's JSON output (current schema, and the older one with fixedInVersion/cvssV2/cvssV3) into Findings.
import { z } from 'zod';
import { parseInput } from '../parse-input.js';
import type { Finding, FixState, Severity } from './finding.js';
import { dedupe, type ScannerReport, uniqueStrings } from './trivy.js';

const text = (max: number) => z.string().max(max);

const Cvss = z.object({
  version: text(20).nullish(),
  metrics: z.object({ baseScore: z.number().nullish() }).nullish(),
});
const LegacyCvss = z.object({ baseScore: z.number().nullish() }).nullish();

const GrypeVulnerability = z.object({
  id: text(200).min(1),
  severity: text(50).nullish(),
  dataSource: text(2000).nullish(),
  urls: z.array(text(2000)).max(1000).nullish(),
  links: z.array(text(2000)).max(1000).nullish(),
  description: text(100_000).nullish(),
  cvss: z.array(Cvss).max(100).nullish(),
  cvssV2: LegacyCvss,
  cvssV3: LegacyCvss,
  fix: z
    .object({ versions: z.array(text(500)).max(100).nullish(), state: text(50).nullish() })
    .nullish(),
  fixedInVersion: text(500).nullish(),
});

export const GrypeMatch = z.object({
  vulnerability: GrypeVulnerability,
  relatedVulnerabilities: z
    .array(
      z.object({
        id: text(200),
        description: text(100_000).nullish(),
        cvss: z.array(Cvss).max(100).nullish(),
      }),
    )
    .max(100)
    .nullish(),
  artifact: z.object({
    name: text(500).min(1),
    version: text(500).default(''),
    type: text(100).nullish(),
    purl: text(2000).nullish(),
  }),
});
export type GrypeMatch = z.infer<typeof GrypeMatch>;

export const GrypeReport = z.object({
  matches: z.array(GrypeMatch).max(200_000),
  source: z
    .object({
      type: text(100).nullish(),
      target: z
        .union([
          text(2000),
          z.object({
            userInput: text(2000).nullish(),
            manifestDigest: text(200).nullish(),
            repoDigests: z.array(text(600)).max(1000).nullish(),
            tags: z.array(text(600)).max(1000).nullish(),
          }),
        ])
        .nullish(),
    })
    .nullish(),
  descriptor: z
    .object({
      name: text(100).nullish(),
      version: text(100).nullish(),
      timestamp: text(100).nullish(),
    })
    .nullish(),
});
export type GrypeReport = z.infer<typeof GrypeReport>;

/** Grype severities are title case; Negligible is our MINIMAL and Unknown our UNSPECIFIED. */
const SEVERITY: Readonly<Record<string, Severity>> = {
  negligible: 'MINIMAL',
  low: 'LOW',
  medium: 'MEDIUM',
  high: 'HIGH',
  critical: 'CRITICAL',
  unknown: 'UNSPECIFIED',
};

const FIX_STATE: Readonly<Record<string, FixState>> = {
  fixed: 'fixed',
  'not-fixed': 'not-fixed',
  'wont-fix': 'wont-fix',
  unknown: 'unknown',
};

function bestCvss(list: ReadonlyArray<z.infer<typeof Cvss>> | null | undefined): number | null {
  if (!list || list.length === 0) return null;
  // Prefer a v3.x score; among the same version, the first listed (the primary source's).
  const ordered = [...list].sort(
    (a, b) => Number((b.version ?? '').startsWith('3')) - Number((a.version ?? '').startsWith('3')),
  );
  for (const c of ordered) {
    const s = c.metrics?.baseScore;
    if (typeof s === 'number' && s > 0 && s <= 10) return s;
  }
  return null;
}

function legacyScore(c: z.infer<typeof LegacyCvss>): number | null {
  const s = c?.baseScore;
  return typeof s === 'number' && s > 0 && s <= 10 ? s : null;
}

function findingFromMatch(m: GrypeMatch): Finding {
  const v = m.vulnerability;
  const related = m.relatedVulnerabilities ?? [];
  let fixState: FixState;
  let fixedVersion: string | null;
  if (v.fix) {
    const versions = (v.fix.versions ?? []).filter((x) => x !== '');
    fixedVersion = versions.length > 0 ? versions.join(', ').slice(0, 500) : null;
    fixState = FIX_STATE[v.fix.state ?? ''] ?? (fixedVersion ? 'fixed' : 'unknown');
  } else {
    // Older Grype (no fix object): fixedInVersion when the database knew a fix, nothing when it knew none.
    fixedVersion = v.fixedInVersion ? v.fixedInVersion : null;
    fixState = fixedVersion ? 'fixed' : 'not-fixed';
  }
  const cvss =
    bestCvss(v.cvss) ??
    legacyScore(v.cvssV3) ??
    legacyScore(v.cvssV2) ??
    related.reduce<number | null>((acc, r) => acc ?? bestCvss(r.cvss), null);
  const description = v.description ?? related.find((r) => r.description)?.description ?? null;
  return {
    id: v.id,
    aliases: uniqueStrings(related.map((r) => r.id)).filter((id) => id !== v.id),
    package: m.artifact.name,
    packageType: m.artifact.type ? m.artifact.type : null,
    installedVersion: m.artifact.version,
    fixedVersion,
    fixState,
    severity: SEVERITY[(v.severity ?? '').toLowerCase()] ?? 'UNSPECIFIED',
    cvss,
    source: 'grype',
    description: description ? description.slice(0, 2000) : null,
    url: v.dataSource || v.urls?.[0] || v.links?.[0] || null,
  };
}

/** Reads a validated Grype report (see parseGrype for raw input). */
export function findingsFromGrype(report: GrypeReport): ScannerReport {
  const target = report.source?.target;
  const subjects =
    target && typeof target === 'object'
      ? uniqueStrings([
          ...(target.repoDigests ?? []),
          target.userInput,
          ...(target.tags ?? []),
          target.manifestDigest,
        ])
      : uniqueStrings([typeof target === 'string' ? target : null]);
  const d = report.descriptor;
  return {
    findings: dedupe(report.matches.map(findingFromMatch)),
    subjects,
    scanner: d?.version ? `${d.name ?? 'grype'} ${d.version}` : 'grype',
    createdAt: d?.timestamp ?? null,
    notAffected: 0,
  };
}

export function parseGrype(json: unknown): ScannerReport {
  return findingsFromGrype(parseInput(GrypeReport, json, 'Grype report'));
}
