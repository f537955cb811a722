import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Finding, findingKey } from '../../../shared/findings/finding.js';
import {
  type FindingChunk,
  planChunks,
  vulnerabilityIds,
} from '../../../shared/ledger/finding-chunks.js';

const finding = (i: number, over: Partial<Finding> = {}): Finding => ({
  id: `CVE-2024-${10_000 + i}`,
  aliases: i % 5 === 0 ? [`GHSA-${i}`] : [],
  package: `pkg-${i % 40}`,
  packageType: 'deb',
  installedVersion: `1.${i}.0`,
  fixedVersion: null,
  fixState: 'not-fixed',
  severity: 'MEDIUM',
  cvss: null,
  source: 'container-analysis',
  description: null,
  url: null,
  ...over,
});

/** Applies a plan to stored chunks, as the ledger's transaction does. */
function apply(stored: FindingChunk[], plan: ReturnType<typeof planChunks>): FindingChunk[] {
  const byN = new Map(stored.map((c) => [c.n, c]));
  for (const n of plan.remove) byN.delete(n);
  for (const c of plan.write) byN.set(c.n, c);
  return [...byN.values()];
}

const keys = (fs: readonly Finding[]) => fs.map(findingKey).sort();
const limits = { maxBytes: 100_000, maxFindings: 7 };

describe('planChunks', () => {
  it('splits a first scan into chunks within the limits, with their vulnerability ids', () => {
    const all = Array.from({ length: 20 }, (_, i) => finding(i));
    const plan = planChunks('container-analysis', [], all, limits);
    expect(plan.remove).toEqual([]);
    expect(plan.changedFindings).toBe(20);
    expect(plan.write.map((c) => c.findings.length)).toEqual([7, 7, 6]);
    expect(keys(plan.write.flatMap((c) => c.findings))).toEqual(keys(all));
    for (const c of plan.write) expect(c.vulnerabilities).toEqual(vulnerabilityIds(c.findings));
    expect(plan.write[0]?.vulnerabilities).toContain('GHSA-0');
  });

  it('writes nothing for an unchanged set, in any order', () => {
    const all = Array.from({ length: 20 }, (_, i) => finding(i));
    const stored = planChunks('container-analysis', [], all, limits).write;
    const plan = planChunks('container-analysis', stored, [...all].reverse(), limits);
    expect(plan).toEqual({ write: [], remove: [], changedFindings: 0 });
  });

  it('rewrites only the chunk holding a changed finding, and fills that chunk with a new one', () => {
    const all = Array.from({ length: 20 }, (_, i) => finding(i));
    const stored = planChunks('container-analysis', [], all, limits).write;
    const holder = stored.find((c) => c.findings.some((f) => f.id === finding(15).id));
    const next = all.filter((_, i) => i !== 3);
    next[14] = { ...(next[14] as Finding), severity: 'CRITICAL' };
    const plan = planChunks('container-analysis', stored, [...next, finding(99)], limits);
    expect(plan.changedFindings).toBe(3);
    // Finding 3's chunk loses it and gains the new one; finding 15's chunk is rewritten.
    expect(plan.write.map((c) => c.n).sort()).toEqual([0, holder?.n].sort());
    expect(plan.remove).toEqual([]);
  });

  it('deletes a chunk whose findings are all gone', () => {
    const all = Array.from({ length: 14 }, (_, i) => finding(i));
    const stored = planChunks('container-analysis', [], all, limits).write;
    const second = new Set(stored[1]?.findings.map(findingKey));
    const plan = planChunks(
      'container-analysis',
      stored,
      all.filter((f) => !second.has(findingKey(f))),
      limits,
    );
    expect(plan).toEqual({ write: [], remove: [1], changedFindings: 7 });
  });

  it('rejects a finding of another source', () => {
    expect(() => planChunks('trivy', [], [finding(1)])).toThrow(/container-analysis finding/);
  });

  it('touches at most as many chunks as findings changed, and stores exactly the new set', () => {
    const universe = Array.from({ length: 60 }, (_, i) => finding(i));
    const scan = fc
      .tuple(fc.subarray(universe), fc.array(fc.integer({ min: 0, max: 59 }), { maxLength: 10 }))
      .map(([set, bumped]) =>
        set.map((f) =>
          bumped.includes(Number(f.installedVersion.split('.')[1]))
            ? { ...f, severity: 'HIGH' as const }
            : f,
        ),
      );
    fc.assert(
      fc.property(fc.array(scan, { minLength: 1, maxLength: 5 }), (scans) => {
        let stored: FindingChunk[] = [];
        for (const next of scans) {
          const plan = planChunks('container-analysis', stored, next, limits);
          expect(plan.write.length + plan.remove.length).toBeLessThanOrEqual(plan.changedFindings);
          stored = apply(stored, plan);
          const flat = stored.flatMap((c) => c.findings);
          expect(keys(flat)).toEqual(keys(next));
          expect(
            JSON.stringify(flat.sort((a, b) => (findingKey(a) < findingKey(b) ? -1 : 1))),
          ).toBe(
            JSON.stringify([...next].sort((a, b) => (findingKey(a) < findingKey(b) ? -1 : 1))),
          );
          for (const c of stored) expect(c.findings.length).toBeLessThanOrEqual(limits.maxFindings);
        }
      }),
    );
  });
});
