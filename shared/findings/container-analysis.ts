// Reads Grafeas occurrences (Node client objects or REST JSON) and Container Analysis notifications into our model.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { formatImageRef, type ImageRef, parseResourceUri } from '../image-ref/image-ref.js';
import { parseJsonBytes } from '../json-bytes.js';
import { parseInput } from '../parse-input.js';
import type { Finding, FixState, Severity } from './finding.js';

// The Node client (google-gax: enums as strings, longs as strings, defaults on) fills every unset
// field with its default: '' for strings, 0 for numbers, false for bools, null for messages and
// the first enum value (…_UNSPECIFIED). REST JSON leaves them out. Both must read the same, so
// defaults are treated as "not given" throughout.

const str = z.string().max(10_000).nullish();
const num = z.union([z.number(), z.string()]).nullish();
const bool = z.boolean().nullish();

/** RFC 3339 string (REST) or {seconds, nanos} (Node client; seconds may be a string or a Long). */
export const Timestamp = z.union([
  z.string().max(100),
  z.object({
    seconds: z.union([z.number(), z.string(), z.bigint(), z.object({}).loose()]).nullish(),
    nanos: z.number().nullish(),
  }),
]);
export type Timestamp = z.infer<typeof Timestamp>;

/** Normalises a Timestamp to RFC 3339 UTC, or null when unset/unreadable. */
export function timestampToIso(ts: Timestamp | null | undefined): string | null {
  if (ts === null || ts === undefined) return null;
  if (typeof ts === 'string') {
    if (ts === '') return null;
    const ms = Date.parse(ts);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
  }
  const seconds = Number(String(ts.seconds ?? '0'));
  const nanos = ts.nanos ?? 0;
  if (!Number.isFinite(seconds) || (seconds === 0 && nanos === 0)) return null;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6)).toISOString();
}

export const GrafeasVersion = z.object({
  epoch: num,
  name: str,
  revision: str,
  kind: str,
  fullName: str,
});
export type GrafeasVersion = z.infer<typeof GrafeasVersion>;

export const PackageIssue = z.object({
  affectedPackage: str,
  affectedVersion: GrafeasVersion.nullish(),
  fixedPackage: str,
  fixedVersion: GrafeasVersion.nullish(),
  fixAvailable: bool,
  packageType: str,
  effectiveSeverity: str,
  /** v1beta1's fields, kept only to say why such an occurrence is refused. */
  affectedLocation: z.unknown().optional(),
});

export const VulnerabilityDetails = z.object({
  severity: str,
  effectiveSeverity: str,
  cvssScore: num,
  cvssv3: z.object({ baseScore: num }).nullish(),
  cvssV2: z.object({ baseScore: num }).nullish(),
  fixAvailable: bool,
  shortDescription: str,
  longDescription: str,
  relatedUrls: z
    .array(z.object({ url: str, label: str }))
    .max(1000)
    .nullish(),
  packageIssue: z.array(PackageIssue).max(10_000).nullish(),
});

export const VulnerabilityOccurrence = z.object({
  name: str,
  kind: str,
  noteName: str,
  resourceUri: str,
  vulnerability: VulnerabilityDetails,
});
export type VulnerabilityOccurrence = z.infer<typeof VulnerabilityOccurrence>;

const StatusMessage = z.object({ code: num, message: str });

export const DiscoveryOccurrence = z.object({
  name: str,
  kind: str,
  noteName: str,
  resourceUri: z.string().max(1000),
  updateTime: Timestamp.nullish(),
  discovery: z.object({
    analysisStatus: str,
    analysisStatusError: StatusMessage.nullish(),
    analysisError: z.array(StatusMessage).max(100).nullish(),
    lastScanTime: Timestamp.nullish(),
    continuousAnalysis: str,
  }),
});

export const DISCOVERY_STATUSES = ['success', 'failed', 'unsupported', 'pending'] as const;
export type DiscoveryStatus = (typeof DISCOVERY_STATUSES)[number];

export interface Discovery {
  /** Canonical https://REGISTRY/REPO@sha256:… */
  resourceUri: string;
  image: ImageRef & { digest: string };
  status: DiscoveryStatus;
  /** Grafeas' own status name, e.g. FINISHED_SUCCESS. */
  analysisStatus: string;
  analysisError?: string;
  /** When the analysis finished (lastScanTime, else the occurrence's updateTime); only for final statuses. */
  completedAt?: string;
  /** Whether this is the package-vulnerability scan's occurrence (note …/notes/PACKAGE_VULNERABILITY). */
  isVulnerabilityScan: boolean;
}

function kindOf(k: string | null | undefined): string {
  return k ? k : 'unset';
}

function discoveryStatus(analysisStatus: string): DiscoveryStatus {
  switch (analysisStatus) {
    case 'FINISHED_SUCCESS':
    case 'COMPLETE':
      return 'success';
    case 'FINISHED_FAILED':
      return 'failed';
    case 'FINISHED_UNSUPPORTED':
      return 'unsupported';
    default:
      // PENDING, SCANNING, ANALYSIS_STATUS_UNSPECIFIED and statuses added later: not final yet.
      return 'pending';
  }
}

/** Reads a DISCOVERY occurrence: whose image it is and whether its analysis has finished. */
export function parseDiscoveryOccurrence(o: unknown): Discovery {
  const d = parseInput(DiscoveryOccurrence, o, 'DISCOVERY occurrence');
  if (d.kind && d.kind !== 'DISCOVERY') {
    throw new InvalidInputError(`invalid DISCOVERY occurrence: kind is ${d.kind}`);
  }
  const image = parseResourceUri(d.resourceUri);
  // COMPLETE and FINISHED_SUCCESS are one enum number; the Node client names it COMPLETE, REST
  // JSON FINISHED_SUCCESS. Report the current name so callers never see two spellings.
  const raw = d.discovery.analysisStatus || 'ANALYSIS_STATUS_UNSPECIFIED';
  const analysisStatus = raw === 'COMPLETE' ? 'FINISHED_SUCCESS' : raw;
  const status = discoveryStatus(analysisStatus);
  const out: Discovery = {
    resourceUri: `https://${formatImageRef({ ...image, tag: null })}`,
    image,
    status,
    analysisStatus,
    isVulnerabilityScan: (d.noteName ?? '').endsWith('/notes/PACKAGE_VULNERABILITY'),
  };
  const errors = [d.discovery.analysisStatusError, ...(d.discovery.analysisError ?? [])]
    .map((e) => e?.message)
    .filter((m): m is string => !!m);
  if (errors.length > 0) out.analysisError = [...new Set(errors)].join('; ').slice(0, 2000);
  if (status !== 'pending') {
    const at = timestampToIso(d.discovery.lastScanTime) ?? timestampToIso(d.updateTime);
    if (at) out.completedAt = at;
  }
  return out;
}

const GRAFEAS_SEVERITIES: Readonly<Record<string, Severity>> = {
  MINIMAL: 'MINIMAL',
  LOW: 'LOW',
  MEDIUM: 'MEDIUM',
  HIGH: 'HIGH',
  CRITICAL: 'CRITICAL',
};

/** First of the given Grafeas severities that is set; SEVERITY_UNSPECIFIED counts as unset. */
function pickSeverity(...values: Array<string | null | undefined>): Severity {
  for (const v of values) {
    const s = v ? GRAFEAS_SEVERITIES[v] : undefined;
    if (s) return s;
  }
  return 'UNSPECIFIED';
}

function score(v: number | string | null | undefined): number | null {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 && n <= 10 ? n : null;
}

/**
 * Debian-style `[epoch:]name[-revision]` (Grafeas' own fullName when given, which has that form);
 * epoch 0 is left out, as dpkg prints it.
 */
export function formatGrafeasVersion(v: GrafeasVersion | null | undefined): string | null {
  if (!v) return null;
  if (v.fullName) return v.fullName;
  if (!v.name) return null;
  const epoch = Number(v.epoch ?? 0);
  return `${epoch > 0 ? `${epoch}:` : ''}${v.name}${v.revision ? `-${v.revision}` : ''}`;
}

const VULN_ID_RE = /^[A-Z][A-Z0-9]*-[A-Za-z0-9][\w.:-]*$/;
const ALIAS_IN_URL_RE = /\b(CVE-\d{4}-\d{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})\b/gi;

function vulnerabilityId(
  noteName: string | null | undefined,
  shortDescription: string | null | undefined,
): string | null {
  const fromNote = noteName ? noteName.slice(noteName.lastIndexOf('/') + 1) : '';
  if (VULN_ID_RE.test(fromNote)) return fromNote;
  if (shortDescription && VULN_ID_RE.test(shortDescription)) return shortDescription;
  return null;
}

function aliasesFrom(
  id: string,
  shortDescription: string | null | undefined,
  urls: readonly string[],
): string[] {
  const found = new Set<string>();
  if (shortDescription && shortDescription !== id && VULN_ID_RE.test(shortDescription)) {
    found.add(shortDescription);
  }
  for (const url of urls) {
    for (const m of url.matchAll(ALIAS_IN_URL_RE)) {
      const raw = m[1] ?? '';
      // CVE ids are upper case; GHSA ids are GHSA- plus lower-case groups.
      const alias = /^cve/i.test(raw) ? raw.toUpperCase() : `GHSA${raw.slice(4).toLowerCase()}`;
      if (alias !== id) found.add(alias);
    }
  }
  return [...found].slice(0, 50);
}

function isObjectWith(o: unknown, key: string): boolean {
  return typeof o === 'object' && o !== null && key in o;
}

function fixStateOf(
  issue: z.infer<typeof PackageIssue>,
  occurrenceFixAvailable: boolean | null | undefined,
  fixedVersion: string | null,
): FixState {
  // MAXIMUM means "every version is affected": Grafeas' way of saying there is no fix.
  if (issue.fixedVersion?.kind === 'MAXIMUM') return 'not-fixed';
  if (fixedVersion !== null || issue.fixAvailable === true) return 'fixed';
  if (occurrenceFixAvailable === true) return 'fixed';
  return 'unknown';
}

/**
 * One Finding per packageIssue of a VULNERABILITY occurrence. Severity: the issue's
 * effectiveSeverity, else the occurrence's effectiveSeverity, else its severity. CVSS: cvssv3's
 * baseScore, else cvssScore (which holds the v2 score on older notes).
 */
export function findingsFromVulnerabilityOccurrence(o: unknown): Finding[] {
  const occ = parseInput(VulnerabilityOccurrence, o, 'VULNERABILITY occurrence');
  if (occ.kind && occ.kind !== 'VULNERABILITY') {
    throw new InvalidInputError(`invalid VULNERABILITY occurrence: kind is ${kindOf(occ.kind)}`);
  }
  const v = occ.vulnerability;
  // The retired v1beta1 shape (resource.uri, affectedLocation) is named before anything else is
  // read, so its error says what to change rather than which field happened to be missing first.
  const issues0 = v.packageIssue ?? [];
  // Through the v1 client the v1beta1 fields are dropped as unknown, leaving package issues with
  // no affectedPackage at all (a field every v1 package issue has): that is the same form.
  if (
    (!occ.resourceUri && isObjectWith(o, 'resource')) ||
    issues0.some((i) => i.affectedLocation !== undefined && !i.affectedPackage) ||
    (issues0.length > 0 && issues0.every((i) => !i.affectedPackage))
  ) {
    throw new InvalidInputError(
      'invalid VULNERABILITY occurrence: this is the retired Grafeas v1beta1 form (resource.uri, packageIssue.affectedLocation); read occurrences through the Container Analysis v1 API',
      { details: { issues: [{ path: 'vulnerability.packageIssue', message: 'v1beta1 form' }] } },
    );
  }
  const id = vulnerabilityId(occ.noteName, v.shortDescription);
  if (id === null) {
    throw new InvalidInputError(
      'invalid VULNERABILITY occurrence: no vulnerability id in noteName or shortDescription',
    );
  }
  const urls = (v.relatedUrls ?? []).map((u) => u.url ?? '').filter((u) => u !== '');
  const aliases = aliasesFrom(id, v.shortDescription, urls);
  const cvss = score(v.cvssv3?.baseScore) ?? score(v.cvssScore) ?? score(v.cvssV2?.baseScore);
  const issues = v.packageIssue ?? [];
  if (issues.length === 0) {
    throw new InvalidInputError(`invalid VULNERABILITY occurrence ${id}: no packageIssue`);
  }
  return issues.map((issue, i): Finding => {
    if (!issue.affectedPackage) {
      const why = issue.affectedLocation
        ? ' (affectedLocation is the retired v1beta1 form; read occurrences through the v1 API)'
        : '';
      throw new InvalidInputError(
        `invalid VULNERABILITY occurrence ${id}: packageIssue.${i}.affectedPackage is missing${why}`,
      );
    }
    const fixedVersion =
      issue.fixedVersion?.kind === 'MAXIMUM' ? null : formatGrafeasVersion(issue.fixedVersion);
    return {
      id,
      aliases,
      package: issue.affectedPackage.slice(0, 500),
      packageType: issue.packageType ? issue.packageType : null,
      installedVersion: (formatGrafeasVersion(issue.affectedVersion) ?? '').slice(0, 500),
      fixedVersion: fixedVersion?.slice(0, 500) ?? null,
      fixState: fixStateOf(issue, v.fixAvailable, fixedVersion),
      severity: pickSeverity(issue.effectiveSeverity, v.effectiveSeverity, v.severity),
      cvss,
      source: 'container-analysis',
      description: v.longDescription ? v.longDescription.slice(0, 2000) : null,
      url: urls[0]?.slice(0, 2000) ?? null,
    };
  });
}

// ---------------------------------------------------------------- Pub/Sub notifications

const OCCURRENCE_NAME_RE =
  /^projects\/([a-z0-9][a-z0-9.:-]{0,99})\/(?:locations\/([a-z0-9-]{1,63})\/)?occurrences\/([A-Za-z0-9_-]{1,128})$/;

export const OccurrenceNotification = z.object({
  name: z
    .string()
    .max(400)
    .refine((n) => !n.includes('$'), 'contains an unexpanded placeholder ($…)')
    .refine((n) => OCCURRENCE_NAME_RE.test(n), 'must be projects/P/occurrences/ID'),
  kind: z.string().regex(/^[A-Z][A-Z_]{0,63}$/, 'must be a Grafeas note kind such as DISCOVERY'),
  notificationTime: z.string().max(100).optional(),
});

export interface NotificationKind {
  name: string;
  kind: string;
  project: string;
  location: string | null;
  occurrenceId: string;
  notificationTime: string | null;
  /** Only DISCOVERY notifications can mean "a scan finished"; everything else is ignored without I/O. */
  isDiscovery: boolean;
}

/**
 * Reads a container-analysis-occurrences-v1 message: JSON text, its bytes, or the parsed object.
 * Cheap on purpose: the handler calls it for hundreds of VULNERABILITY notifications per image.
 */
export function notificationKind(msg: unknown): NotificationKind {
  let body = msg;
  if (typeof msg === 'string' || msg instanceof Uint8Array) {
    const bytes = typeof msg === 'string' ? Buffer.from(msg) : msg;
    if (bytes.length > 4096) {
      throw new InvalidInputError('invalid occurrence notification: larger than 4096 bytes');
    }
    body = parseJsonBytes(bytes, 'invalid occurrence notification');
  }
  const n = parseInput(OccurrenceNotification, body, 'occurrence notification');
  const m = OCCURRENCE_NAME_RE.exec(n.name) as RegExpExecArray;
  return {
    name: n.name,
    kind: n.kind,
    project: m[1] as string,
    location: m[2] ?? null,
    occurrenceId: m[3] as string,
    notificationTime: n.notificationTime ? timestampToIso(n.notificationTime) : null,
    isDiscovery: n.kind === 'DISCOVERY',
  };
}
