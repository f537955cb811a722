// The OCI layout writer: byte-stable output, a layer real tar can read, config diff_ids and index entries that match the blobs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { skopeoCopy, tarFiles, writeOciImage, writeOciIndex } from '../../scripts/lib/oci-image.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'clearance-oci-unit-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const blob = (dir: string, digest: string) =>
  readFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)));
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('writeOciImage', () => {
  it('gives the same digests for the same inputs', () => {
    const opts = {
      files: { 'a.txt': 'a\n', 'dir/b.txt': 'b\n' },
      config: { user: '1000', labels: { owner: 'x' } },
    };
    const one = writeOciImage(scratch(), opts);
    const two = writeOciImage(scratch(), opts);
    expect(two).toEqual(one);
    expect(writeOciImage(scratch(), { ...opts, config: { user: '0' } }).manifestDigest).not.toBe(
      one.manifestDigest,
    );
  });

  it('writes a layer that tar lists, a config whose diff_ids match it, and a manifest pointing at both', () => {
    const dir = scratch();
    const img = writeOciImage(dir, {
      files: { 'etc/app.conf': 'x=1\n', 'hello.txt': 'hello\n' },
      config: {
        created: '2025-01-02T03:04:05Z',
        user: 'app',
        labels: { owner: 'team-a' },
        architecture: 'arm64',
      },
      annotations: { 'org.opencontainers.image.base.name': 'gcr.io/distroless/static' },
    });
    const layerPath = join(dir, 'blobs', 'sha256', img.layerDigest.slice(7));
    expect(
      execFileSync('tar', ['-tzf', layerPath], { encoding: 'utf8' }).split('\n').filter(Boolean),
    ).toEqual(['etc/app.conf', 'hello.txt']);
    expect(execFileSync('tar', ['-xzOf', layerPath, 'etc/app.conf'], { encoding: 'utf8' })).toBe(
      'x=1\n',
    );
    expect(sha(gunzipSync(blob(dir, img.layerDigest)))).toBe(img.diffId);

    const config = JSON.parse(blob(dir, img.configDigest).toString());
    expect(config).toMatchObject({
      created: '2025-01-02T03:04:05Z',
      architecture: 'arm64',
      os: 'linux',
      config: { User: 'app', Labels: { owner: 'team-a' } },
      rootfs: { type: 'layers', diff_ids: [img.diffId] },
    });
    const manifest = JSON.parse(blob(dir, img.manifestDigest).toString());
    expect(manifest.config.digest).toBe(img.configDigest);
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual([img.layerDigest]);
    expect(manifest.annotations).toEqual({
      'org.opencontainers.image.base.name': 'gcr.io/distroless/static',
    });

    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests).toEqual([
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: img.manifestDigest,
        size: blob(dir, img.manifestDigest).length,
        annotations: { 'org.opencontainers.image.ref.name': 'latest' },
      },
    ]);
    expect(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
  });

  it('pads tar entries to 512-byte blocks with a valid header checksum', () => {
    const tar = tarFiles({ 'f.txt': 'x'.repeat(600) });
    expect(tar.length).toBe(512 + 1024 + 1024);
    const header = Buffer.from(tar.subarray(0, 512));
    const stored = Number.parseInt(header.subarray(148, 154).toString('ascii'), 8);
    header.fill(0x20, 148, 156);
    expect(header.reduce((a, b) => a + b, 0)).toBe(stored);
  });
});

describe('writeOciIndex', () => {
  it('writes one image per platform and an index listing them with their platforms', () => {
    const dir = scratch();
    writeOciImage(dir, { ref: 'single' });
    const idx = writeOciIndex(
      dir,
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      { ref: 'multi' },
    );
    expect(idx.children).toHaveLength(2);
    expect(idx.children[0].manifestDigest).not.toBe(idx.children[1].manifestDigest);
    const index = JSON.parse(blob(dir, idx.indexDigest).toString());
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(
      index.manifests.map((m: { digest: string; platform: unknown }) => [m.digest, m.platform]),
    ).toEqual([
      [idx.children[0].manifestDigest, { os: 'linux', architecture: 'amd64' }],
      [idx.children[1].manifestDigest, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ]);
    const arm = JSON.parse(blob(dir, idx.children[1].configDigest).toString());
    expect(arm).toMatchObject({ architecture: 'arm64', variant: 'v8', os: 'linux' });
    const layout = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(
      layout.manifests.map(
        (m: { annotations: Record<string, string> }) =>
          m.annotations['org.opencontainers.image.ref.name'],
      ),
    ).toEqual(['single', 'multi']);
  });

  it('refuses an empty platform list', () => {
    expect(() => writeOciIndex(scratch(), [])).toThrow(/at least one platform/);
  });
});

describe('skopeoCopy', () => {
  it('refuses a ref the layout does not hold, before running skopeo', async () => {
    const dir = scratch();
    writeOciImage(dir, { ref: 'one' });
    await expect(skopeoCopy(dir, '127.0.0.1:1/x:y', { ref: 'two' })).rejects.toThrow(
      /no image named two/,
    );
  });
});
