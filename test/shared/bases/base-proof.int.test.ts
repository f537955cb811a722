// Base claims proven against a real registry (docker-registry, images pushed with skopeo) with the cache in the Firestore emulator.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../../scripts/lib/local-registry.js';
import {
  type BaseLayers,
  skopeoCopy,
  type WrittenImage,
  writeOciImage,
  writeOciIndex,
} from '../../../scripts/lib/oci-image.js';
import {
  type BaseProofDeps,
  indexBase,
  proveBase,
  trackBaseDigest,
} from '../../../shared/bases/base-proof.js';
import { firestoreBaseLayerStore } from '../../../shared/bases/base-store.js';
import { OpCounter } from '../../../shared/ledger/ledger-store.js';
import { createRegistryClient, type ImageDescription } from '../../../shared/registry/client.js';
import { BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION } from '../../../shared/registry/schemas.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';

const NOW = new Date('2026-11-30T12:00:00Z');

describeWithEmulators('proving base claims against the local registry', () => {
  const db = new Firestore({ projectId: emulators?.projectId ?? 'none' });
  let registry: LocalRegistry;
  let layout: string;
  const requests: string[] = [];
  const client = createRegistryClient({
    fetch: (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
      return fetch(input, init);
    },
  });
  const ops = new OpCounter();
  const deps = (): BaseProofDeps => ({
    // A fresh store per case: no memory carried over, so Firestore and registry reads are what a cold instance pays.
    store: firestoreBaseLayerStore(db, { ops }),
    registry: client,
  });
  let base: WrittenImage;
  let baseDigest: string;
  let patched: WrittenImage;
  let patchedDigest: string;
  let baseRef: string;

  const labels = (digest: string | null, name = baseRef) => ({
    [BASE_NAME_ANNOTATION]: name,
    ...(digest ? { [BASE_DIGEST_ANNOTATION]: digest } : {}),
  });

  async function push(
    repo: string,
    opts: {
      files: Record<string, string>;
      baseLayers?: BaseLayers;
      labels?: Record<string, string>;
    },
  ): Promise<ImageDescription> {
    const ref = repo.replaceAll('/', '-');
    writeOciImage(layout, {
      ref,
      files: opts.files,
      baseLayers: opts.baseLayers,
      config: { labels: opts.labels },
    });
    const digest = await skopeoCopy(layout, `${registry.host}/${repo}:v1`, { ref });
    return client.describeImage(registry.host, repo, digest);
  }

  const claimOf = (d: ImageDescription) => d.base && { ...d.base, source: d.base.source };

  beforeAll(async () => {
    registry = await startLocalRegistry({
      port: 'free',
      group: `test-${process.pid}`,
      ephemeral: true,
    });
    layout = mkdtempSync(join(tmpdir(), 'clearance-proof-'));
    baseRef = `${registry.host}/base/runtime:1`;
    base = writeOciImage(layout, { ref: 'base', files: { 'etc/os-release': 'runtime 1.0\n' } });
    baseDigest = await skopeoCopy(layout, baseRef, { ref: 'base' });
    patched = writeOciImage(layout, {
      ref: 'patched',
      files: { 'etc/os-release': 'runtime 1.1 (openssl 3.0.13)\n' },
    });
    patchedDigest = await skopeoCopy(layout, baseRef, { ref: 'patched' });
  });

  afterAll(async () => {
    await registry?.stop();
    if (layout) rmSync(layout, { recursive: true, force: true });
    await db.terminate();
  });

  it('verifies an honest image, reading a new base digest once (its manifest only) and then from the cache', async () => {
    const app = await push('team/honest', {
      files: { 'app.txt': 'honest\n' },
      baseLayers: base.stack,
      labels: labels(baseDigest),
    });
    requests.length = 0;
    const proven = await proveBase(deps(), app, claimOf(app), NOW);
    expect(proven).toEqual({
      name: baseRef,
      digest: baseDigest,
      source: 'label',
      verification: {
        status: 'verified',
        detail: null,
        baseLayers: 1,
        checkedAt: NOW.toISOString(),
      },
    });
    // One registry read for a new base digest: its layer digests prove the claim (layer-prefix.ts).
    expect(requests).toEqual([`GET /v2/base/runtime/manifests/${baseDigest}`]);
    // A second image on the same base costs no registry read, one cache read.
    const again = await push('team/honest-two', {
      files: { 'app.txt': 'honest two\n' },
      baseLayers: base.stack,
      labels: labels(baseDigest),
    });
    requests.length = 0;
    ops.reset();
    expect((await proveBase(deps(), again, claimOf(again), NOW))?.verification?.status).toBe(
      'verified',
    );
    expect(requests).toEqual([]);
    expect(ops.reads).toBe(1);
  });

  it('catches a forged label: the layers are not the claimed base, and the reason names the first differing layer', async () => {
    const other = writeOciImage(layout, {
      ref: 'other',
      files: { 'etc/os-release': 'something else\n' },
    });
    const forged = await push('team/forged', {
      files: { 'app.txt': 'forged\n' },
      baseLayers: other.stack,
      labels: labels(baseDigest),
    });
    const proven = await proveBase(deps(), forged, claimOf(forged), NOW);
    expect(proven?.verification).toMatchObject({ status: 'mismatch', baseLayers: 1 });
    expect(proven?.verification?.detail).toBe(
      `layer 1 of the base's 1 differs: the image has ${other.layerDigest.slice(0, 19)}…, the base ${base.layerDigest.slice(0, 19)}…`,
    );
  });

  it('catches copied manifest layers whose config diff_ids tell another story, once the base config is known (tracked bases)', async () => {
    // The watcher reads a tracked base in full: its config once, then from the cache.
    requests.length = 0;
    await trackBaseDigest(deps(), baseRef, baseDigest, NOW);
    expect(requests).toEqual([`GET /v2/base/runtime/blobs/${base.configDigest}`]);
    const other = writeOciImage(layout, {
      ref: 'other2',
      files: { 'etc/os-release': 'other two\n' },
    });
    // The manifest lists the base's layer, but the config describes other content.
    const forged = await push('team/half-forged', {
      files: { 'app.txt': 'half\n' },
      baseLayers: { layers: base.stack.layers, diffIds: other.stack.diffIds },
      labels: labels(baseDigest),
    });
    const v = (await proveBase(deps(), forged, claimOf(forged), NOW))?.verification;
    expect(v?.status).toBe('mismatch');
    expect(v?.detail).toMatch(/^rootfs\.diff_ids entry 1 of the base's 1 differs/);
  });

  it('verifies an image rebuilt on the patched base, and refuses its claim of the old digest', async () => {
    const rebuilt = await push('team/rebuilt', {
      files: { 'app.txt': 'rebuilt\n' },
      baseLayers: patched.stack,
      labels: labels(patchedDigest),
    });
    expect((await proveBase(deps(), rebuilt, claimOf(rebuilt), NOW))?.verification?.status).toBe(
      'verified',
    );
    const stale = await push('team/claims-old', {
      files: { 'app.txt': 'claims old\n' },
      baseLayers: patched.stack,
      labels: labels(baseDigest),
    });
    expect((await proveBase(deps(), stale, claimOf(stale), NOW))?.verification?.status).toBe(
      'mismatch',
    );
  });

  it('records a claim it cannot check as unverified: unknown digest, unreadable registry', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const app = await push('team/unknown-base', {
      files: { 'app.txt': 'unknown\n' },
      baseLayers: base.stack,
      labels: labels(missing),
    });
    const v = (await proveBase(deps(), app, claimOf(app), NOW))?.verification;
    expect(v?.status).toBe('unverified');
    expect(v?.detail).toContain('could not be read');
    const fenced = await proveBase(
      { ...deps(), allowRegistry: (r) => r === 'us-docker.pkg.dev' },
      app,
      { name: 'evil.example/base:1', digest: missing, source: 'label' },
      NOW,
    );
    expect(fenced?.verification?.detail).toContain('not one Clearance reads bases from');
  });

  it('verifies each platform of an index against the same platform of a multi-platform base', async () => {
    const baseIndex = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64', files: { 'os.txt': 'base amd64\n' } },
        { os: 'linux', architecture: 'arm64', variant: 'v8', files: { 'os.txt': 'base arm64\n' } },
      ],
      { ref: 'base-multi' },
    );
    const multiRef = `${registry.host}/base/multi:1`;
    const multiDigest = await skopeoCopy(layout, multiRef, { ref: 'base-multi' });
    const [amd, arm] = baseIndex.children;
    const claim = labels(multiDigest, multiRef);
    const app = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64', baseLayers: amd.stack, config: { labels: claim } },
        // Forged per platform: the arm64 image was built on the amd64 base.
        {
          os: 'linux',
          architecture: 'arm64',
          variant: 'v8',
          baseLayers: amd.stack,
          config: { labels: claim },
        },
        { os: 'linux', architecture: 's390x', baseLayers: arm.stack, config: { labels: claim } },
      ],
      { ref: 'app-multi', annotations: claim },
    );
    const appDigest = await skopeoCopy(layout, `${registry.host}/team/multi:v1`, {
      ref: 'app-multi',
    });
    const index = await client.describeImage(registry.host, 'team/multi', appDigest);
    const results = [];
    for (const p of index.platforms) {
      const child = await client.describeImage(registry.host, 'team/multi', p.digest);
      results.push({ platform: p, base: await proveBase(deps(), child, claimOf(child), NOW) });
    }
    expect(results.map((r) => [r.platform.architecture, r.base?.verification?.status])).toEqual([
      ['amd64', 'verified'],
      ['arm64', 'mismatch'],
      ['s390x', 'unverified'],
    ]);
    expect(results[2].base?.verification?.detail).toContain('has no linux/s390x image');
    expect(app.children).toHaveLength(3);
    const whole = indexBase(claimOf(index), results, NOW);
    expect(whole).toMatchObject({ name: multiRef, digest: multiDigest, source: 'annotation' });
    expect(whole?.verification?.status).toBe('mismatch');
    expect(whole?.verification?.detail).toMatch(
      /^linux\/arm64\/v8: layer 1 of the base's 1 differs/,
    );
  });

  it('infers the base of an image without labels from the tracked bases, the closest one first', async () => {
    const store = firestoreBaseLayerStore(db);
    // What the watcher does for a tracked tag: cache the digest and mark it tracked.
    const d = deps();
    const seed = await push('team/seed', {
      files: { 'x.txt': 'seed\n' },
      baseLayers: patched.stack,
      labels: labels(patchedDigest),
    });
    expect((await proveBase(d, seed, claimOf(seed), NOW))?.verification?.status).toBe('verified');
    await store.track(patchedDigest, { name: baseRef, digest: patchedDigest });

    const bare = await push('team/bare', {
      files: { 'app.txt': 'no labels\n' },
      baseLayers: patched.stack,
    });
    expect(bare.base).toBeNull();
    expect(await proveBase(deps(), bare, null, NOW)).toEqual({
      name: baseRef,
      digest: patchedDigest,
      source: 'layers',
      verification: {
        status: 'verified',
        detail: null,
        baseLayers: 1,
        checkedAt: NOW.toISOString(),
      },
    });
    // A name without a digest is completed from the tag's known digests.
    const nameOnly = await push('team/name-only', {
      files: { 'app.txt': 'name only\n' },
      baseLayers: patched.stack,
      labels: labels(null),
    });
    expect(await proveBase(deps(), nameOnly, claimOf(nameOnly), NOW)).toMatchObject({
      name: baseRef,
      digest: patchedDigest,
      source: 'label',
      verification: { status: 'verified' },
    });
    // Built on something untracked: nothing inferred.
    const stray = await push('team/stray', { files: { 'app.txt': 'stray\n' } });
    expect(await proveBase(deps(), stray, null, NOW)).toBeNull();
  });
});
