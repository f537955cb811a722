// The ledger's pure parts without an emulator: state machine, record bookkeeping, tag index, enrichment merge, scan summary.
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../../shared/findings/finding.js';
import { type Attestation, ImageRecord } from '../../../shared/image-record.js';
import { applyEnrichment, type Enrichment, maxIso } from '../../../shared/ledger/enrichment.js';
import {
  applyScanSummary,
  emptyImageRecord,
  verdictChanges,
} from '../../../shared/ledger/ledger-store.js';
import { deriveState, finishRecord } from '../../../shared/ledger/state.js';
import { resolveTagDoc, tagDocId } from '../../../shared/ledger/tag-index.js';
import type { Verdict } from '../../../shared/verdict.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function record(overrides: Partial<ImageRecord> = {}): ImageRecord {
  return {
    ...emptyImageRecord('id', { registry: 'gcr.io', repository: 'p/app', digest: D1 }, NOW),
    ...overrides,
  };
}

function verdict(decision: Verdict['decision'], mode: Verdict['mode'] = 'enforce'): Verdict {
  return {
    environment: 'prod',
    decision,
    mode,
    reasons: [],
    policyHash: 'sha256:p',
    evaluatedAt: NOW.toISOString(),
  };
}

const attestation = (revokedAt: string | null = null): Attestation => ({
  format: 'binauthz',
  keyId: 'k',
  policyHash: 'sha256:p',
  occurrence: null,
  envelope: null,
  createdAt: NOW.toISOString(),
  revokedAt,
  revokedReason: revokedAt ? 'r' : null,
});

describe('image state, derived from the facts', () => {
  it('follows pushed → scanning → evaluated → attested', () => {
    expect(deriveState(record({ pushedAt: 'a' }))).toBe('pushed');
    const scanning = record({ scan: { ...record().scan, status: 'scanning' } });
    expect(deriveState(scanning)).toBe('scanning');
    expect(deriveState({ ...scanning, verdicts: { prod: verdict('pending') } })).toBe('scanning');
    expect(deriveState({ ...scanning, verdicts: { prod: verdict('allow') } })).toBe('evaluated');
    expect(deriveState(record({ attestations: [attestation()] }))).toBe('attested');
  });

  it('an enforced deny is denied, or revoked once it had attestations; a dry-run deny is only evaluated', () => {
    expect(deriveState(record({ verdicts: { prod: verdict('deny') } }))).toBe('denied');
    expect(deriveState(record({ verdicts: { prod: verdict('deny', 'dryrun') } }))).toBe(
      'evaluated',
    );
    expect(
      deriveState(
        record({ verdicts: { prod: verdict('deny') }, attestations: [attestation('x')] }),
      ),
    ).toBe('revoked');
    expect(deriveState(record({ attestations: [attestation('x')] }))).toBe('revoked');
  });

  it('a delete wins unless the image was pushed again after it, whatever the arrival order', () => {
    expect(deriveState(record({ pushedAt: '2026-01-01', deletedAt: '2026-01-02' }))).toBe(
      'deleted',
    );
    expect(deriveState(record({ pushedAt: '2026-01-03', deletedAt: '2026-01-02' }))).toBe('pushed');
    expect(deriveState(record({ deletedAt: '2026-01-02' }))).toBe('deleted');
  });

  it('every write bumps the version, stamps the time and re-derives the state', () => {
    const before = record({ version: 4, state: 'pushed', verdicts: { prod: verdict('deny') } });
    const after = finishRecord(before, '2026-12-01T00:00:00.000Z');
    expect(after).toMatchObject({
      version: 5,
      updatedAt: '2026-12-01T00:00:00.000Z',
      state: 'denied',
    });
    expect(before.version).toBe(4);
    expect(() => ImageRecord.parse(after)).not.toThrow();
  });

  it('verdict changes list only environments whose decision moved', () => {
    const prev = record({ verdicts: { prod: verdict('allow'), dev: verdict('allow') } });
    const next = record({
      verdicts: { prod: verdict('deny'), dev: verdict('allow'), qa: verdict('pending') },
    });
    expect(verdictChanges(prev, next)).toEqual([
      { environment: 'prod', from: 'allow', to: 'deny' },
      { environment: 'qa', from: null, to: 'pending' },
    ]);
    expect(verdictChanges(null, record())).toEqual([]);
  });
});

describe('tag index', () => {
  it('ids are path-safe', () => {
    expect(tagDocId('gcr.io', 'p/app', 'v1')).toBe('gcr.io~p~app:v1');
  });

  it('resolves to the latest push, in any arrival order', () => {
    expect(resolveTagDoc({ pushes: { [D1]: '2026-01-01', [D2]: '2026-01-02' } })).toBe(D2);
    expect(resolveTagDoc({ pushes: { [D2]: '2026-01-02', [D1]: '2026-01-01' } })).toBe(D2);
    // Same instant: the larger digest, so every reader agrees.
    expect(resolveTagDoc({ pushes: { [D1]: 't', [D2]: 't' } })).toBe(D2);
  });

  it('skips a digest deleted after its push and stops at a tag delete after the latest push', () => {
    expect(
      resolveTagDoc({
        pushes: { [D1]: '2026-01-01', [D2]: '2026-01-02' },
        deletes: { [D2]: '2026-01-03' },
      }),
    ).toBe(D1);
    expect(
      resolveTagDoc({ pushes: { [D1]: '2026-01-01' }, tagDeletes: { m: '2026-01-02' } }),
    ).toBeNull();
    expect(resolveTagDoc({ pushes: { [D1]: '2026-01-03' }, tagDeletes: { m: '2026-01-02' } })).toBe(
      D1,
    );
    expect(resolveTagDoc({})).toBeNull();
  });
});

describe('enrichment merge', () => {
  const enrichment: Enrichment = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    platforms: [],
    created: '2026-01-01T00:00:00Z',
    user: 'nonroot',
    labels: { owner: 'team-a', tier: '1' },
    base: { name: 'docker.io/library/debian:12', digest: D2 },
  };

  it('takes what the registry said and keeps what it did not say', () => {
    const rec = record({ labels: { kept: 'yes' }, owner: 'old', user: 'root' });
    const out = applyEnrichment(rec, { ...enrichment, created: null });
    expect(out).toMatchObject({
      mediaType: enrichment.mediaType,
      user: 'nonroot',
      owner: 'team-a',
      created: null,
      labels: { kept: 'yes', owner: 'team-a', tier: '1' },
      base: { name: 'docker.io/library/debian:12', digest: D2, status: 'unknown' },
    });
  });

  it("keeps the watcher's classification of the base and a base the event does not name", () => {
    const rec = record({
      base: {
        name: 'docker.io/library/debian:12',
        digest: D1,
        status: 'stale',
        supersededAt: 's',
        currentDigest: D2,
        source: 'annotation',
        verification: null,
      },
    });
    expect(applyEnrichment(rec, enrichment).base).toMatchObject({
      digest: D2,
      status: 'stale',
      supersededAt: 's',
      currentDigest: D2,
    });
    expect(applyEnrichment(rec, { ...enrichment, base: null }).base).toBe(rec.base);
    expect(applyEnrichment(rec, { ...enrichment, base: { name: null, digest: null } }).base).toBe(
      rec.base,
    );
  });

  it('orders times as the later of two, either missing', () => {
    expect(maxIso('2026-01-01', '2026-01-02')).toBe('2026-01-02');
    expect(maxIso(null, '2026-01-02')).toBe('2026-01-02');
    expect(maxIso('2026-01-01', undefined)).toBe('2026-01-01');
    expect(maxIso(null, null)).toBeNull();
  });
});

describe('scan summary and current findings', () => {
  const finding = (id: string, severity: Finding['severity'] = 'HIGH') =>
    ({
      id,
      package: 'openssl',
      installedVersion: '1',
      fixedVersion: '2',
      severity,
      fixState: 'fixed',
      source: 'container-analysis',
    }) as Finding;
  const scan = {
    registry: 'gcr.io',
    repository: 'p/app',
    digest: D1,
    source: 'container-analysis' as const,
    scanner: 'artifact-analysis',
    scanRef: 'r2',
    completedAt: '2026-01-02',
    findings: [finding('CVE-1'), finding('CVE-2', 'LOW')],
  };

  it('a finished scan records counts and its reference; a scanning one keeps the last result', () => {
    const done = applyScanSummary(record(), { ...scan, status: 'finished' });
    expect(done.scan).toMatchObject({ status: 'finished', scanner: 'artifact-analysis' });
    expect(done.scan.counts?.total).toBe(2);
    expect(done.scanRefs).toEqual({ 'container-analysis': 'r2' });
    const again = applyScanSummary(done, { ...scan, scanRef: 'r3', status: 'scanning' });
    expect(again.scan.status).toBe('finished');
    expect(again.scanRefs).toEqual({ 'container-analysis': 'r2' });
    const failed = applyScanSummary(done, { ...scan, status: 'failed', failureReason: 'boom' });
    expect(failed.scan).toMatchObject({ status: 'failed', counts: null, failureReason: 'boom' });
  });

  it("two scanners' runs give the same record in either order: the image's scan is the run that completed last", () => {
    const aa = { ...scan, status: 'finished' as const };
    const trivy = {
      ...scan,
      source: 'trivy' as const,
      scanner: 'trivy',
      scanRef: '2026-01-03#abc',
      completedAt: '2026-01-03',
      findings: [{ ...finding('CVE-3', 'LOW'), source: 'trivy' as const }],
      status: 'finished' as const,
    };
    const aaThenTrivy = applyScanSummary(applyScanSummary(record(), aa), trivy);
    const trivyThenAa = applyScanSummary(applyScanSummary(record(), trivy), aa);
    expect(trivyThenAa).toEqual(aaThenTrivy);
    expect(aaThenTrivy.scan).toMatchObject({ scanner: 'trivy', completedAt: '2026-01-03' });
    expect(Object.keys(aaThenTrivy.scans).sort()).toEqual(['artifact-analysis', 'trivy']);
    // A rescan that completed later takes the summary back, whatever arrived before it.
    const rescan = { ...aa, scanRef: 'r4', completedAt: '2026-01-04' };
    expect(applyScanSummary(trivyThenAa, rescan).scan).toMatchObject({
      scanner: 'artifact-analysis',
      completedAt: '2026-01-04',
    });
    // A scan still running elsewhere does not hide the finished run of another scanner.
    const running = applyScanSummary(aaThenTrivy, { ...aa, scanRef: 'r5', status: 'scanning' });
    expect(running.scan).toMatchObject({ status: 'finished', scanner: 'trivy' });
  });
});
