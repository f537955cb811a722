// CI scanner reports (Trivy, Grype, cosign vuln) and OpenVEX documents → findings, VEX statements, re-evaluation.
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../errors.js';
import { type ParsedReport, parseReport } from '../findings/reports.js';
import { type ImageRef, imageDocId, parseImageRef } from '../image-ref/image-ref.js';
import type { EventMeta } from '../ledger/ledger-store.js';
import { emptyImageRecord } from '../ledger/ledger-store.js';
import { readProvenance } from '../provenance/provenance.js';
import type { Effect } from './effects.js';
import { settle } from './registry-ingest.js';
import { type ScanDeps, storeScan } from './scan-ingest.js';

export interface ReportOutcome {
  format: ParsedReport['format'] | 'provenance';
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
  if (isSlsaProvenance(input.body)) return ingestProvenance(deps, input, now);
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

const isSlsaType = (t: unknown) =>
  typeof t === 'string' && t.startsWith('https://slsa.dev/provenance/');

/** An in-toto statement, bare or in a DSSE envelope, whose predicate is SLSA provenance (not a vuln report). */
function isSlsaProvenance(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const o = body as Record<string, unknown>;
  if (typeof o.payloadType === 'string' && typeof o.payload === 'string') {
    try {
      return isSlsaType(
        (JSON.parse(Buffer.from(o.payload, 'base64').toString('utf8')) as Record<string, unknown>)
          .predicateType,
      );
    } catch {
      return false;
    }
  }
  return isSlsaType(o.predicateType);
}

/**
 * SLSA provenance uploaded by CI (an in-toto Statement or a DSSE envelope around one): recorded on
 * each subject image the ledger can name, which is then re-evaluated.
 */
async function ingestProvenance(
  deps: Omit<ScanDeps, 'occurrences'>,
  input: { body: unknown; raw: string; image: string | null },
  now: Date,
): Promise<ReportOutcome> {
  const result = readProvenance(input.body);
  const given = input.image ? parseImageRef(input.image) : null;
  if (given && !given.digest)
    throw new InvalidInputError('the image must be given by digest (REGISTRY/REPO@sha256:…)');
  const targets: { registry: string; repository: string; digest: string }[] = [];
  for (const s of result.subjects) {
    const digest = s.digest.startsWith('sha256:') ? s.digest : null;
    if (!digest) continue;
    if (given) {
      if (given.digest === digest)
        targets.push({ registry: given.registry, repository: given.repository, digest });
      continue;
    }
    try {
      const ref = parseImageRef(s.name ?? '');
      targets.push({ registry: ref.registry, repository: ref.repository, digest });
    } catch {
      // a subject named by a file path or a bare name: only ?image= can place it
    }
  }
  if (targets.length === 0) {
    throw new InvalidInputError(
      'the provenance names no image this ledger can place: pass ?image=REGISTRY/REPO@sha256:… matching a subject',
    );
  }
  const contentHash = createHash('sha256').update(input.raw).digest('hex').slice(0, 40);
  const reevaluate: string[] = [];
  for (const t of targets) {
    const id = imageDocId(t.registry, t.repository, t.digest);
    const meta = {
      source: 'provenance',
      messageId: `${contentHash}:${id}`.slice(0, 600),
      at: now.toISOString(),
    };
    const r = await deps.ledger.transact<Effect>(
      id,
      meta,
      (current) => ({
        record: { ...(current ?? emptyImageRecord(id, t, now)), provenance: result.provenance },
        audit: {
          kind: 'provenance',
          builderId: result.provenance.builderId,
          sourceRepository: result.provenance.sourceRepository,
          predicateType: result.predicateType,
        },
        effects: (_prev, next) => [{ kind: 'reevaluate', imageId: next.id }],
      }),
      { now },
    );
    await settle(deps, meta, r);
    reevaluate.push(id);
  }
  return {
    format: 'provenance',
    image:
      targets.length === 1
        ? `${targets[0]?.registry}/${targets[0]?.repository}@${targets[0]?.digest}`
        : null,
    findings: 0,
    vex: 0,
    outcome: 'recorded',
    reevaluate,
  };
}
