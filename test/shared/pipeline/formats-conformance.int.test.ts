// Issue 14 through the upload path (ingestReport against the Firestore emulator): bundles, BuildKit subjects, one image named two ways, Docker Hub VEX keys.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { fixedClock } from '../../../shared/clock.js';
import { parseOpenVex } from '../../../shared/findings/openvex.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { emptyImageRecord, FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import { createLogger } from '../../../shared/logging/logger.js';
import type { Effect, EffectPublisher } from '../../../shared/pipeline/effects.js';
import { storeReport } from '../../../shared/pipeline/report-ingest.js';
import { firestorePolicySource } from '../../../shared/policy/store/policy-source.js';
import { firestoreVexStore } from '../../../shared/policy/store/vex-store.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';
import { fixture, fixtureText } from '../real-world-fixtures.js';

type Json = Record<string, unknown>;

describeWithEmulators('formats through ingestReport (issue 14)', () => {
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

  afterAll(async () => {
    await db.terminate();
  });

  function upload(body: unknown, image: string | null = null) {
    const raw = JSON.stringify(body);
    return storeReport(deps, { body, raw, image, caller: 'test' }, clock.now());
  }

  /** Uploads count only for images the ledger knows (docs/trust.md): record the push first. */
  async function seed(registry: string, repository: string, digest: string): Promise<string> {
    const id = imageDocId(registry, repository, digest);
    await ledger.transact(
      id,
      { source: 'test-push', messageId: `seed-${id}`, at: clock.now().toISOString() },
      (current) => ({
        record: current ?? emptyImageRecord(id, { registry, repository, digest }, clock.now()),
        audit: { kind: 'push' },
      }),
      { now: clock.now() },
    );
    return id;
  }

  async function auditOf(id: string): Promise<Json[]> {
    const snap = await db.collection('images').doc(id).collection('audit').get();
    return snap.docs.map((d) => d.data());
  }

  it('3. a Sigstore bundle gets the provenance error path, not the scanner-report one', async () => {
    // sigstore-go's bundle: SLSA v0.2 for an npm package (sha512 subject) — no image to place it on.
    const bundle = fixture('sigstore/bundle-v0.1-slsa-v0.2-npm.sigstore.json');
    await expect(upload(bundle)).rejects.toThrow(/the provenance names no image/);
    await expect(upload(bundle)).rejects.not.toThrow(/not Trivy JSON/);
    // sigstore-js' v0.3 bundle carries an npm publish attestation: refused as not SLSA provenance.
    await expect(
      upload(fixture('sigstore/bundle-v0.3-dsse-npm-publish.sigstore.json')),
    ).rejects.toThrow(/invalid Sigstore bundle dsseEnvelope: .*is not SLSA provenance/);
  });

  it("3. a v0.3 bundle around slsa-github-generator's envelope is recorded exactly as the bare envelope is, marked unverified", async () => {
    // The structure slsa-github-generator v2 writes: sigstore-js' real v0.3 bundle, with the real
    // generator DSSE envelope (slsa/dsse-envelope-slsa-v0.2-github-actions.json) as its content.
    const bundle = {
      ...fixture<Json>('sigstore/bundle-v0.3-dsse-npm-publish.sigstore.json'),
      dsseEnvelope: fixture('slsa/dsse-envelope-slsa-v0.2-github-actions.json'),
    };
    const digest = 'sha256:2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd';
    const id = await seed('ghcr.io', 'acme/bundled', digest);
    const bareId = await seed('ghcr.io', 'acme/bare', digest);
    const out = await upload(bundle, `ghcr.io/acme/bundled@${digest}`);
    // Unsigned by any policy signer: kept as unverified evidence, never the image's provenance.
    expect(out).toMatchObject({ format: 'provenance', outcome: 'recorded', verified: false });
    const image = await ledger.getImage(id);
    // Same record as the bare envelope gives: a bundle counts no more than that.
    const bare = fixtureText('slsa/dsse-envelope-slsa-v0.2-github-actions.json');
    await upload(JSON.parse(bare), `ghcr.io/acme/bare@${digest}`);
    const bareImage = await ledger.getImage(bareId);
    expect(image?.provenance).toBeNull();
    expect(image?.provenance).toEqual(bareImage?.provenance);
    expect(image?.unverified.map((u) => [u.kind, u.claim])).toEqual(
      bareImage?.unverified.map((u) => [u.kind, u.claim]),
    );
    expect(await auditOf(id)).toContainEqual(
      expect.objectContaining({ kind: 'provenance-unverified' }),
    );
  });

  it('7. BuildKit provenance: the pkg:docker subject is placed on its image, the source without its #commit', async () => {
    const digest = 'sha256:e8275b2b76280af67e26f068e5d585eb905f8dfd2f1918b3229db98133cb4862';
    const id = await seed('registry.example.com', 'team/app', digest);
    const out = await upload(fixture('slsa/buildkit-slsa-v0.2-git-context.json'));
    expect(out.image).toBe(`registry.example.com/team/app@${digest}`);
    // Unsigned: the claim is kept (source without its #commit), not obeyed.
    const image = await ledger.getImage(id);
    expect(image?.unverified.at(-1)?.claim).toContain('source https://github.com/moby/buildkit');
    expect(image?.unverified.at(-1)?.claim).not.toContain('#');
  });

  it('7. BuildKit docs example: its placeholder subject cannot be placed, and says so', async () => {
    await expect(upload(fixture('slsa/buildkit-slsa-v0.2-mode-min-docs.json'))).rejects.toThrow(
      /names no image this ledger can place/,
    );
  });

  it('10. one image named two ways in one report is one subject', async () => {
    // A real Trivy report, with the two namings Trivy writes for an image pulled by tag and digest.
    const report = fixture<{ ArtifactName: string; Metadata: Json }>(
      'scanners/trivy-debian-buster.json',
    );
    const digest = `sha256:${'5'.repeat(64)}`;
    await seed('docker.io', 'keycloak/keycloak', digest);
    report.ArtifactName = `docker.io/keycloak/keycloak:21.0.2@${digest}`;
    report.Metadata = {
      ...report.Metadata,
      RepoDigests: [`keycloak/keycloak@${digest}`],
      RepoTags: ['keycloak/keycloak:21.0.2'],
    };
    const out = await upload(report);
    expect(out.image).toBe(`docker.io/keycloak/keycloak@${digest}`);
    // Two different images still need ?image=.
    report.Metadata = { ...report.Metadata, RepoDigests: [`keycloak/other@${digest}`] };
    await expect(upload(report)).rejects.toThrow(/pass \?image=/);
  });

  it("5. Trivy's own VEX (index.docker.io products) is found by a docker.io image's lookup", async () => {
    const doc = fixture('vex/trivy-oci.openvex.json');
    await upload(doc);
    const found = await deps.vex.forImage({
      registry: 'docker.io',
      repository: 'aquasec/trivy',
      digest: `sha256:${'6'.repeat(64)}`,
      parents: [],
    });
    const expected = parseOpenVex(doc).vex.map((s) => s.vulnerability);
    expect(new Set(found.map((s) => s.vulnerability))).toEqual(new Set(expected));
  });
});
