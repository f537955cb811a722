// The registry client against the real local docker-registry (images pushed by skopeo), with local proxies for tampering and failures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../../scripts/lib/local-registry.js';
import {
  skopeoCopy,
  type WrittenImage,
  type WrittenIndex,
  writeOciImage,
  writeOciIndex,
} from '../../../scripts/lib/oci-image.js';
import { freePort } from '../../../scripts/lib/process.js';
import { ClearanceError, InvalidInputError, TransientError } from '../../../shared/errors.js';
import { createRegistryClient, digestOf, type Registry } from '../../../shared/registry/client.js';
import {
  DOCKER_MANIFEST,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../../shared/registry/schemas.js';
import { startProxy, startServer, type TestServer } from './http-servers.js';

const BASE_DIGEST = `sha256:${'b'.repeat(64)}`;

async function failure(p: Promise<unknown>): Promise<ClearanceError<string>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ClearanceError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('registry client against the local docker-registry', () => {
  let registry: LocalRegistry;
  let layout: string;
  let client: Registry;
  let app: WrittenImage;
  let labelled: WrittenImage;
  let multi: WrittenIndex;
  let dockerDigest: string;
  const servers: TestServer[] = [];

  beforeAll(async () => {
    registry = await startLocalRegistry({
      port: 'free',
      group: `test-${process.pid}`,
      ephemeral: true,
    });
    layout = mkdtempSync(join(tmpdir(), 'clearance-oci-'));
    app = writeOciImage(layout, {
      ref: 'app',
      files: { 'srv/app.txt': 'payments\n', 'etc/motd': 'hi\n' },
      config: {
        created: '2025-03-04T05:06:07Z',
        user: '65532:65532',
        labels: {
          owner: 'team-payments',
          'org.opencontainers.image.source': 'https://example.test/pay',
        },
      },
      annotations: {
        'org.opencontainers.image.base.name': 'gcr.io/distroless/static:nonroot',
        'org.opencontainers.image.base.digest': BASE_DIGEST,
      },
    });
    labelled = writeOciImage(layout, {
      ref: 'labelled',
      files: { 'x.txt': 'labelled\n' },
      config: {
        labels: {
          'org.opencontainers.image.base.name': 'docker.io/library/debian:12',
          'org.opencontainers.image.base.digest': BASE_DIGEST,
        },
      },
    });
    multi = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64', config: { user: 'nobody' } },
        { os: 'linux', architecture: 'arm64', variant: 'v8', config: { user: 'nobody' } },
      ],
      {
        ref: 'multi',
        annotations: { 'org.opencontainers.image.base.name': 'gcr.io/distroless/base:latest' },
      },
    );
    expect(await skopeoCopy(layout, `${registry.host}/team/app:v1`, { ref: 'app' })).toBe(
      app.manifestDigest,
    );
    expect(await skopeoCopy(layout, `${registry.host}/team/labelled:v1`, { ref: 'labelled' })).toBe(
      labelled.manifestDigest,
    );
    expect(await skopeoCopy(layout, `${registry.host}/team/multi:1.0`, { ref: 'multi' })).toBe(
      multi.indexDigest,
    );
    dockerDigest = await skopeoCopy(layout, `${registry.host}/team/docker:v2`, {
      ref: 'app',
      format: 'v2s2',
    });
    client = createRegistryClient();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await registry?.stop();
    if (layout) rmSync(layout, { recursive: true, force: true });
  });

  async function proxy(
    ...args: Parameters<typeof startProxy> extends [string, ...infer R] ? R : never
  ) {
    const s = await startProxy(registry.url, ...args);
    servers.push(s);
    return s;
  }

  it('describes a single image: config created/user/labels, platform, layers and base from annotations', async () => {
    const d = await client.describeImage(registry.host, 'team/app', app.manifestDigest);
    expect(d).toEqual({
      registry: registry.host,
      repository: 'team/app',
      digest: app.manifestDigest,
      mediaType: OCI_MANIFEST,
      kind: 'manifest',
      platforms: [],
      platform: { os: 'linux', architecture: 'amd64', variant: null },
      config: {
        created: '2025-03-04T05:06:07Z',
        user: '65532:65532',
        labels: {
          owner: 'team-payments',
          'org.opencontainers.image.source': 'https://example.test/pay',
        },
      },
      configDigest: app.configDigest,
      layers: [app.layerDigest],
      diffIds: [app.diffId],
      annotations: {
        'org.opencontainers.image.base.name': 'gcr.io/distroless/static:nonroot',
        'org.opencontainers.image.base.digest': BASE_DIGEST,
      },
      base: { name: 'gcr.io/distroless/static:nonroot', digest: BASE_DIGEST, source: 'annotation' },
    });
  });

  it('falls back to config labels for the base image', async () => {
    const d = await client.describeImage(registry.host, 'team/labelled', labelled.manifestDigest);
    expect(d.base).toEqual({
      name: 'docker.io/library/debian:12',
      digest: BASE_DIGEST,
      source: 'label',
    });
    expect(d.config?.user).toBeNull();
  });

  it('describes a two-platform index pushed with skopeo with both platform children', async () => {
    const d = await client.describeImage(registry.host, 'team/multi', multi.indexDigest);
    expect(d.kind).toBe('index');
    expect(d.mediaType).toBe(OCI_INDEX);
    expect(d.config).toBeNull();
    expect(d.base).toEqual({
      name: 'gcr.io/distroless/base:latest',
      digest: null,
      source: 'annotation',
    });
    expect(d.platforms).toEqual([
      {
        digest: multi.children[0].manifestDigest,
        os: 'linux',
        architecture: 'amd64',
        variant: null,
      },
      {
        digest: multi.children[1].manifestDigest,
        os: 'linux',
        architecture: 'arm64',
        variant: 'v8',
      },
    ]);
    // Each child is itself an image in the same repository.
    for (const [i, p] of d.platforms.entries()) {
      const child = await client.describeImage(registry.host, 'team/multi', p.digest);
      expect(child.kind).toBe('manifest');
      expect(child.platform).toEqual({
        os: p.os,
        architecture: p.architecture,
        variant: p.variant,
      });
      expect(child.config?.user).toBe('nobody');
      expect(child.layers).toEqual([multi.children[i].layerDigest]);
    }
  });

  it('resolves tags to digests with HEAD', async () => {
    const seen = await proxy();
    expect(await client.resolveTag(seen.host, 'team/multi', '1.0')).toEqual({
      digest: multi.indexDigest,
      mediaType: OCI_INDEX,
      size: multi.index.size,
    });
    expect((await client.resolveTag(seen.host, 'team/app', 'v1')).digest).toBe(app.manifestDigest);
    expect(seen.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'HEAD /v2/team/multi/manifests/1.0',
      'HEAD /v2/team/app/manifests/v1',
    ]);
    expect(seen.requests[0].headers.accept).toBe(MANIFEST_ACCEPT);
  });

  it('falls back to GET when HEAD gives no digest header', async () => {
    const noHeadDigest = await proxy({
      tamper: (req, up) => {
        if (req.method !== 'HEAD') return up;
        const { 'docker-content-digest': _dropped, ...headers } = up.headers;
        return { ...up, headers };
      },
    });
    expect((await client.resolveTag(noHeadDigest.host, 'team/app', 'v1')).digest).toBe(
      app.manifestDigest,
    );
    expect(noHeadDigest.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
  });

  it('gets manifests by tag and by digest with the full Accept list, keeping the exact bytes', async () => {
    const seen = await proxy();
    const byTag = await client.getManifest(seen.host, 'team/app', 'v1');
    expect(byTag.digest).toBe(app.manifestDigest);
    expect(digestOf(byTag.body)).toBe(app.manifestDigest);
    expect(byTag.kind).toBe('manifest');
    if (byTag.kind === 'manifest') {
      expect(byTag.manifest.config.digest).toBe(app.configDigest);
      expect(byTag.manifest.annotations?.['org.opencontainers.image.base.digest']).toBe(
        BASE_DIGEST,
      );
    }
    const byDigest = await client.getManifest(seen.host, 'team/multi', multi.indexDigest);
    expect(byDigest.kind).toBe('index');
    expect(byDigest.size).toBe(multi.index.size);
    for (const type of MANIFEST_MEDIA_TYPES)
      expect(seen.requests[0].headers.accept).toContain(type);
  });

  it('leaves out only unknown/unknown children of an index, whatever the annotations say', async () => {
    // The pushed index, re-served with an attestation annotation on a real platform and a BuildKit attestation child.
    const original = await client.getManifest(registry.host, 'team/multi', multi.indexDigest);
    const json = JSON.parse(original.body.toString('utf8')) as {
      manifests: Record<string, unknown>[];
    };
    json.manifests[1] = {
      ...json.manifests[1],
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    };
    json.manifests.push({
      ...json.manifests[0],
      digest: `sha256:${'c'.repeat(64)}`,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: {
        'vnd.docker.reference.type': 'attestation-manifest',
        'vnd.docker.reference.digest': multi.children[0]?.manifestDigest,
      },
    });
    const body = Buffer.from(JSON.stringify(json));
    const digest = digestOf(body);
    const rewritten = await proxy({
      tamper: (req, up) =>
        req.url === `/v2/team/multi/manifests/${digest}`
          ? {
              status: 200,
              body,
              headers: { 'content-type': OCI_INDEX, 'docker-content-digest': digest },
            }
          : up,
    });
    const d = await client.describeImage(rewritten.host, 'team/multi', digest);
    expect(d.platforms.map((p) => `${p.os}/${p.architecture}`)).toEqual([
      'linux/amd64',
      'linux/arm64',
    ]);
  });

  it('reads Docker v2 manifests (skopeo --format v2s2)', async () => {
    const m = await client.getManifest(registry.host, 'team/docker', 'v2');
    expect(m.digest).toBe(dockerDigest);
    expect(m.mediaType).toBe(DOCKER_MANIFEST);
    const d = await client.describeImage(registry.host, 'team/docker', dockerDigest);
    expect(d.config).toMatchObject({ user: '65532:65532', labels: { owner: 'team-payments' } });
    expect(d.diffIds).toEqual([app.diffId]);
  });

  it('reads and verifies blobs and configs', async () => {
    const config = await client.getConfig(registry.host, 'team/app', app.configDigest);
    expect(config.rootfs?.diff_ids).toEqual([app.diffId]);
    const layer = await client.getBlob(registry.host, 'team/app', app.layerDigest);
    expect(digestOf(layer)).toBe(app.layerDigest);
  });

  describe('integrity', () => {
    it('refuses a manifest whose Docker-Content-Digest header does not match the body', async () => {
      const liar = await proxy({
        tamper: (_req, up) => ({
          ...up,
          headers: { ...up.headers, 'docker-content-digest': BASE_DIGEST },
        }),
      });
      const err = await failure(client.getManifest(liar.host, 'team/app', 'v1'));
      expect(err.code).toBe('integrity');
      expect(err.retryable).toBe(false);
      expect(err.details).toMatchObject({ expected: BASE_DIGEST, actual: app.manifestDigest });
    });

    it('refuses a manifest whose body was altered in transit', async () => {
      const altered = await proxy({
        tamper: (req, up) =>
          req.url?.includes('/manifests/')
            ? { ...up, body: Buffer.concat([up.body, Buffer.from(' ')]) }
            : up,
      });
      expect((await failure(client.getManifest(altered.host, 'team/app', 'v1'))).code).toBe(
        'integrity',
      );
      expect(
        (await failure(client.getManifest(altered.host, 'team/app', app.manifestDigest))).code,
      ).toBe('integrity');
      expect(
        (await failure(client.describeImage(altered.host, 'team/app', app.manifestDigest))).code,
      ).toBe('integrity');
    });

    it('refuses another manifest served for a digest, even with a consistent header', async () => {
      const other = await client.getManifest(registry.host, 'team/labelled', 'v1');
      const swapped = await proxy({
        tamper: () => ({
          status: 200,
          headers: { 'content-type': OCI_MANIFEST, 'docker-content-digest': other.digest },
          body: other.body,
        }),
      });
      const err = await failure(client.getManifest(swapped.host, 'team/app', app.manifestDigest));
      expect(err.code).toBe('integrity');
      expect(err.details).toMatchObject({ expected: app.manifestDigest, actual: other.digest });
    });

    it('refuses a blob whose bytes do not match its digest', async () => {
      const altered = await proxy({
        tamper: (req, up) =>
          req.url?.includes('/blobs/') ? { ...up, body: Buffer.from('{"os":"evil"}') } : up,
      });
      expect(
        (await failure(client.getConfig(altered.host, 'team/app', app.configDigest))).code,
      ).toBe('integrity');
    });
  });

  describe('errors', () => {
    it('maps 404 (unknown tag, digest or repository) to final not-found', async () => {
      for (const p of [
        () => client.getManifest(registry.host, 'team/app', 'nope'),
        () => client.getManifest(registry.host, 'team/app', BASE_DIGEST),
        () => client.resolveTag(registry.host, 'team/missing', 'v1'),
        () => client.getBlob(registry.host, 'team/app', BASE_DIGEST),
      ]) {
        const err = await failure(p());
        expect(err.code).toBe('not-found');
        expect(err.retryable).toBe(false);
      }
    });

    it('maps 503, 429, refused connections and timeouts to TransientError', async () => {
      const unavailable = await startServer((_req, res) => {
        res.writeHead(503, { 'retry-after': '7' }).end('down');
      });
      const throttled = await startServer((_req, res) => {
        res.writeHead(429).end('slow down');
      });
      let release: () => void = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      const hanging = await startServer(async (_req, res) => {
        await held;
        res.end();
      });
      servers.push(unavailable, throttled, hanging);
      const e503 = await failure(client.getManifest(unavailable.host, 'team/app', 'v1'));
      expect(e503).toBeInstanceOf(TransientError);
      expect(e503.retryable).toBe(true);
      expect(e503.details).toMatchObject({ status: 503, retryAfter: '7' });
      expect(await failure(client.resolveTag(throttled.host, 'team/app', 'v1'))).toBeInstanceOf(
        TransientError,
      );
      const closed = `127.0.0.1:${await freePort()}`;
      expect(await failure(client.getManifest(closed, 'team/app', 'v1'))).toBeInstanceOf(
        TransientError,
      );
      const quick = createRegistryClient({ timeoutMs: 200 });
      const timeout = await failure(quick.getManifest(hanging.host, 'team/app', 'v1'));
      release();
      expect(timeout).toBeInstanceOf(TransientError);
      expect(timeout.code).toBe('timeout');
    });

    it('caps manifest and config sizes', async () => {
      const small = createRegistryClient({ maxManifestBytes: 100, maxConfigBytes: 50 });
      expect((await failure(small.getManifest(registry.host, 'team/app', 'v1'))).code).toBe(
        'payload-too-large',
      );
      expect(
        (await failure(small.getConfig(registry.host, 'team/app', app.configDigest))).code,
      ).toBe('payload-too-large');
      // A chunked answer with no Content-Length is cut off while streaming.
      const endless = await startServer((_req, res) => {
        res.writeHead(200, { 'content-type': OCI_MANIFEST });
        for (let i = 0; i < 80; i++) res.write(Buffer.alloc(64 * 1024, 0x20));
        res.end();
      });
      servers.push(endless);
      expect((await failure(client.getManifest(endless.host, 'team/app', 'v1'))).code).toBe(
        'payload-too-large',
      );
    });

    it('rejects placeholders and malformed names before any request', async () => {
      const never = await startServer((_req, res) => {
        res.writeHead(500).end();
      });
      servers.push(never);
      for (const p of [
        () => client.getManifest(never.host, '$PROJECT/repo/image', 'latest'),
        () => client.getManifest(never.host, 'team/app', '../../v1'),
        () => client.describeImage(never.host, 'team/app', 'sha256:abcde'),
        () => client.resolveTag('bad host/x', 'team/app', 'v1'),
      ]) {
        expect(await failure(p())).toBeInstanceOf(InvalidInputError);
      }
      expect(never.requests).toEqual([]);
    });
  });
});
