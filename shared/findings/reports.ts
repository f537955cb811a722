// Detects which scanner report a CI upload is (Trivy, Grype, OpenVEX, cosign vuln attestation) and normalises it.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { parseInput } from '../parse-input.js';
import type { Finding, VexStatement } from './finding.js';
import { parseGrype } from './grype.js';
import { parseOpenVex } from './openvex.js';
import { parseTrivy, type ScannerReport } from './trivy.js';

export const REPORT_FORMATS = ['trivy', 'grype', 'openvex', 'cosign-vuln'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ParsedReport {
  format: ReportFormat;
  findings: Finding[];
  vex: VexStatement[];
  /** Image references/digests (or VEX product ids) the report says it is about, as written. */
  subjects: string[];
  /** e.g. "trivy 0.50.1", "grype 0.28.0"; null for VEX. */
  scanner: string | null;
  createdAt: string | null;
  /** Findings the scanner itself marked not affected (Trivy), left out of findings. */
  notAffected: number;
  /** The vulnerability database the scanner used, when the report says (Grype, cosign); kept even without findings. */
  database?: string | null;
}

export const COSIGN_VULN_PREDICATE_TYPE = 'https://cosign.sigstore.dev/attestation/vuln/v1';

const CosignVulnPredicate = z.object({
  scanner: z.object({
    uri: z.string().max(2000).nullish(),
    version: z.string().max(200).nullish(),
    result: z.unknown().optional(),
  }),
  metadata: z
    .object({ scanStartedOn: z.string().nullish(), scanFinishedOn: z.string().nullish() })
    .nullish(),
});

const InTotoSubject = z.object({
  name: z.string().max(2000).nullish(),
  digest: z.record(z.string(), z.string().max(200)).nullish(),
});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Detected = 'trivy' | 'grype' | 'openvex' | 'cosign-vuln' | null;

function isBareCosignPredicate(p: unknown): boolean {
  return isObject(p) && isObject(p.scanner) && 'result' in p.scanner;
}

function detect(json: Record<string, unknown>): Detected {
  if ('SchemaVersion' in json) return 'trivy';
  if (Array.isArray(json.matches)) return 'grype';
  if (typeof json['@context'] === 'string' && json['@context'].startsWith('https://openvex.dev/ns'))
    return 'openvex';
  if (isObject(json.scanner) && 'result' in json.scanner) return 'cosign-vuln';
  if (json.predicateType === COSIGN_VULN_PREDICATE_TYPE && isObject(json.predicate)) {
    return 'cosign-vuln';
  }
  // The cosign spec's own example: `{"predicate": {...}}` with no predicateType around it.
  if (json.predicateType === undefined && isBareCosignPredicate(json.predicate)) {
    return 'cosign-vuln';
  }
  return null;
}

function parseCosignVuln(json: Record<string, unknown>): ParsedReport {
  // An in-toto Statement around the predicate names the image in its subjects.
  const statementSubjects: string[] = [];
  let predicate: unknown = json;
  if (json.predicateType === undefined && isBareCosignPredicate(json.predicate)) {
    predicate = json.predicate;
  } else if (json.predicateType === COSIGN_VULN_PREDICATE_TYPE) {
    predicate = json.predicate;
    const subjects = parseInput(
      z.array(InTotoSubject).max(1000).nullish(),
      json.subject,
      'cosign vulnerability attestation subject',
    );
    for (const s of subjects ?? []) {
      const sha = s.digest?.sha256;
      if (s.name && sha) statementSubjects.push(`${s.name}@sha256:${sha}`);
      else if (sha) statementSubjects.push(`sha256:${sha}`);
      else if (s.name) statementSubjects.push(s.name);
    }
  }
  const p = parseInput(CosignVulnPredicate, predicate, 'cosign vulnerability predicate');
  const result = p.scanner.result;
  if (!isObject(result)) {
    // Accepting it would record a clean scan that never happened.
    throw new InvalidInputError(
      'invalid cosign vulnerability predicate: scanner.result is empty, so it carries no findings to ingest (embed Trivy or Grype JSON)',
      { details: { issues: [{ path: 'scanner.result', message: 'empty' }] } },
    );
  }
  const inner = detect(result);
  let parsed: ScannerReport;
  if (inner === 'trivy') parsed = parseTrivy(result);
  else if (inner === 'grype') parsed = parseGrype(result);
  else {
    throw new InvalidInputError(
      'invalid cosign vulnerability predicate: scanner.result is neither Trivy nor Grype JSON',
    );
  }
  return {
    format: 'cosign-vuln',
    vex: [],
    ...parsed,
    subjects: [...new Set([...statementSubjects, ...parsed.subjects])],
    createdAt: p.metadata?.scanFinishedOn ?? parsed.createdAt,
  };
}

/**
 * Detects the report's format and normalises it; findings are de-duplicated by findingKey.
 * Accepts parsed JSON or its text. Throws InvalidInputError naming the issues (path + message).
 */
export function parseReport(json: unknown): ParsedReport {
  const parsed = parseReportBody(json);
  return { ...parsed, database: databaseOf(json) };
}

/** Which vulnerability database produced a report: Grype's descriptor.db, cosign's scanner.db. */
function databaseOf(json: unknown): string | null {
  let body = json;
  if (typeof json === 'string') {
    try {
      body = JSON.parse(json);
    } catch {
      return null;
    }
  }
  if (!isObject(body)) return null;
  const pick = (o: unknown, ...path: string[]): string | null => {
    let cur = o;
    for (const k of path) cur = isObject(cur) ? cur[k] : undefined;
    return typeof cur === 'string' || typeof cur === 'number' ? String(cur).slice(0, 200) : null;
  };
  const grype = (d: unknown) =>
    pick(d, 'descriptor', 'db', 'status', 'built') ??
    pick(d, 'descriptor', 'db', 'built') ??
    pick(d, 'descriptor', 'db', 'status', 'schemaVersion');
  const predicate = isObject(body.predicate) ? body.predicate : body;
  const scanner = isObject(predicate) ? predicate.scanner : undefined;
  return (
    grype(body) ??
    pick(scanner, 'db', 'version') ??
    pick(scanner, 'db', 'uri') ??
    (isObject(scanner) ? grype(scanner.result) : null)
  );
}

function parseReportBody(json: unknown): ParsedReport {
  let body = json;
  if (typeof json === 'string') {
    try {
      body = JSON.parse(json);
    } catch (err) {
      throw new InvalidInputError('invalid report: not JSON', { cause: err });
    }
  }
  if (!isObject(body)) throw new InvalidInputError('invalid report: expected a JSON object');
  const format = detect(body);
  switch (format) {
    case 'trivy':
      return { format, vex: [], ...parseTrivy(body) };
    case 'grype':
      return { format, vex: [], ...parseGrype(body) };
    case 'openvex': {
      const { vex, subjects } = parseOpenVex(body);
      return {
        format,
        findings: [],
        vex,
        subjects,
        scanner: null,
        createdAt: null,
        notAffected: 0,
      };
    }
    case 'cosign-vuln':
      return parseCosignVuln(body);
    case null:
      throw new InvalidInputError(
        'invalid report: not Trivy JSON (SchemaVersion), Grype JSON (matches), OpenVEX (@context), a cosign vulnerability predicate (scanner.result), or SLSA provenance (an in-toto Statement, DSSE envelope or Sigstore bundle)',
      );
    default: {
      const never: never = format;
      throw new Error(`unhandled format ${String(never)}`);
    }
  }
}
