// CI scanner reports (Trivy, Grype, cosign vuln) and OpenVEX documents → findings, VEX statements, re-evaluation.
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../errors.js';
import { type ParsedReport, parseReport } from '../findings/reports.js';
import { type ImageRef, imageDocId, parseImageRef } from '../image-ref/image-ref.js';
import type { EventMeta } from '../ledger/ledger-store.js';
import type { Effect } from './effects.js';
import { type ScanDeps, storeScan } from './scan-ingest.js';

export interface ReportOutcome {
  format: ParsedReport['format'];
  image: string | null;
  findings: number;
  vex: number;
  outcome: string;
  reevaluate: string[];
}

const DIGEST_REF = /^[^@\s]+@sha256:[0-9a-f]{64}$/;

/** The one image a report is about: the `image` parameter, or the single digest reference the report names. */
function subjectOf(
  param: string | null,
  report: ParsedReport,
): (ImageRef & { digest: string }) | null {
  const candidates = param
    ? [param]
    : [...new Set(report.subjects.filter((s) => DIGEST_REF.test(s)))];
  if (candidates.length !== 1) return null;
  const ref = parseImageRef(candidates[0] as string);
  if (!ref.digest)
    throw new InvalidInputError('the image must be given by digest (REGISTRY/REPO@sha256:…)');
  return { ...ref, digest: ref.digest };
}

export async function ingestReport(
  deps: Omit<ScanDeps, 'occurrences'>,
  input: { body: unknown; raw: string; image: string | null; caller: string },
  now: Date,
): Promise<ReportOutcome> {
  const report = parseReport(input.body);
  const contentHash = createHash('sha256').update(input.raw).digest('hex');
  const meta: EventMeta = {
    source: `report-${report.format}`,
    messageId: contentHash.slice(0, 40),
    at: now.toISOString(),
  };
  const subject = subjectOf(input.image, report);
  const reevaluate = new Set<string>();
  if (report.vex.length > 0) {
    await deps.vex.save(report.vex);
    // Statements that name an image by digest re-evaluate it now; repository-wide ones apply at the next evaluation.
    for (const s of report.vex) {
      for (const p of s.products) {
        try {
          const ref = parseImageRef(p.replace(/^pkg:oci\/[^@]+@/, ''));
          if (ref.digest) reevaluate.add(imageDocId(ref.registry, ref.repository, ref.digest));
        } catch {
          // purls and globs without a registry name are matched at evaluation time
        }
      }
    }
  }
  if (subject && report.vex.length > 0)
    reevaluate.add(imageDocId(subject.registry, subject.repository, subject.digest));
  let outcome = 'recorded';
  if (report.format !== 'openvex') {
    if (!subject) {
      throw new InvalidInputError(
        'cannot tell which image the report is about: pass ?image=REGISTRY/REPO@sha256:… (the report names none, or several)',
      );
    }
    const source = report.findings[0]?.source ?? (report.format === 'grype' ? 'grype' : 'trivy');
    outcome = await storeScan(
      deps,
      {
        registry: subject.registry,
        repository: subject.repository,
        digest: subject.digest,
        source,
        scanner: report.scanner ?? report.format,
        scanRef: `${report.createdAt ?? now.toISOString()}#${contentHash.slice(0, 8)}`,
        completedAt: report.createdAt ?? now.toISOString(),
        status: 'finished',
        findings: report.findings,
      },
      meta,
      now,
    );
    reevaluate.delete(imageDocId(subject.registry, subject.repository, subject.digest));
  }
  const effects: Effect[] = [...reevaluate].map((id) => ({ kind: 'reevaluate', imageId: id }));
  await deps.publisher.publish(effects);
  return {
    format: report.format,
    image: subject ? `${subject.registry}/${subject.repository}@${subject.digest}` : null,
    findings: report.findings.length,
    vex: report.vex.length,
    outcome,
    reevaluate: [...reevaluate],
  };
}
