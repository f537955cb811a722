// Base images' layers cached by digest in Firestore (`baseLayers`), so a push reads a base from the registry once per new digest (its manifest).
import { FieldValue, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import { COLLECTIONS, externalDocId } from '../ledger/collections.js';
import type { OpCounter } from '../ledger/ledger-store.js';

/** A tracked tag that pointed at this content: the name, and the digest it was published under (index or manifest). */
export const TrackedRef = z.object({ name: z.string(), digest: z.string() });
export type TrackedRef = z.infer<typeof TrackedRef>;

const PlatformFields = {
  os: z.string().nullable(),
  architecture: z.string().nullable(),
  variant: z.string().nullable(),
};

export const CachedManifest = z.object({
  kind: z.literal('manifest'),
  digest: z.string(),
  /** Where it was read (a digest names the same content in every repository). */
  registry: z.string(),
  repository: z.string(),
  platform: z.object(PlatformFields).nullable(),
  layers: z.array(z.string()),
  /** The config's rootfs.diff_ids; null until the config is read (a base first seen at a push reads its manifest only). */
  diffIds: z.array(z.string()).nullable(),
  /** Where the diff_ids are read from when they are wanted (tracked bases). */
  configDigest: z.string().nullable().default(null),
  /** Indexed: inference asks which tracked bases start with an image's first layer. */
  firstLayer: z.string().nullable(),
  tracked: z.array(TrackedRef).default([]),
  cachedAt: z.string(),
});
export type CachedManifest = z.infer<typeof CachedManifest>;

export const CachedIndex = z.object({
  kind: z.literal('index'),
  digest: z.string(),
  registry: z.string(),
  repository: z.string(),
  platforms: z.array(z.object({ digest: z.string(), ...PlatformFields })),
  tracked: z.array(TrackedRef).default([]),
  cachedAt: z.string(),
});
export type CachedIndex = z.infer<typeof CachedIndex>;

export const CachedBase = z.discriminatedUnion('kind', [CachedManifest, CachedIndex]);
export type CachedBase = z.infer<typeof CachedBase>;

export interface BaseLayerStore {
  get(digest: string): Promise<CachedBase | null>;
  /** Stores content read from the registry; `tracked` on the stored document is kept. */
  put(entry: CachedBase): Promise<void>;
  /** Records that a tracked tag pointed at this digest (its platform manifests are tracked by the caller). */
  track(digest: string, ref: TrackedRef): Promise<void>;
  /** Platform manifests of tracked bases whose first layer is `layer`: the candidates for inference. */
  trackedStartingWith(layer: string): Promise<CachedManifest[]>;
}

/** Content by digest never changes, so a warm instance answers from memory; this bounds that memory. */
const MEMO_LIMIT = 2_000;
/** Tracking changes when a base tag moves (the watcher, daily): inference answers may be this old. */
const INFERENCE_TTL_MS = 5 * 60_000;

export function firestoreBaseLayerStore(
  db: Firestore,
  opts: { ops?: OpCounter; now?: () => number } = {},
): BaseLayerStore {
  const col = db.collection(COLLECTIONS.baseLayers);
  const now = opts.now ?? Date.now;
  const memo = new Map<string, CachedBase>();
  const candidates = new Map<string, { at: number; list: CachedManifest[] }>();
  const remember = (e: CachedBase) => {
    if (memo.size >= MEMO_LIMIT) memo.delete(memo.keys().next().value as string);
    memo.set(e.digest, e);
  };
  const count = (reads: number, writes: number) => {
    if (!opts.ops) return;
    opts.ops.reads += reads;
    opts.ops.writes += writes;
  };
  return {
    async get(digest) {
      const hit = memo.get(digest);
      if (hit) return hit;
      const snap = await col.doc(externalDocId(digest)).get();
      count(1, 0);
      if (!snap.exists) return null;
      const parsed = CachedBase.safeParse(snap.data());
      // A document that no longer parses is read again from the registry and overwritten.
      if (!parsed.success) return null;
      remember(parsed.data);
      return parsed.data;
    },
    async put(entry) {
      const { tracked: _t, ...content } = entry;
      await col.doc(externalDocId(entry.digest)).set(content, { merge: true });
      count(0, 1);
      remember(entry);
    },
    async track(digest, ref) {
      await col.doc(externalDocId(digest)).update({ tracked: FieldValue.arrayUnion(ref) });
      count(0, 1);
      memo.delete(digest);
      candidates.clear();
    },
    async trackedStartingWith(layer) {
      const cached = candidates.get(layer);
      if (cached && now() - cached.at < INFERENCE_TTL_MS) return cached.list;
      const snap = await col.where('firstLayer', '==', layer).limit(200).get();
      count(Math.max(1, snap.size), 0);
      const list: CachedManifest[] = [];
      for (const d of snap.docs) {
        const parsed = CachedManifest.safeParse(d.data());
        if (parsed.success && parsed.data.tracked.length > 0) list.push(parsed.data);
      }
      if (candidates.size >= MEMO_LIMIT) candidates.clear();
      candidates.set(layer, { at: now(), list });
      return list;
    },
  };
}
