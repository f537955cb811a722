// Provenance reaches the ledger two ways: uploaded SLSA statements (ingestReport) and Cloud Build BUILD occurrences found next to a scan.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GrafeasServer, startGrafeasServer } from '../../../scripts/lib/grafeas-server.js';
import { fixedClock } from '../../../shared/clock.js';
import { grafeasOccurrenceReader } from '../../../shared/findings/store/occurrences.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { emptyImageRecord, FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import { createLogger } from '../../../shared/logging/logger.js';
import type { Effect, EffectPublisher } from '../../../shared/pipeline/effects.js';
import { storeReport } from '../../../shared/pipeline/report-ingest.js';
import { ingestOccurrenceNotification } from '../../../shared/pipeline/scan-ingest.js';
import { firestorePolicySource } from '../../../shared/policy/store/policy-source.js';
import { firestoreVexStore } from '../../../shared/policy/store/vex-store.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';
import { fixture, fixtureText } from '../real-world-fixtures.js';

describeWithEmulators('provenance ingestion', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  const ledger = new FirestoreLedger(db);
  const published: Effect[] = [];
  const publisher = {
    publish: async (e: readonly Effect[]) => void published.push(...e),
  } satisfies EffectPublisher;
  const clock = fixedClock('2026-11-29T10:00:00Z');
  const deps = {
    ledger,
    policy: firestorePolicySource(db, clock),
    vex: firestoreVexStore(db),
    publisher,
    logger: createLogger({ sink: () => {} }),
  };
  let grafeas: GrafeasServer;

  beforeAll(async () => {
    grafeas = await startGrafeasServer();
  });
  afterAll(async () => {
    await grafeas.close();
    await db.terminate();
  });

  it('keeps an uploaded DSSE-wrapped SLSA statement no policy signer signed as unverified evidence on the image', async () => {
    const raw = fixtureText('slsa/dsse-envelope-slsa-v0.2-github-actions.json');
    const digest = 'sha256:2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd';
    const id = imageDocId('ghcr.io', 'acme/tool', digest);
    const now = clock.now();
    const name = { registry: 'ghcr.io', repository: 'acme/tool', digest };
    await ledger.transact(
      id,
      { source: 'test-seed', messageId: id, at: now.toISOString() },
      () => ({ record: emptyImageRecord(id, name, now), audit: { kind: 'registry-push' } }),
      { now },
    );
    const out = await storeReport(
      deps,
      { body: JSON.parse(raw), raw, image: `ghcr.io/acme/tool@${digest}`, caller: 'test' },
      now,
    );
    // The real envelope was signed keylessly; a bare envelope carries no certificate, and the
    // policy names no signer: it is read, kept and shown, but it is not the image's provenance.
    expect(out).toMatchObject({ format: 'provenance', verified: false });
    const image = await ledger.getImage(id);
    expect(image?.provenance).toBeNull();
    expect(image?.unverified).toEqual([
      expect.objectContaining({
        kind: 'provenance',
        claim: expect.stringContaining(
          'builder https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.10.0',
        ),
        uploader: 'test',
      }),
    ]);
    expect(published).toContainEqual({ kind: 'reevaluate', imageId: id });
  });

  it('refuses provenance whose subjects do not include the given image', async () => {
    const raw = fixtureText('slsa/dsse-envelope-slsa-v0.2-github-actions.json');
    await expect(
      storeReport(
        deps,
        {
          body: JSON.parse(raw),
          raw,
          image: `ghcr.io/acme/tool@sha256:${'1'.repeat(64)}`,
          caller: 'test',
        },
        clock.now(),
      ),
    ).rejects.toThrow(/names no image/);
  });

  it('reads Cloud Build provenance from the BUILD occurrence when the scan finishes', async () => {
    const build = fixture<{ provenance_summary: { provenance: Record<string, unknown>[] } }>(
      'containeranalysis/ca-build-occurrence-slsa-v1-cloudbuild.json',
    ).provenance_summary.provenance[0] as Record<string, unknown>;
    const digest = `sha256:${'a'.repeat(64)}`;
    const resourceUri = `https://us-docker.pkg.dev/acme/apps/api@${digest}`;
    grafeas.put({ ...build, name: 'projects/p/occurrences/build-1', kind: 'BUILD', resourceUri });
    grafeas.put({
      name: 'projects/p/occurrences/disc-1',
      kind: 'DISCOVERY',
      noteName: 'projects/goog-analysis/notes/PACKAGE_VULNERABILITY',
      resourceUri,
      discovery: { analysisStatus: 'FINISHED_SUCCESS', lastScanTime: '2026-11-29T09:00:00Z' },
      updateTime: '2026-11-29T09:00:00Z',
    });
    const outcome = await ingestOccurrenceNotification(
      { ...deps, occurrences: grafeasOccurrenceReader({ endpoint: grafeas.url }) },
      {
        name: 'projects/p/occurrences/disc-1',
        kind: 'DISCOVERY',
        notificationTime: '2026-11-29T09:00:01Z',
      },
      { source: 'container-analysis', messageId: 'm-1', at: '2026-11-29T09:00:01Z' },
      clock.now(),
    );
    expect(outcome).toBe('applied');
    const image = await ledger.getImage(imageDocId('us-docker.pkg.dev', 'acme/apps/api', digest));
    expect(image?.scan.status).toBe('finished');
    expect(image?.provenance?.source).toBe('cloud-build');
    expect(image?.provenance?.sourceRepository).toContain('github.com/khalkie/gcb-prod-prov');
    expect(
      grafeas.requests.some(
        (r) => r.path.endsWith('/occurrences') && r.authorization === 'Bearer local-token',
      ),
    ).toBe(true);
  });
});
