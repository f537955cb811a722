// Builds small deterministic OCI images (layout written by code) and pushes them with skopeo, for tests and the demo.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Platform } from '../../shared/registry/schemas.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF_NAME = 'org.opencontainers.image.ref.name';

/** Fixed so that the same inputs always give the same digests. */
export const FIXED_CREATED = '2024-01-01T00:00:00Z';
const FIXED_MTIME = Math.floor(Date.parse(FIXED_CREATED) / 1000);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageConfigInput {
  created?: string;
  user?: string;
  labels?: Record<string, string>;
  architecture?: string;
  os?: string;
  variant?: string;
}

export interface OciImageOptions {
  /** Path → text content of the files in the single layer. */
  files?: Record<string, string>;
  config?: ImageConfigInput;
  /** Manifest annotations, e.g. org.opencontainers.image.base.name / .base.digest. */
  annotations?: Record<string, string>;
  /** Name under which index.json lists the image (the `oci:DIR:ref` reference); default `latest`. */
  ref?: string;
  /**
   * Layers the image is built on (FROM), already in the same layout: listed before its own layer,
   * with their diff_ids first in the config, as a real build on that base would.
   */
  baseLayers?: BaseLayers;
}

/** A base's layers as an image built FROM it lists them: manifest descriptors and config diff_ids. */
export interface BaseLayers {
  layers: Descriptor[];
  diffIds: string[];
}

export interface WrittenImage {
  /** The manifest's descriptor (digest, size, media type). */
  manifest: Descriptor;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  /** sha256 of the uncompressed layer, as listed in the config's rootfs.diff_ids. */
  diffId: string;
  /** Every layer in order (base layers first) and the config's diff_ids: what an image built FROM this one reuses. */
  stack: BaseLayers;
  ref: string;
}

export interface WrittenIndex {
  index: Descriptor;
  indexDigest: string;
  children: (WrittenImage & { platform: Platform })[];
  ref: string;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Writes a content-addressed blob and returns its digest and size. */
function writeBlob(dir: string, data: Buffer): { digest: string; size: number } {
  const digest = sha256(data);
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(blobs, digest.slice('sha256:'.length)), data);
  return { digest, size: data.length };
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** A ustar archive of regular files with fixed owner, mode and mtime, so it is byte-stable. */
export function tarFiles(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const name of Object.keys(files).sort()) {
    const body = Buffer.from(files[name], 'utf8');
    const path = name.replace(/^\/+/, '');
    if (Buffer.byteLength(path) > 100) throw new Error(`tar: path too long: ${path}`);
    const header = Buffer.alloc(512);
    header.write(path, 0, 100, 'utf8');
    header.write(octal(0o644, 8), 100, 8, 'ascii');
    header.write(octal(0, 8), 108, 8, 'ascii');
    header.write(octal(0, 8), 116, 8, 'ascii');
    header.write(octal(body.length, 12), 124, 12, 'ascii');
    header.write(octal(FIXED_MTIME, 12), 136, 12, 'ascii');
    header.write(' '.repeat(8), 148, 8, 'ascii');
    header.write('0', 156, 1, 'ascii');
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    header.write('root', 265, 32, 'ascii');
    header.write('root', 297, 32, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    blocks.push(header, body);
    const pad = (512 - (body.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function readIndexJson(dir: string): {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
} {
  const file = join(dir, 'index.json');
  if (!existsSync(file)) return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Lists `descriptor` in the layout's index.json under `ref`, replacing an earlier entry of that name. */
function tagInLayout(dir: string, descriptor: Descriptor, ref: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = readIndexJson(dir);
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== ref);
  index.manifests.push({
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    annotations: { ...(descriptor.annotations ?? {}), [REF_NAME]: ref },
  });
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
}

/** Writes layer, config and manifest blobs without listing the image in index.json. */
function writeImageBlobs(
  dir: string,
  opts: OciImageOptions,
): Omit<WrittenImage, 'ref'> & { platform: Platform } {
  const files = opts.files ?? { 'hello.txt': 'hello from clearance\n' };
  const tar = tarFiles(files);
  const diffId = sha256(tar);
  const layer = writeBlob(dir, gzipSync(tar, { level: 9 }));
  const layerDescriptor: Descriptor = { mediaType: OCI_LAYER_GZIP, ...layer };
  const stack: BaseLayers = {
    layers: [...(opts.baseLayers?.layers ?? []), layerDescriptor],
    diffIds: [...(opts.baseLayers?.diffIds ?? []), diffId],
  };
  const c = opts.config ?? {};
  const platform: Platform = {
    os: c.os ?? 'linux',
    architecture: c.architecture ?? 'amd64',
    ...(c.variant ? { variant: c.variant } : {}),
  };
  const containerConfig: Record<string, unknown> = {};
  if (c.user !== undefined) containerConfig.User = c.user;
  if (c.labels) containerConfig.Labels = c.labels;
  const config = {
    created: c.created ?? FIXED_CREATED,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: stack.diffIds },
    history: [{ created: c.created ?? FIXED_CREATED, created_by: 'clearance oci-image' }],
  };
  const configBlob = writeBlob(dir, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, ...configBlob },
    layers: stack.layers,
    ...(opts.annotations && Object.keys(opts.annotations).length
      ? { annotations: opts.annotations }
      : {}),
  };
  const manifestBlob = writeBlob(dir, Buffer.from(JSON.stringify(manifest)));
  return {
    manifest: { mediaType: OCI_MANIFEST, ...manifestBlob },
    manifestDigest: manifestBlob.digest,
    configDigest: configBlob.digest,
    layerDigest: layer.digest,
    diffId,
    stack,
    platform,
  };
}

/** Writes one single-platform image into the OCI layout at `dir` (created if missing). */
export function writeOciImage(dir: string, opts: OciImageOptions = {}): WrittenImage {
  const ref = opts.ref ?? 'latest';
  const { platform: _platform, ...image } = writeImageBlobs(dir, opts);
  tagInLayout(dir, image.manifest, ref);
  return { ...image, ref };
}

export interface IndexPlatformInput extends Platform {
  files?: Record<string, string>;
  baseLayers?: BaseLayers;
  config?: Omit<ImageConfigInput, 'os' | 'architecture' | 'variant'>;
  annotations?: Record<string, string>;
}

/** Writes an image index with one image per platform (each with its own layer) into the layout at `dir`. */
export function writeOciIndex(
  dir: string,
  platforms: IndexPlatformInput[],
  opts: { ref?: string; annotations?: Record<string, string> } = {},
): WrittenIndex {
  if (platforms.length === 0) throw new Error('an index needs at least one platform');
  const ref = opts.ref ?? 'latest';
  const children = platforms.map((p) => {
    const image = writeImageBlobs(dir, {
      // Different content per platform, so each child has its own digest.
      files: p.files ?? {
        'platform.txt': `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}\n`,
      },
      config: { ...p.config, os: p.os, architecture: p.architecture, variant: p.variant },
      annotations: p.annotations,
      baseLayers: p.baseLayers,
    });
    return { ...image, ref };
  });
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c) => ({ ...c.manifest, platform: c.platform })),
    ...(opts.annotations && Object.keys(opts.annotations).length
      ? { annotations: opts.annotations }
      : {}),
  };
  const blob = writeBlob(dir, Buffer.from(JSON.stringify(index)));
  const descriptor: Descriptor = { mediaType: OCI_INDEX, ...blob };
  tagInLayout(dir, descriptor, ref);
  return { index: descriptor, indexDigest: blob.digest, children, ref };
}

export interface SkopeoCopyOptions {
  /** Name of the image inside the layout (index.json ref); default `latest`. */
  ref?: string;
  /** Copy every platform of an index (`--multi-arch all`); default: true when the layout entry is an index. */
  all?: boolean;
  /** Verify TLS at the destination (default false: the local registry speaks plain HTTP). */
  tlsVerify?: boolean;
  /** Convert manifests on the way (e.g. `v2s2` for Docker media types); changes the digests. */
  format?: 'oci' | 'v2s2';
  skopeo?: string;
  timeoutMs?: number;
}

/**
 * Pushes an image from an OCI layout with skopeo to `destRef` (`HOST/REPO:TAG` or with a
 * `docker://` prefix) and returns the digest of the pushed manifest (or index).
 */
export async function skopeoCopy(
  layoutDir: string,
  destRef: string,
  opts: SkopeoCopyOptions = {},
): Promise<string> {
  const ref = opts.ref ?? 'latest';
  const entry = readIndexJson(layoutDir).manifests.find((m) => m.annotations?.[REF_NAME] === ref);
  if (!entry) throw new Error(`no image named ${ref} in the OCI layout ${layoutDir}`);
  const all = opts.all ?? entry.mediaType === OCI_INDEX;
  const scratch = mkdtempSync(join(tmpdir(), 'clearance-skopeo-'));
  const digestFile = join(scratch, 'digest');
  const dest = destRef.startsWith('docker://') ? destRef : `docker://${destRef}`;
  const args = [
    '--insecure-policy',
    'copy',
    '--quiet',
    ...(opts.format ? ['--format', opts.format] : ['--preserve-digests']),
    `--dest-tls-verify=${opts.tlsVerify ? 'true' : 'false'}`,
    '--digestfile',
    digestFile,
    ...(all ? ['--multi-arch', 'all'] : []),
    `oci:${layoutDir}:${ref}`,
    dest,
  ];
  try {
    await new Promise<void>((res, rej) => {
      execFile(
        opts.skopeo ?? 'skopeo',
        args,
        {
          timeout: opts.timeoutMs ?? 60_000,
          env: { ...process.env, HOME: process.env.HOME ?? scratch },
        },
        (err, _stdout, stderr) => {
          if (err) rej(new Error(`skopeo copy to ${dest} failed: ${stderr || err.message}`));
          else res();
        },
      );
    });
    return readFileSync(digestFile, 'utf8').trim();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
