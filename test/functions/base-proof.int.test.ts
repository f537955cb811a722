// Base claims proven at push through onRegistryPush, against images pushed with skopeo to the local docker-registry: honest, forged, rebuilt on a patched base, multi-platform, and without labels.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../scripts/lib/local-registry.js';
import {
  type BaseLayers,
  skopeoCopy,
  type WrittenImage,
  writeOciImage,
  writeOciIndex,
} from '../../scripts/lib/oci-image.js';
import { firestoreBaseLayerStore } from '../../shared/bases/base-store.js';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { followBaseTags } from '../../shared/pipeline/base-watcher.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { createRegistryClient } from '../../shared/registry/client.js';
import { BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION } from '../../shared/registry/schemas.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators } from '../support/integration.js';
import { createEffectTopics, docData, ingestEnv, pushMessage, testDb } from './support.js';

describeWithEmulators('base claims proven at push (onRegistryPush, local registry)', () => {
  let db: Firestore;
  let pubsub: PubSub;
  let registry: LocalRegistry;
  let layout: string;
  let push: FunctionServer;
  let base: WrittenImage;
  let baseDigest: string;
  let patched: WrittenImage;
  let patchedDigest: string;
  let baseRef: string;

  const labels = (digest: string, name = baseRef) => ({
    owner: 'team-payments',
    [BASE_NAME_ANNOTATION]: name,
    [BASE_DIGEST_ANNOTATION]: digest,
  });

  async function pushApp(
    repo: string,
    files: Record<string, string>,
    baseLayers: BaseLayers | undefined,
    appLabels?: Record<string, string>,
  ): Promise<ImageRecord> {
    const ref = repo.replaceAll('/', '-');
    writeOciImage(layout, { ref, files, baseLayers, config: { user: '65532', labels: appLabels } });
    const digest = await skopeoCopy(layout, `${registry.host}/${repo}:v1`, { ref });
    const { status } = await pushMessage(push, 'gcr', {
      action: 'INSERT',
      digest: `${registry.host}/${repo}@${digest}`,
      tag: `${registry.host}/${repo}:v1`,
    });
    expect(status).toBe(204);
    return ImageRecord.parse(
      await docData(db, `images/${imageDocId(registry.host, repo, digest)}`),
    );
  }

  beforeAll(async () => {
    const env = ingestEnv('proof', { CLEARANCE_REGISTRY_INSECURE_HOSTS: '127.0.0.1:*' });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    registry = await startLocalRegistry({
      port: 'free',
      group: `test-${process.pid}`,
      ephemeral: true,
    });
    await storePolicy(db, {
      source: `apiVersion: clearance/v1
environments: { prod: { mode: enforce }, dev: { mode: enforce, rules: { baseImage: { verifyLayers: warn } } } }
rules:
  baseImage:
    allowed: ["${registry.host}/base/**"]
    unknown: deny
    verifyLayers: enforce
`,
      format: 'yaml',
      appliedBy: 'test',
      now: new Date(),
    });
    await import('../../functions/on-registry-push/index.js');
    push = await serveFunction('onRegistryPush');
    layout = mkdtempSync(join(tmpdir(), 'clearance-proof-'));
    baseRef = `${registry.host}/base/runtime:1`;
    base = writeOciImage(layout, { ref: 'base', files: { 'etc/os-release': 'runtime 1.0\n' } });
    baseDigest = await skopeoCopy(layout, baseRef, { ref: 'base' });
    patched = writeOciImage(layout, {
      ref: 'patched',
      files: { 'etc/os-release': 'runtime 1.1\n' },
    });
    patchedDigest = await skopeoCopy(layout, baseRef, { ref: 'patched' });
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await push?.close();
    await Promise.all([db?.terminate(), pubsub?.close()]);
    if (layout) rmSync(layout, { recursive: true, force: true });
  });

  it('an honest image: its base verified, allowed', async () => {
    const rec = await pushApp(
      'team/honest',
      { 'app.txt': 'honest\n' },
      base.stack,
      labels(baseDigest),
    );
    expect(rec.base).toMatchObject({
      name: baseRef,
      digest: baseDigest,
      source: 'label',
      verification: { status: 'verified', baseLayers: 1 },
    });
    expect(rec.verdicts.prod).toMatchObject({ decision: 'allow', reasons: [] });
  });

  it('a forged label: denied at push, naming the first differing layer; warned where verifyLayers is warn', async () => {
    const other = writeOciImage(layout, {
      ref: 'elsewhere',
      files: { 'etc/os-release': 'elsewhere\n' },
    });
    const rec = await pushApp(
      'team/forged',
      { 'app.txt': 'forged\n' },
      other.stack,
      labels(baseDigest),
    );
    expect(rec.base?.verification?.status).toBe('mismatch');
    expect(rec.verdicts.prod?.decision).toBe('deny');
    expect(rec.verdicts.prod?.reasons).toEqual([
      expect.objectContaining({
        ruleId: 'base-image.layers',
        level: 'deny',
        message: expect.stringContaining(
          `layer 1 of the base's 1 differs: the image has ${other.layerDigest.slice(0, 19)}…`,
        ),
        remediation: expect.stringContaining(`rebuild FROM ${baseRef}@${baseDigest}`),
      }),
    ]);
    expect(rec.verdicts.dev).toMatchObject({ decision: 'allow' });
    expect(rec.verdicts.dev?.reasons.map((r) => [r.ruleId, r.level])).toEqual([
      ['base-image.layers', 'warn'],
    ]);
  });

  it('an image rebuilt on the patched base: verified against the new digest', async () => {
    const rec = await pushApp(
      'team/rebuilt',
      { 'app.txt': 'rebuilt\n' },
      patched.stack,
      labels(patchedDigest),
    );
    expect(rec.base).toMatchObject({ digest: patchedDigest, verification: { status: 'verified' } });
    expect(rec.verdicts.prod?.decision).toBe('allow');
  });

  it('a multi-platform index: each platform verified against the same platform of the base index', async () => {
    const baseIndex = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64', files: { 'os.txt': 'amd64 base\n' } },
        { os: 'linux', architecture: 'arm64', variant: 'v8', files: { 'os.txt': 'arm64 base\n' } },
      ],
      { ref: 'base-multi' },
    );
    const multiRef = `${registry.host}/base/multi:1`;
    const multiDigest = await skopeoCopy(layout, multiRef, { ref: 'base-multi' });
    const claim = { [BASE_NAME_ANNOTATION]: multiRef, [BASE_DIGEST_ANNOTATION]: multiDigest };
    const [amd, arm] = baseIndex.children;
    // Labels on the index only: the platforms inherit the claim and are each checked.
    const app = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64', baseLayers: amd.stack, config: { user: '1' } },
        {
          os: 'linux',
          architecture: 'arm64',
          variant: 'v8',
          baseLayers: arm.stack,
          config: { user: '1' },
        },
      ],
      { ref: 'app-multi', annotations: claim },
    );
    const digest = await skopeoCopy(layout, `${registry.host}/team/multi:v1`, { ref: 'app-multi' });
    await pushMessage(push, 'gcr', {
      action: 'INSERT',
      digest: `${registry.host}/team/multi@${digest}`,
      tag: `${registry.host}/team/multi:v1`,
    });
    const index = ImageRecord.parse(
      await docData(db, `images/${imageDocId(registry.host, 'team/multi', digest)}`),
    );
    expect(index.base).toMatchObject({
      name: multiRef,
      digest: multiDigest,
      source: 'annotation',
      verification: { status: 'verified' },
    });
    for (const child of app.children) {
      const rec = ImageRecord.parse(
        await docData(
          db,
          `images/${imageDocId(registry.host, 'team/multi', child.manifestDigest)}`,
        ),
      );
      expect(rec.base).toMatchObject({
        name: multiRef,
        verification: { status: 'verified', baseLayers: 1 },
      });
    }

    // The arm64 image built on the amd64 base: that platform is caught, and the index names it.
    const crossed = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64', baseLayers: amd.stack, files: { 'x.txt': 'a\n' } },
        {
          os: 'linux',
          architecture: 'arm64',
          variant: 'v8',
          baseLayers: amd.stack,
          files: { 'x.txt': 'b\n' },
        },
      ],
      { ref: 'crossed', annotations: claim },
    );
    const crossedDigest = await skopeoCopy(layout, `${registry.host}/team/crossed:v1`, {
      ref: 'crossed',
    });
    await pushMessage(push, 'gcr', {
      action: 'INSERT',
      digest: `${registry.host}/team/crossed@${crossedDigest}`,
      tag: `${registry.host}/team/crossed:v1`,
    });
    const crossedIndex = ImageRecord.parse(
      await docData(db, `images/${imageDocId(registry.host, 'team/crossed', crossedDigest)}`),
    );
    expect(crossedIndex.base?.verification?.status).toBe('mismatch');
    expect(crossedIndex.base?.verification?.detail).toMatch(
      /^linux\/arm64\/v8: layer 1 of the base's 1 differs/,
    );
    // The platform's own push event (distribution sends one per manifest) evaluates it with the inherited claim.
    const armDigest = crossed.children[1].manifestDigest;
    await pushMessage(push, 'gcr', {
      action: 'INSERT',
      digest: `${registry.host}/team/crossed@${armDigest}`,
    });
    const armChild = ImageRecord.parse(
      await docData(db, `images/${imageDocId(registry.host, 'team/crossed', armDigest)}`),
    );
    expect(armChild.base?.verification?.status).toBe('mismatch');
    expect(armChild.verdicts.prod?.decision).toBe('deny');
    expect(armChild.verdicts.prod?.reasons[0]?.ruleId).toBe('base-image.layers');
  });

  it('an image without labels: its base inferred from the tracked base tag and recorded as such', async () => {
    // The watcher follows the tracked tag and caches its layers.
    const client = createRegistryClient({ insecureHosts: ['127.0.0.1:*'] });
    const watched = await followBaseTags(
      {
        db,
        registry: client,
        ledger: new FirestoreLedger(db),
        publisher: { publish: async () => {} },
        bases: { store: firestoreBaseLayerStore(db), registry: client },
      },
      [baseRef],
      new Date(),
    );
    expect(watched.bases[0]).toMatchObject({ name: baseRef, digest: patchedDigest });
    const rec = await pushApp('team/bare', { 'app.txt': 'no labels\n' }, patched.stack);
    expect(rec.labels).not.toHaveProperty(BASE_NAME_ANNOTATION);
    expect(rec.base).toMatchObject({
      name: baseRef,
      digest: patchedDigest,
      source: 'layers',
      verification: { status: 'verified' },
    });
    expect(rec.verdicts.prod).toMatchObject({ decision: 'allow', reasons: [] });
    // Built on nothing tracked: the base stays unknown, which this policy denies.
    const stray = await pushApp('team/stray', { 'app.txt': 'stray\n' }, undefined);
    expect(stray.base).toBeNull();
    expect(stray.verdicts.prod?.reasons.map((r) => r.ruleId)).toEqual(['base-image.unknown']);
  });
});
