// Completed scans → ledger: fetch the discovery occurrence, list the image's vulnerabilities, store, evaluate.
import { createHash } from 'node:crypto';
import { errorMessage, isRetryable } from '../errors.js';
import {
  type Discovery,
  findingsFromVulnerabilityOccurrence,
  notificationKind,
  parseDiscoveryOccurrence,
} from '../findings/container-analysis.js';
import { type Finding, findingKey, type VexStatement } from '../findings/finding.js';
import type { OccurrenceReader } from '../findings/store/occurrences.js';
import type { ImageRecord, Provenance } from '../image-record.js';
import { imageDocId } from '../image-ref/image-ref.js';
import type { FixSightingStore } from '../ledger/fix-sightings.js';
import type { UseCaseLedger } from '../ledger/image-ledger.js';
import type { EventMeta, ScanResult } from '../ledger/ledger-store.js';
import type { Logger } from '../logging/logger.js';
import type { PolicySource } from '../policy/store/policy-source.js';
import type { VexStore } from '../policy/store/vex-store.js';
import { provenanceFromBuildOccurrence } from '../provenance/provenance.js';
import { computeEffects, type Effect, type EffectPublisher } from './effects.js';
import { verdictsFor } from './evaluator.js';
import { settle } from './registry-ingest.js';

export interface ScanDeps {
  ledger: UseCaseLedger;
  occurrences: OccurrenceReader;
  policy: PolicySource;
  vex: VexStore;
  publisher: EffectPublisher;
  logger: Logger;
  /** Records when each fix was first seen (fix grace periods); absent: no grace can apply. */
  fixes?: FixSightingStore;
}

export type ScanOutcome = 'applied' | 'duplicate' | 'stale' | 'ignored';

/** Unique findings by key, first wins: the same CVE in one package is listed once per source. */
export function dedupeFindings(findings: readonly Finding[]): Finding[] {
  const seen = new Map<string, Finding>();
  for (const f of findings) if (!seen.has(findingKey(f))) seen.set(findingKey(f), f);
  return [...seen.values()];
}

/**
 * Stores one source's scan and evaluates the image with every current finding (this source's new
 * ones plus those of other sources) and the VEX statements that name it.
 */
export async function storeScan(
  deps: Omit<ScanDeps, 'occurrences'>,
  scan: ScanResult,
  meta: EventMeta,
  now: Date,
): Promise<ScanOutcome> {
  const snapshot = await deps.policy.current();
  // The record is read before the transaction for the VEX statements naming it (a query, too large
  // to hold inside a transaction that may retry); the ledger reads every current finding inside it.
  const before = await deps.ledger.getImage(
    imageDocId(scan.registry, scan.repository, scan.digest),
  );
  const vex: VexStatement[] = before ? await deps.vex.forImage(before) : [];
  // Before the transaction, and kept even if it retries: a fix seen once stays seen at that time.
  // The other sources' findings are read here only to record sightings (the transaction reads
  // the chunks again for the verdict).
  let sightings: Awaited<ReturnType<NonNullable<typeof deps.fixes>['record']>> = [];
  if (deps.fixes && scan.status === 'finished') {
    const others: Finding[] = before
      ? await deps.ledger.getFindings(
          before,
          Object.keys(before.scanRefs).filter((s) => s !== scan.source),
        )
      : [];
    sightings = await deps.fixes.record([...scan.findings, ...others], now);
  }
  const result = await deps.ledger.applyScan<Effect>(scan, meta, now, {
    evaluate: (rec: ImageRecord, all: Finding[]) =>
      scan.status === 'scanning' ? null : verdictsFor(snapshot, rec, all, vex, now, sightings),
    effects: (prev, next, all) => computeEffects(prev, next, all, now),
  });
  await settle(deps, meta, result);
  return result.outcome;
}

/**
 * Provenance from the image's Cloud Build BUILD occurrence, when there is one. A BUILD occurrence
 * the client cannot decode (old SLSA v0.1 recipes carry an Any it does not know) is skipped, not fatal.
 */
async function buildProvenance(
  deps: Pick<ScanDeps, 'occurrences' | 'logger'>,
  project: string,
  resourceUri: string,
): Promise<Provenance | null> {
  let builds: unknown[];
  try {
    builds = await deps.occurrences.listBuilds(project, resourceUri);
  } catch (err) {
    if (isRetryable(err) && !(err instanceof Error && /decode|Any|type url/i.test(err.message)))
      throw err;
    deps.logger.warn('BUILD occurrences could not be read; provenance left as it was', {
      resourceUri,
      reason: errorMessage(err),
    });
    return null;
  }
  for (const b of builds) {
    try {
      return provenanceFromBuildOccurrence(b).provenance;
    } catch (err) {
      deps.logger.warn('BUILD occurrence without usable provenance', {
        resourceUri,
        reason: errorMessage(err),
      });
    }
  }
  return null;
}

/** Most occurrences a scan keeps as dead letters when they cannot be read; the rest are counted in the log. */
const MAX_BAD_OCCURRENCES = 20;

/**
 * Findings of every readable occurrence. One unreadable occurrence must not lose the scan: it is
 * kept as a dead letter with its raw JSON, and the rest of the scan is stored.
 */
async function readFindings(
  deps: Pick<ScanDeps, 'ledger' | 'logger'>,
  occurrences: unknown[],
  meta: EventMeta,
  now: Date,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  let bad = 0;
  for (const o of occurrences) {
    try {
      findings.push(...findingsFromVulnerabilityOccurrence(o));
    } catch (err) {
      if (isRetryable(err)) throw err;
      bad += 1;
      if (bad > MAX_BAD_OCCURRENCES) continue;
      const name = (o as { name?: unknown })?.name;
      await deps.ledger.recordDeadLetter(
        {
          source: 'container-analysis-occurrence',
          reason: errorMessage(err),
          raw: JSON.stringify(o) ?? 'null',
          messageId: `${meta.messageId}:${typeof name === 'string' ? name : bad}`,
        },
        now,
      );
    }
  }
  if (bad > 0)
    deps.logger.warn(
      'unreadable vulnerability occurrences dead-lettered; the rest of the scan is stored',
      { bad, kept: Math.min(bad, MAX_BAD_OCCURRENCES) },
    );
  return findings;
}

function scanRefOf(d: Discovery, occurrence: unknown): string {
  // The completion time orders scans of one image; the hash separates two scans finished in the same instant.
  const update = (occurrence as { updateTime?: unknown })?.updateTime;
  const tail = createHash('sha256')
    .update(JSON.stringify(update ?? d.completedAt ?? ''))
    .digest('hex')
    .slice(0, 8);
  return `${d.completedAt ?? '0000'}#${tail}`;
}

export async function ingestOccurrenceNotification(
  deps: ScanDeps,
  body: unknown,
  meta: EventMeta,
  now: Date,
): Promise<ScanOutcome> {
  const note = notificationKind(body);
  // Hundreds of VULNERABILITY notifications arrive per image: drop them before any I/O.
  if (!note.isDiscovery) return 'ignored';
  const occurrence = await deps.occurrences.getOccurrence(note.name);
  const discovery = parseDiscoveryOccurrence(occurrence);
  if (!discovery.isVulnerabilityScan) return 'ignored';
  const { registry, repository, digest } = discovery.image;
  const scanRef = scanRefOf(discovery, occurrence);
  const base = {
    registry,
    repository,
    digest,
    source: 'container-analysis' as const,
    scanner: 'artifact-analysis',
    scanRef,
  };
  switch (discovery.status) {
    case 'pending':
      return storeScan(
        deps,
        { ...base, status: 'scanning', completedAt: now.toISOString(), findings: [] },
        meta,
        now,
      );
    case 'failed':
    case 'unsupported':
      return storeScan(
        deps,
        {
          ...base,
          status: 'failed',
          completedAt: discovery.completedAt ?? now.toISOString(),
          failureReason: `${discovery.analysisStatus}${discovery.analysisError ? `: ${discovery.analysisError}` : ''}`,
          findings: [],
        },
        meta,
        now,
      );
    case 'success': {
      const [occurrences, provenance] = await Promise.all([
        deps.occurrences.listVulnerabilities(note.project, discovery.resourceUri),
        buildProvenance(deps, note.project, discovery.resourceUri),
      ]);
      const findings = dedupeFindings(await readFindings(deps, occurrences, meta, now));
      deps.logger.info('scan finished', {
        resourceUri: discovery.resourceUri,
        occurrences: occurrences.length,
        findings: findings.length,
      });
      return storeScan(
        deps,
        {
          ...base,
          status: 'finished',
          completedAt: discovery.completedAt ?? now.toISOString(),
          findings,
          provenance,
        },
        meta,
        now,
      );
    }
    default: {
      const never: never = discovery.status;
      throw new Error(`unknown discovery status ${String(never)}`);
    }
  }
}
