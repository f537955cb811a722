// Reads and writes of the findings chunk documents (images/{id}/findingChunks/{source}.{n}); only the ledger uses it.
import type {
  CollectionReference,
  DocumentReference,
  Firestore,
  Transaction,
} from '@google-cloud/firestore';
import type { Finding } from '../findings/finding.js';
import { COLLECTIONS } from './collections.js';
import { type ChunkPlan, chunkDocId, FindingChunk } from './finding-chunks.js';

/** The document-id field path by name: the check's start-up path must not load the Firestore client for FieldPath. */
const DOCUMENT_ID = '__name__';

/** Counts what is read and written, as Firestore bills it (a query reads at least one document). */
export interface ChunkOps {
  reads: number;
  writes: number;
}

export function chunksOf(image: DocumentReference): CollectionReference {
  return image.collection(COLLECTIONS.findingChunks);
}

/**
 * Every chunk of an image, inside a transaction (so the plan and the image write agree), read by the
 * ids its record lists; `null` (a record older than the list) falls back to a query on the chunks.
 */
export async function readChunks(
  tx: Transaction,
  image: DocumentReference,
  ids: readonly string[] | null,
  ops: ChunkOps,
): Promise<FindingChunk[]> {
  if (ids === null) {
    const snap = await tx.get(chunksOf(image));
    ops.reads += Math.max(1, snap.size);
    return snap.docs.map((d) => FindingChunk.parse(d.data()));
  }
  if (ids.length === 0) return [];
  const snaps = await tx.getAll(...ids.map((id) => chunksOf(image).doc(id)));
  ops.reads += ids.length;
  return snaps.filter((s) => s.exists).map((s) => FindingChunk.parse(s.data()));
}

/** Stages a plan's writes and deletes in the transaction. */
export function stageChunks(
  tx: Transaction,
  image: DocumentReference,
  source: Finding['source'],
  plan: ChunkPlan,
  ops: ChunkOps,
): void {
  for (const c of plan.write) {
    tx.set(chunksOf(image).doc(chunkDocId(c.source, c.n)), { ...c, imageId: image.id });
    ops.writes += 1;
  }
  for (const n of plan.remove) {
    tx.delete(chunksOf(image).doc(chunkDocId(source, n)));
    ops.writes += 1;
  }
}

/** The findings held by chunks, of the given sources (all when omitted). */
export function findingsOfChunks(
  chunks: readonly FindingChunk[],
  sources?: readonly string[],
): Finding[] {
  const wanted = sources ? new Set(sources) : null;
  return chunks.filter((c) => !wanted || wanted.has(c.source)).flatMap((c) => c.findings);
}

/** An image's findings (outside a transaction): one read per chunk, a few per image. */
export async function getChunkFindings(
  image: DocumentReference,
  ops: ChunkOps,
  sources?: readonly string[],
): Promise<Finding[]> {
  const snap = await chunksOf(image).get();
  ops.reads += Math.max(1, snap.size);
  return findingsOfChunks(
    snap.docs.map((d) => FindingChunk.parse(d.data())),
    sources,
  );
}

/**
 * Findings of consecutive images (in id order) with one collection-group range query on document
 * paths (images/{first} … images/{last}/findingChunks/\uf8ff) instead of one query per image.
 */
export async function chunkFindingsOfRange(
  db: Firestore,
  ids: readonly string[],
  ops: ChunkOps,
): Promise<Map<string, Finding[]>> {
  const out = new Map<string, Finding[]>(ids.map((id) => [id, []]));
  const first = ids[0];
  const last = ids.at(-1);
  if (first === undefined || last === undefined) return out;
  const snap = await db
    .collectionGroup(COLLECTIONS.findingChunks)
    .orderBy(DOCUMENT_ID)
    .startAt(`${COLLECTIONS.images}/${first}`)
    .endAt(`${COLLECTIONS.images}/${last}/${COLLECTIONS.findingChunks}/\uf8ff`)
    .get();
  ops.reads += Math.max(1, snap.size);
  for (const d of snap.docs) {
    const parent = d.ref.parent.parent;
    if (!parent || parent.parent.id !== COLLECTIONS.images) continue;
    out.get(parent.id)?.push(...FindingChunk.parse(d.data()).findings);
  }
  return out;
}

/**
 * Ids of the images with a finding of this vulnerability (its id or an alias), across the fleet, in
 * id order: one read per matching chunk (an image has one chunk per source per 1,000 findings).
 * Pages: `limit` chunks, then `after` the last image id returned.
 */
export async function imagesWithVulnerability(
  db: Firestore,
  vulnerability: string,
  ops: ChunkOps,
  options: { limit?: number; after?: string } = {},
): Promise<string[]> {
  let q = db
    .collectionGroup(COLLECTIONS.findingChunks)
    .where('vulnerabilities', 'array-contains', vulnerability)
    .orderBy(DOCUMENT_ID)
    .select('imageId');
  // Past every chunk of the image named by `after` (collection-group order is by document path).
  if (options.after)
    q = q.startAfter(`${COLLECTIONS.images}/${options.after}/${COLLECTIONS.findingChunks}/\uf8ff`);
  if (options.limit) q = q.limit(options.limit);
  const snap = await q.get();
  ops.reads += Math.max(1, snap.size);
  return [...new Set(snap.docs.map((d) => String(d.get('imageId'))))];
}
