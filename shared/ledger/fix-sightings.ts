// First sightings of fixes (`fixSightings`): written once per (vulnerability, package, fixed version), never moved later by rescans or re-pushes.
import { createHash } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import type { Finding } from '../findings/finding.js';
import { FixSighting, fixesIn } from '../findings/fix-sighting.js';
import { COLLECTIONS } from './collections.js';
import type { OpCounter } from './ledger-store.js';

export interface FixSightingStore {
  /** Records the fixes these findings report that were never seen before (first seen: now); returns every one's sighting. */
  record(findings: readonly Finding[], now: Date): Promise<FixSighting[]>;
  /** The sightings of these findings' fixes, for a re-evaluation (nothing is written). */
  lookup(findings: readonly Finding[]): Promise<FixSighting[]>;
}

/** Sightings never change once written, so an instance keeps them; this bounds that memory. */
const MEMO_LIMIT = 50_000;
const GET_ALL_CHUNK = 300;
const ALREADY_EXISTS = 6;

export function fixSightingDocId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 40);
}

export function firestoreFixSightings(
  db: Firestore,
  opts: { ops?: OpCounter } = {},
): FixSightingStore {
  const col = db.collection(COLLECTIONS.fixSightings);
  const memo = new Map<string, FixSighting>();
  const remember = (key: string, s: FixSighting) => {
    if (memo.size >= MEMO_LIMIT) memo.delete(memo.keys().next().value as string);
    memo.set(key, s);
  };
  const count = (reads: number, writes: number) => {
    if (!opts.ops) return;
    opts.ops.reads += reads;
    opts.ops.writes += writes;
  };

  async function read(keys: readonly string[]): Promise<Map<string, FixSighting>> {
    const found = new Map<string, FixSighting>();
    const wanted = keys.filter((k) => {
      const hit = memo.get(k);
      if (hit) found.set(k, hit);
      return !hit;
    });
    for (let i = 0; i < wanted.length; i += GET_ALL_CHUNK) {
      const chunk = wanted.slice(i, i + GET_ALL_CHUNK);
      const snaps = await db.getAll(...chunk.map((k) => col.doc(fixSightingDocId(k))));
      count(chunk.length, 0);
      snaps.forEach((snap, j) => {
        if (!snap.exists) return;
        const parsed = FixSighting.safeParse(snap.data());
        if (!parsed.success) return;
        found.set(chunk[j], parsed.data);
        remember(chunk[j], parsed.data);
      });
    }
    return found;
  }

  return {
    async record(findings, now) {
      const fixes = fixesIn(findings);
      const found = await read(fixes.map((f) => f.key));
      const missing = fixes.filter((f) => !found.has(f.key));
      const raced: string[] = [];
      // create() fails if another scan got there first: the earlier sighting stands.
      for (let i = 0; i < missing.length; i += 50) {
        await Promise.all(
          missing.slice(i, i + 50).map(async (f) => {
            const sighting: FixSighting = {
              vulnerability: f.vulnerability,
              package: f.package,
              fixedVersion: f.fixedVersion,
              firstSeenAt: now.toISOString(),
            };
            try {
              await col.doc(fixSightingDocId(f.key)).create(sighting);
              count(0, 1);
              found.set(f.key, sighting);
              remember(f.key, sighting);
            } catch (err) {
              if ((err as { code?: unknown }).code !== ALREADY_EXISTS) throw err;
              raced.push(f.key);
            }
          }),
        );
      }
      if (raced.length > 0) for (const [k, s] of await read(raced)) found.set(k, s);
      return [...found.values()];
    },
    async lookup(findings) {
      return [...(await read(fixesIn(findings).map((f) => f.key))).values()];
    },
  };
}
