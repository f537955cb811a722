// Pure layer-prefix comparison: does an image start with exactly its base's layers (manifest digests and config diff_ids), per platform.

/** One platform image's layers: compressed digests from the manifest, uncompressed from the config's rootfs. */
export interface LayerStack {
  layers: readonly string[];
  /**
   * The config's rootfs.diff_ids; null for a base whose config was not read (a base digest first
   * seen at a push: its manifest's layer digests decide, see compareLayerPrefix).
   */
  diffIds: readonly string[] | null;
}

export interface PlatformKey {
  os: string | null;
  architecture: string | null;
  variant: string | null;
}

/** Where an image stops agreeing with its base: position (0-based) and what each side has there. */
export interface LayerDifference {
  index: number;
  /** `layers`: manifest layer digests; `diff_ids`: the config's rootfs.diff_ids. */
  field: 'layers' | 'diff_ids';
  /** The image's entry at that position; null when the image has fewer entries than the base. */
  image: string | null;
  base: string;
}

export type PrefixResult =
  | { match: true; baseLayers: number }
  | { match: false; difference: LayerDifference; baseLayers: number }
  /** The base has no layers (or its config lists a different number than its manifest): nothing to prove with. */
  | { match: false; difference: null; baseLayers: number };

function firstDifference(
  image: readonly string[],
  base: readonly string[],
  field: LayerDifference['field'],
): LayerDifference | null {
  for (let i = 0; i < base.length; i++) {
    const mine = i < image.length ? image[i] : null;
    if (mine !== base[i]) return { index: i, field, image: mine, base: base[i] };
  }
  return null;
}

/**
 * Whether `image` starts with every layer of `base`, in order, in the manifest (compressed
 * digests) and, where the base's config was read, in the config (diff_ids). The manifest digests
 * are what proves the claim: they name the exact bytes the image is made of, and a runtime unpacks
 * those bytes only if their uncompressed digests equal the image config's diff_ids (containerd,
 * CRI-O and Docker refuse a layer that does not). So equal layer digests mean the image runs the
 * base's content, whatever else is true; the diff_ids add a consistency check (a config that
 * copies manifest digests but describes other content) when the base's are known — tracked bases
 * and any base read in full — and cost a second registry read otherwise, which a push on a new
 * base digest does not pay. The first disagreement is reported, manifest layers first.
 */
export function compareLayerPrefix(image: LayerStack, base: LayerStack): PrefixResult {
  const n = base.layers.length;
  if (n === 0 || (base.diffIds !== null && base.diffIds.length !== n))
    return { match: false, difference: null, baseLayers: n };
  const layers = firstDifference(image.layers, base.layers, 'layers');
  const diffIds = base.diffIds
    ? firstDifference(image.diffIds ?? [], base.diffIds, 'diff_ids')
    : null;
  // The earliest position wins; at the same position the manifest's layer is named.
  const difference =
    layers && diffIds ? (diffIds.index < layers.index ? diffIds : layers) : (layers ?? diffIds);
  if (difference) return { match: false, difference, baseLayers: n };
  return { match: true, baseLayers: n };
}

function short(digest: string): string {
  const colon = digest.indexOf(':');
  return colon > 0 ? `${digest.slice(0, colon + 13)}…` : digest;
}

/** "layer 2 of the base's 3 differs: the image has sha256:…, the base sha256:…" (1-based for people). */
export function describeDifference(d: LayerDifference, baseLayers: number): string {
  const what = d.field === 'layers' ? 'layer' : 'rootfs.diff_ids entry';
  const position = `${what} ${d.index + 1} of the base's ${baseLayers}`;
  if (d.image === null) {
    return `${position} is missing: the image has only ${d.index} ${d.field === 'layers' ? 'layers' : 'diff_ids'} (base has ${short(d.base)})`;
  }
  return `${position} differs: the image has ${short(d.image)}, the base ${short(d.base)}`;
}

function norm(s: string | null | undefined): string {
  return (s ?? '').toLowerCase();
}

/** arm64's variant is v8 when unstated (the OCI image-index spec's platform rules). */
function variantOf(p: PlatformKey): string {
  const v = norm(p.variant);
  if (v) return v;
  return norm(p.architecture) === 'arm64' ? 'v8' : '';
}

/** The base platform an image platform was built on: same os and architecture, same variant when either names one. */
export function matchPlatform<T extends PlatformKey>(
  candidates: readonly T[],
  wanted: PlatformKey,
): T | null {
  const same = candidates.filter(
    (c) => norm(c.os) === norm(wanted.os) && norm(c.architecture) === norm(wanted.architecture),
  );
  if (same.length <= 1) {
    const only = same[0];
    if (!only) return null;
    return variantOf(only) === variantOf(wanted) || !only.variant || !wanted.variant ? only : null;
  }
  return same.find((c) => variantOf(c) === variantOf(wanted)) ?? null;
}

/** A known base digest (one platform of it) whose layers an image may start with. */
export interface BaseCandidate<T = unknown> {
  /** The tracked tag, e.g. docker.io/library/debian:12. */
  name: string;
  /** The digest the base was published under (an index or a manifest). */
  digest: string;
  stack: LayerStack;
  /** Anything the caller needs back (e.g. when the digest was current). */
  extra?: T;
}

/**
 * The base an image was built on, found by its layers: among the candidates whose every layer the
 * image starts with, the one with the most layers (a base built on another base is the closer
 * ancestor). Ties go to the smallest name then digest, so the answer does not depend on order.
 */
export function inferBase<T>(
  image: LayerStack,
  candidates: readonly BaseCandidate<T>[],
): BaseCandidate<T> | null {
  let best: BaseCandidate<T> | null = null;
  for (const c of candidates) {
    if (!compareLayerPrefix(image, c.stack).match) continue;
    if (
      !best ||
      c.stack.layers.length > best.stack.layers.length ||
      (c.stack.layers.length === best.stack.layers.length &&
        (c.name < best.name || (c.name === best.name && c.digest < best.digest)))
    ) {
      best = c;
    }
  }
  return best;
}
