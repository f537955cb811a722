// Findings stored compactly: one source's findings in a few chunk documents, rewritten only where they changed.
import { z } from 'zod';
import { Finding, findingKey } from '../findings/finding.js';

/**
 * Bounds of one chunk document. Firestore caps a document at 1 MiB; a finding is at most ~5 KB
 * (description and URL are capped at 2,000 characters), so 600 KB of findings (values, field names
 * and their ids in the index array) leaves room to spare, and 1,000 findings keep the index entries
 * (ids and aliases) far below Firestore's 40,000 per document.
 */
export const CHUNK_LIMITS = { maxBytes: 600_000, maxFindings: 1_000 } as const;
export type ChunkLimits = { maxBytes: number; maxFindings: number };

/** A chunk document as stored: findings of one source, and every vulnerability id they name. */
export const FindingChunk = z.object({
  source: Finding.shape.source,
  n: z.number().int().nonnegative(),
  findings: z.array(Finding),
  /** Ids and aliases of the findings, sorted and unique: the fleet-wide "which images have CVE-X" index. */
  vulnerabilities: z.array(z.string()),
});
export type FindingChunk = z.infer<typeof FindingChunk>;

/** The chunk's document id under its image: `<source>.<n>`. */
export function chunkDocId(source: string, n: number): string {
  return `${source}.${n}`;
}

/** A finding's content in a fixed field order, so equal findings compare equal however they were read. */
function canonical(f: Finding): string {
  return JSON.stringify([
    f.id,
    f.aliases,
    f.package,
    f.packageType,
    f.installedVersion,
    f.fixedVersion,
    f.fixState,
    f.severity,
    f.cvss,
    f.source,
    f.description,
    f.url,
  ]);
}

/**
 * A finding's share of its chunk document, in bytes, as Firestore counts size (close enough): its
 * values, its field names (about 110 bytes for twelve), and its ids again in the chunk's index array.
 */
function storedSize(f: Finding): number {
  let ids = f.id.length + 1;
  for (const a of f.aliases) ids += a.length + 1;
  return canonical(f).length + 110 + ids;
}

export function vulnerabilityIds(findings: readonly Finding[]): string[] {
  const ids = new Set<string>();
  for (const f of findings) {
    ids.add(f.id);
    for (const a of f.aliases) ids.add(a);
  }
  return [...ids].sort();
}

export interface ChunkPlan {
  /** Chunks to write (new or changed), complete documents. */
  write: FindingChunk[];
  /** Chunk numbers to delete: all their findings are gone. */
  remove: number[];
  /** Findings added, changed or removed: what the write count is bounded by. */
  changedFindings: number;
}

const byKey = (a: Finding, b: Finding) => {
  const ka = findingKey(a);
  const kb = findingKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/**
 * Which chunk documents a source's new set of findings needs written, given its stored chunks.
 * A finding stays in the chunk that holds it; new findings fill chunks already being written first,
 * then chunks with room, then new chunks. So k changed findings touch at most k chunk documents,
 * and an unchanged set touches none.
 */
export function planChunks(
  source: Finding['source'],
  stored: readonly FindingChunk[],
  next: readonly Finding[],
  limits: ChunkLimits = CHUNK_LIMITS,
): ChunkPlan {
  const wanted = new Map<string, Finding>();
  for (const f of next) {
    if (f.source !== source) throw new Error(`a ${f.source} finding in a ${source} scan`);
    wanted.set(findingKey(f), f);
  }
  let changedFindings = 0;
  const placed = new Set<string>();
  const chunks = new Map<number, { findings: Finding[]; dirty: boolean; bytes: number }>();
  for (const c of [...stored].sort((a, b) => a.n - b.n)) {
    const kept: Finding[] = [];
    let dirty = false;
    let bytes = 0;
    for (const old of c.findings) {
      const key = findingKey(old);
      const now = wanted.get(key);
      if (!now || placed.has(key)) {
        // Gone from the scan (or a duplicate left by an older writer): dropped from its chunk.
        dirty = true;
        changedFindings += now ? 0 : 1;
        continue;
      }
      placed.add(key);
      if (canonical(now) !== canonical(old)) {
        dirty = true;
        changedFindings += 1;
      }
      kept.push(now);
      bytes += storedSize(now);
    }
    chunks.set(c.n, { findings: kept, dirty, bytes });
  }
  const fresh = [...wanted.values()].filter((f) => !placed.has(findingKey(f))).sort(byKey);
  changedFindings += fresh.length;
  const fits = (c: { findings: Finding[]; bytes: number }, size: number) =>
    c.findings.length < limits.maxFindings && c.bytes + size <= limits.maxBytes;
  for (const f of fresh) {
    const size = storedSize(f);
    // Chunks already being written cost nothing more; then the lowest-numbered with room; then a new one.
    const candidates = [...chunks.entries()].sort(
      ([a, x], [b, y]) => Number(y.dirty) - Number(x.dirty) || a - b,
    );
    let target = candidates.find(([, c]) => fits(c, size));
    if (!target) {
      let n = 0;
      while (chunks.has(n)) n += 1;
      target = [n, { findings: [], dirty: true, bytes: 0 }];
      chunks.set(n, target[1]);
    }
    target[1].findings.push(f);
    target[1].bytes += size;
    target[1].dirty = true;
  }
  const write: FindingChunk[] = [];
  const remove: number[] = [];
  for (const [n, c] of [...chunks.entries()].sort(([a], [b]) => a - b)) {
    if (!c.dirty) continue;
    if (c.findings.length === 0) {
      if (stored.some((s) => s.n === n)) remove.push(n);
      continue;
    }
    const findings = c.findings.sort(byKey);
    write.push({ source, n, findings, vulnerabilities: vulnerabilityIds(findings) });
  }
  return { write, remove, changedFindings };
}
