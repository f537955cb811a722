// Proves an image's base claim against the base's layers (read through the cache, else the registry), or infers the base from the layers.
import { ClearanceError, errorMessage, isRetryable } from '../errors.js';
import type { BaseImage, BaseVerification } from '../image-record.js';
import { formatImageRef, parseImageRef } from '../image-ref/image-ref.js';
import type { ImageDescription, Registry } from '../registry/client.js';
import type { BaseLayerStore, CachedBase, CachedManifest } from './base-store.js';
import {
  compareLayerPrefix,
  describeDifference,
  inferBase,
  type LayerStack,
  matchPlatform,
  type PlatformKey,
} from './layer-prefix.js';

export interface BaseProofDeps {
  store: BaseLayerStore;
  /** Null: no registry reachable from here; claims not in the cache stay unverified. */
  registry: Pick<Registry, 'getManifest' | 'getConfig'> | null;
  /**
   * Registries a claim may send Clearance to: a label is written by whoever built the image, so it
   * must not choose where Clearance makes requests. Absent: any.
   */
  allowRegistry?: (registry: string) => boolean;
}

/** What the ledger records about an image's base: the claim (or the inferred base) and its proof. */
export interface ProvenBase {
  name: string | null;
  digest: string | null;
  source: BaseImage['source'];
  verification: BaseVerification | null;
}

/** A claim as written in the annotation or label. */
export interface BaseClaim {
  name: string | null;
  digest: string | null;
  source: 'annotation' | 'label';
}

/**
 * The base as the watcher tracks it: `registry/repository:tag` (tag defaulting to latest), so an
 * annotation written `debian:12` matches the tracked `docker.io/library/debian:12`; a digest in the
 * name fills in a missing base digest. A name that does not parse is kept as written.
 */
export function normaliseBaseClaim(
  name: string | null,
  digest: string | null,
): { name: string | null; digest: string | null } {
  if (!name) return { name: null, digest };
  try {
    const ref = parseImageRef(name.trim());
    return {
      name: formatImageRef({ ...ref, tag: ref.tag ?? 'latest', digest: null }),
      digest: digest ?? ref.digest,
    };
  } catch {
    return { name, digest };
  }
}

type StackResult = { ok: true; stack: LayerStack; layers: number } | { ok: false; reason: string };

function platformLabel(p: PlatformKey | null): string {
  if (!p) return 'unknown platform';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/') || 'unknown platform';
}

function nonEmpty(s: string | undefined | null): string | null {
  return s ? s : null;
}

/**
 * What to read of a base manifest besides the manifest: `config` reads its config too (diff_ids and
 * platform: tracked bases, which inference compares in full); `platform` is the platform the
 * index that lists it gives (when the config is not read).
 */
interface ReadOptions {
  config: boolean;
  platform?: PlatformKey | null;
}

async function readConfig(
  deps: BaseProofDeps,
  entry: CachedManifest,
  configDigest: string,
): Promise<CachedManifest> {
  if (!deps.registry) throw new ClearanceError('not-found', 'no registry is configured');
  const cfg = await deps.registry.getConfig(entry.registry, entry.repository, configDigest);
  return {
    ...entry,
    platform:
      cfg.os || cfg.architecture
        ? {
            os: nonEmpty(cfg.os),
            architecture: nonEmpty(cfg.architecture),
            variant: nonEmpty(cfg.variant),
          }
        : entry.platform,
    diffIds: cfg.rootfs?.diff_ids ?? [],
    configDigest,
  };
}

/** Reads one digest of a base from the registry and caches what verification needs. */
async function fetchBase(
  deps: BaseProofDeps,
  registry: string,
  repository: string,
  digest: string,
  now: Date,
  read: ReadOptions,
): Promise<CachedBase> {
  if (!deps.registry) {
    throw new ClearanceError(
      'not-found',
      `base ${digest} is not cached and no registry is configured`,
    );
  }
  const m = await deps.registry.getManifest(registry, repository, digest);
  const cachedAt = now.toISOString();
  let entry: CachedBase;
  if (m.kind === 'index') {
    entry = {
      kind: 'index',
      digest,
      registry,
      repository,
      platforms: m.index.manifests
        .filter((d) => d.platform && d.platform.os !== 'unknown')
        .map((d) => ({
          digest: d.digest,
          os: nonEmpty(d.platform?.os),
          architecture: nonEmpty(d.platform?.architecture),
          variant: nonEmpty(d.platform?.variant),
        })),
      tracked: [],
      cachedAt,
    };
  } else {
    const layers = m.manifest.layers.map((l) => l.digest);
    const manifest: CachedManifest = {
      kind: 'manifest',
      digest,
      registry,
      repository,
      platform: read.platform ?? null,
      layers,
      // A push proves a claim with the layer digests alone: the config is one more read (layer-prefix.ts).
      diffIds: null,
      configDigest: m.manifest.config.digest,
      firstLayer: layers[0] ?? null,
      tracked: [],
      cachedAt,
    };
    entry = read.config ? await readConfig(deps, manifest, m.manifest.config.digest) : manifest;
  }
  await deps.store.put(entry);
  return entry;
}

async function entryOf(
  deps: BaseProofDeps,
  where: { registry: string; repository: string } | null,
  digest: string,
  now: Date,
  read: ReadOptions = { config: false },
): Promise<CachedBase | { missing: string }> {
  const cached = await deps.store.get(digest);
  if (cached) {
    // A tracked base is compared in full: its config is read once, the first time it is wanted.
    if (!read.config || cached.kind !== 'manifest' || cached.diffIds !== null) return cached;
    if (!cached.configDigest) return cached;
    try {
      const full = await readConfig(deps, cached, cached.configDigest);
      await deps.store.put(full);
      return full;
    } catch (err) {
      if (isRetryable(err)) throw err;
      return cached;
    }
  }
  if (!where)
    return {
      missing: `base digest ${digest} names no repository to read it from and is not among the tracked bases`,
    };
  if (deps.allowRegistry && !deps.allowRegistry(where.registry)) {
    return {
      missing: `base registry ${where.registry} is not one Clearance reads bases from (the image's own registry, the tracked bases' registries and CLEARANCE_BASE_REGISTRIES)`,
    };
  }
  try {
    return await fetchBase(deps, where.registry, where.repository, digest, now, read);
  } catch (err) {
    // An outage is retried (the push is redelivered); an answer that will not change is recorded.
    if (isRetryable(err)) throw err;
    return {
      missing: `base ${where.registry}/${where.repository}@${digest} could not be read: ${errorMessage(err)}`,
    };
  }
}

/** The layers of the base platform an image platform was built on: cache first, then the registry. */
export async function baseStack(
  deps: BaseProofDeps,
  where: { registry: string; repository: string } | null,
  digest: string,
  platform: PlatformKey | null,
  now: Date,
): Promise<StackResult> {
  const top = await entryOf(deps, where, digest, now);
  if ('missing' in top) return { ok: false, reason: top.missing };
  let manifest: CachedManifest;
  if (top.kind === 'index') {
    const child = platform ? matchPlatform(top.platforms, platform) : null;
    if (!child) {
      return {
        ok: false,
        reason: `base index ${digest} has no ${platformLabel(platform)} image (it has ${top.platforms.map(platformLabel).join(', ') || 'none'})`,
      };
    }
    const next = await entryOf(
      deps,
      { registry: top.registry, repository: top.repository },
      child.digest,
      now,
      { config: false, platform: child },
    );
    if ('missing' in next) return { ok: false, reason: next.missing };
    if (next.kind !== 'manifest')
      return { ok: false, reason: `base index ${digest} nests another index` };
    manifest = next;
  } else {
    manifest = top;
  }
  return { ok: true, stack: manifest, layers: manifest.layers.length };
}

function verification(
  status: BaseVerification['status'],
  detail: string | null,
  baseLayers: number | null,
  now: Date,
): BaseVerification {
  return { status, detail, baseLayers, checkedAt: now.toISOString() };
}

function stackOf(d: ImageDescription): LayerStack {
  return { layers: d.layers, diffIds: d.diffIds };
}

/** Tracked bases (of any name, or of `name` only) whose layers the image starts with; the closest wins. */
async function inferred(
  deps: BaseProofDeps,
  image: LayerStack,
  name: string | null,
): Promise<{ name: string; digest: string; layers: number } | null> {
  const first = image.layers[0];
  if (!first) return null;
  const manifests = await deps.store.trackedStartingWith(first);
  const candidates = manifests.flatMap((m) =>
    m.tracked
      .filter((t) => name === null || t.name === name)
      .map((t) => ({ name: t.name, digest: t.digest, stack: m })),
  );
  const best = inferBase(image, candidates);
  return best ? { name: best.name, digest: best.digest, layers: best.stack.layers.length } : null;
}

/**
 * What to record about a platform image's base. A claim is checked against the base digest it
 * names (per platform when the base is an index); a claim without a digest is checked against the
 * digests its tag is known to have had. Without a claim, the tracked bases are matched by layers
 * and a match is recorded as inferred. Transient registry failures throw; anything else that
 * prevents a check is recorded as `unverified` with the reason.
 */
export async function proveBase(
  deps: BaseProofDeps,
  image: ImageDescription,
  claim: BaseClaim | null,
  now: Date,
): Promise<ProvenBase | null> {
  const mine = stackOf(image);
  if (!claim || (!claim.name && !claim.digest)) {
    const found = await inferred(deps, mine, null);
    if (!found) return null;
    return {
      name: found.name,
      digest: found.digest,
      source: 'layers',
      verification: verification('verified', null, found.layers, now),
    };
  }
  const { name, digest } = normaliseBaseClaim(claim.name, claim.digest);
  const base = { name, digest, source: claim.source };
  if (image.kind !== 'manifest') {
    return { ...base, verification: null };
  }
  if (!digest) {
    const found = name ? await inferred(deps, mine, name) : null;
    if (found) {
      return {
        ...base,
        digest: found.digest,
        verification: verification('verified', null, found.layers, now),
      };
    }
    return {
      ...base,
      verification: verification(
        'unverified',
        `no base digest is claimed and no known digest of ${name} is a prefix of the image's layers`,
        null,
        now,
      ),
    };
  }
  let where: { registry: string; repository: string } | null = null;
  if (name) {
    try {
      const ref = parseImageRef(name);
      where = { registry: ref.registry, repository: ref.repository };
    } catch {
      where = null;
    }
  }
  const stack = await baseStack(deps, where, digest, image.platform, now);
  if (!stack.ok)
    return { ...base, verification: verification('unverified', stack.reason, null, now) };
  const r = compareLayerPrefix(mine, stack.stack);
  if (r.match) return { ...base, verification: verification('verified', null, r.baseLayers, now) };
  const detail = r.difference
    ? describeDifference(r.difference, r.baseLayers)
    : `the base has ${r.baseLayers} layers and a config that does not list as many diff_ids: nothing to compare`;
  return {
    ...base,
    verification: verification(r.difference ? 'mismatch' : 'unverified', detail, r.baseLayers, now),
  };
}

/**
 * An index's base: the platform images carry the proof (each its own verdict), so the index
 * records its claim and the worst of its platforms' verifications, naming the platform.
 */
export function indexBase(
  claim: BaseClaim | null,
  platforms: readonly { platform: PlatformKey; base: ProvenBase | null }[],
  now: Date,
): ProvenBase | null {
  const rank = { mismatch: 0, unverified: 1, verified: 2 } as const;
  let worst: { label: string; v: BaseVerification } | null = null;
  for (const p of platforms) {
    const v = p.base?.verification;
    if (!v) continue;
    if (!worst || rank[v.status] < rank[worst.v.status])
      worst = { label: platformLabel(p.platform), v };
  }
  const first = platforms.find((p) => p.base)?.base ?? null;
  const named =
    claim && (claim.name || claim.digest)
      ? {
          ...normaliseBaseClaim(claim.name, claim.digest),
          source: claim.source as BaseImage['source'],
        }
      : first
        ? { name: first.name, digest: first.digest, source: first.source }
        : null;
  if (!named) return null;
  if (!worst) return { ...named, verification: null };
  return {
    ...named,
    verification: {
      ...worst.v,
      detail: worst.v.detail ? `${worst.label}: ${worst.v.detail}` : null,
      checkedAt: now.toISOString(),
    },
  };
}

/**
 * Makes a tracked tag's digest available to inference: its manifest (and, for an index, every
 * platform's manifest and config) cached and marked as tracked under the tag. Idempotent; reads the
 * registry only for what is not cached yet. Returns how many platform manifests are tracked.
 */
export async function trackBaseDigest(
  deps: BaseProofDeps,
  name: string,
  digest: string,
  now: Date,
): Promise<number> {
  const ref = parseImageRef(name);
  const where = { registry: ref.registry, repository: ref.repository };
  const top = await entryOf(deps, where, digest, now, { config: true });
  if ('missing' in top) throw new ClearanceError('not-found', top.missing);
  const tracked = { name, digest };
  const manifests: string[] = [];
  if (top.kind === 'index') {
    for (const p of top.platforms) {
      const child = await entryOf(deps, where, p.digest, now, { config: true, platform: p });
      if ('missing' in child || child.kind !== 'manifest') continue;
      manifests.push(child.digest);
    }
  } else {
    manifests.push(top.digest);
  }
  const already = (e: CachedBase | null) =>
    e?.tracked.some((t) => t.name === name && t.digest === digest) ?? false;
  for (const d of manifests) {
    if (!already(await deps.store.get(d))) await deps.store.track(d, tracked);
  }
  if (top.kind === 'index' && !already(top)) await deps.store.track(digest, tracked);
  return manifests.length;
}
