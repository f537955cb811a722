// CI uploads → ledger: scanner reports for known images, signed provenance and VEX (verified), unsigned claims kept as unverified evidence.
import { InvalidInputError, TransientError } from '../errors.js';
import type { VexStatement } from '../findings/finding.js';
import type { ParsedReport } from '../findings/reports.js';
import { MAX_UNVERIFIED_EVIDENCE, type UnverifiedEvidence } from '../image-record.js';
import {
  type ImageRef,
  imageDocId,
  parseImageRef,
  referenceFromPurl,
} from '../image-ref/image-ref.js';
import type { EventMeta } from '../ledger/image-ledger.js';
import { emptyImageRecord } from '../ledger/ledger-store.js';
import type { ProvenanceResult } from '../provenance/provenance.js';
import { eventTime } from '../trust/event-time.js';
import { createEvidenceVerifier, type TrustedRootJson } from '../trust/signed-evidence.js';
import {
  attributeVex,
  contentId,
  provenanceClaim,
  readUpload,
  type UploadTrust,
  unverifiedEntry,
} from '../trust/uploads.js';
import type { Effect } from './effects.js';
import { type ScanDeps, storeScan } from './scan-ingest.js';

export interface ReportOutcome {
  format: ParsedReport['format'] | 'provenance';
  image: string | null;
  findings: number;
  vex: number;
  outcome: string;
  reevaluate: string[];
  /** Provenance and VEX: whether a policy signer's signature verified (false: kept, not obeyed). */
  verified?: boolean;
  signer?: string | null;
  reason?: string;
}

export type ReportDeps = Omit<ScanDeps, 'occurrences'> & {
  /** Sigstore trusted root for keyless signatures; absent or null: only key signatures verify. */
  trustedRoot?: () => Promise<TrustedRootJson | null>;
};

const DIGEST_REF = /^[^@\s]+@sha256:[0-9a-f]{64}$/;

/** The one image a report is about: the `image` parameter, or the single digest reference the report names. */
function subjectOf(
  param: string | null,
  subjects: readonly string[],
): (ImageRef & { digest: string }) | null {
  if (param) {
    const ref = parseImageRef(param);
    if (!ref.digest)
      throw new InvalidInputError('the image must be given by digest (REGISTRY/REPO@sha256:…)');
    return { ...ref, digest: ref.digest };
  }
  // One image is often named several ways (`keycloak/keycloak@sha256:X` and
  // `docker.io/keycloak/keycloak:21.0.2@sha256:X`): compared as parsed references, not as text.
  const byImage = new Map<string, ImageRef & { digest: string }>();
  for (const s of subjects) {
    if (!DIGEST_REF.test(s)) continue;
    let ref: ImageRef;
    try {
      ref = parseImageRef(s);
    } catch {
      continue;
    }
    if (!ref.digest) continue;
    const key = `${ref.name}@${ref.digest}`;
    if (!byImage.has(key)) byImage.set(key, { ...ref, tag: null, digest: ref.digest });
  }
  if (byImage.size !== 1) return null;
  return [...byImage.values()][0] ?? null;
}

export async function storeReport(
  deps: ReportDeps,
  input: { body: unknown; raw: string; image: string | null; caller: string },
  now: Date,
): Promise<ReportOutcome> {
  const snapshot = await deps.policy.current();
  const verifier = createEvidenceVerifier({
    signers: snapshot?.policy.trust.signers ?? [],
    trustedRoot: (await deps.trustedRoot?.()) ?? null,
  });
  const upload = await readUpload(input.body, verifier);
  switch (upload.kind) {
    case 'provenance':
      return ingestProvenance(deps, input, upload.provenance, upload.trust, now);
    case 'vex':
      return ingestVex(deps, input, upload.statements, upload.subjects, upload.trust, now);
    case 'report':
      return ingestScanReport(deps, input, upload.report, now);
    default: {
      const never: never = upload;
      throw new Error(`unhandled upload ${String(never)}`);
    }
  }
}

function trustFields(trust: UploadTrust): Pick<ReportOutcome, 'verified' | 'signer' | 'reason'> {
  return trust.verified
    ? { verified: true, signer: trust.signer.name }
    : { verified: false, signer: null, reason: trust.reason };
}

/** A scanner report counts only from an allowed uploader (authenticated before this) and only for an image the ledger knows. */
/** The reason a report for an image the ledger does not hold (yet) is answered "retry later". */
export const IMAGE_NOT_RECORDED = 'image-not-recorded';

async function ingestScanReport(
  deps: ReportDeps,
  input: { raw: string; image: string | null; caller: string },
  report: ParsedReport,
  now: Date,
): Promise<ReportOutcome> {
  const subject = subjectOf(input.image, report.subjects);
  if (!subject) {
    throw new InvalidInputError(
      'cannot tell which image the report is about: pass ?image=REGISTRY/REPO@sha256:… (the report names none, or several)',
    );
  }
  const id = imageDocId(subject.registry, subject.repository, subject.digest);
  // Not refused: a CI job uploads right after its push, often before the push event is recorded.
  if (!(await deps.ledger.getImage(id)))
    throw new TransientError(
      `${subject.registry}/${subject.repository}@${subject.digest} is not in the ledger yet: reports count only for images pushed through a registry Clearance watches; retry once the push is recorded`,
      { code: 'conflict', details: { reason: IMAGE_NOT_RECORDED, imageId: id } },
    );
  const contentHash = contentId(input.raw);
  const meta: EventMeta = {
    source: `report-${report.format}`,
    // Per image: the same bytes uploaded for two images (an empty report) are two events.
    messageId: `${contentHash}:${id}`.slice(0, 600),
    at: now.toISOString(),
  };
  const source = report.findings[0]?.source ?? (report.format === 'grype' ? 'grype' : 'trivy');
  // The report's own creation time is a claim: kept, clamped near the upload.
  const completedAt = eventTime(now, report.createdAt).claimedAt ?? now.toISOString();
  const outcome = await storeScan(
    deps,
    {
      registry: subject.registry,
      repository: subject.repository,
      digest: subject.digest,
      source,
      scanner: report.scanner ?? report.format,
      database: report.database,
      uploader: input.caller,
      scanRef: `${completedAt}#${contentHash.slice(0, 8)}`,
      completedAt,
      status: 'finished',
      findings: report.findings,
    },
    meta,
    now,
  );
  return {
    format: report.format,
    image: `${subject.registry}/${subject.repository}@${subject.digest}`,
    findings: report.findings.length,
    vex: 0,
    outcome,
    reevaluate: [],
  };
}

/** Images a VEX statement names by digest (repository-wide products apply at the next evaluation). */
function vexTargets(statements: readonly VexStatement[], given: string | null): string[] {
  const ids = new Set<string>();
  for (const s of statements)
    for (const p of s.products) {
      try {
        const ref = parseImageRef(p.replace(/^pkg:oci\/[^@]+@/, '').replace('%3A', ':'));
        if (ref.digest) ids.add(imageDocId(ref.registry, ref.repository, ref.digest));
      } catch {
        // purls and globs without a registry name are matched at evaluation time
      }
    }
  if (given) {
    const ref = parseImageRef(given);
    if (ref.digest) ids.add(imageDocId(ref.registry, ref.repository, ref.digest));
  }
  return [...ids];
}

/**
 * VEX statements are stored with their author, signer and channel; only signed ones apply, the
 * others are shown (evaluation reads both). Images they name by digest are re-evaluated.
 */
async function ingestVex(
  deps: ReportDeps,
  input: { image: string | null; caller: string },
  statements: VexStatement[],
  _subjects: string[],
  trust: UploadTrust,
  _now: Date,
): Promise<ReportOutcome> {
  const kept = attributeVex(statements, trust, `report:${input.caller}`);
  await deps.vex.save(kept);
  const reevaluate = vexTargets(kept, input.image);
  await deps.publisher.publish(reevaluate.map((id) => ({ kind: 'reevaluate', imageId: id })));
  return {
    format: 'openvex',
    image: input.image,
    findings: 0,
    vex: kept.length,
    outcome: 'recorded',
    reevaluate,
    ...trustFields(trust),
  };
}

/** The images a provenance statement is about: its subjects, placed by `?image=` or their own names. */
function provenanceTargets(result: ProvenanceResult, image: string | null) {
  const given = image ? parseImageRef(image) : null;
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
      const name = s.name ?? '';
      // BuildKit names subjects pkg:docker/<registry>/<image>@<tag>?platform=…
      const ref = parseImageRef(referenceFromPurl(name) ?? name);
      if (ref.digest !== null && ref.digest !== digest) continue;
      if (
        !targets.some(
          (t) =>
            imageDocId(t.registry, t.repository, t.digest) ===
            imageDocId(ref.registry, ref.repository, digest),
        )
      )
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
  return targets;
}

/**
 * SLSA provenance: verified, it is recorded on each subject image with its signer; unverified, it
 * is kept on each subject the ledger already knows as unverified evidence and changes nothing else.
 */
async function ingestProvenance(
  deps: ReportDeps,
  input: { raw: string; image: string | null; caller: string },
  result: ProvenanceResult,
  trust: UploadTrust,
  now: Date,
): Promise<ReportOutcome> {
  const targets = provenanceTargets(result, input.image);
  const contentHash = contentId(input.raw);
  const reevaluate: string[] = [];
  for (const t of targets) {
    const id = imageDocId(t.registry, t.repository, t.digest);
    const meta = {
      source: trust.verified ? 'provenance' : 'provenance-unverified',
      messageId: `${contentHash}:${id}`.slice(0, 600),
      at: now.toISOString(),
    };
    const r = await deps.ledger.transact<Effect, 'unknown-image'>(
      id,
      meta,
      (current) => {
        if (trust.verified)
          return {
            record: {
              ...(current ?? emptyImageRecord(id, t, now)),
              provenance: { ...result.provenance, signer: trust.signer.name },
            },
            audit: {
              kind: 'provenance',
              builderId: result.provenance.builderId,
              sourceRepository: result.provenance.sourceRepository,
              predicateType: result.predicateType,
              container: result.container,
              bundleMediaType: result.bundleMediaType ?? null,
              signer: trust.signer.name,
              signerIdentity: trust.signer.identity,
              uploader: input.caller,
            },
            effects: (_prev, next) => [{ kind: 'reevaluate', imageId: next.id }],
          };
        // Unverified claims never create an image, and never touch its provenance.
        if (!current) return { skip: 'unknown-image', marker: true };
        const entry: UnverifiedEvidence = unverifiedEntry(
          'provenance',
          trust,
          provenanceClaim(result),
          input.caller,
          now,
        );
        return {
          record: {
            ...current,
            unverified: [...current.unverified, entry].slice(-MAX_UNVERIFIED_EVIDENCE),
          },
          audit: { ...entry, kind: 'provenance-unverified' },
          effects: (_prev, next) => [{ kind: 'reevaluate', imageId: next.id }],
        };
      },
      { now },
    );
    await deps.ledger.settle(meta, r.effects, (e) => deps.publisher.publish(e));
    if (r.outcome === 'applied') reevaluate.push(id);
  }
  return {
    format: 'provenance',
    image:
      targets.length === 1
        ? `${targets[0]?.registry}/${targets[0]?.repository}@${targets[0]?.digest}`
        : null,
    findings: 0,
    vex: 0,
    outcome: reevaluate.length > 0 ? 'recorded' : 'unknown-image',
    reevaluate,
    ...trustFields(trust),
  };
}
