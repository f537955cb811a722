// The fleet index: one query row per image plus sharded counters, a projection the ledger writes with every image write so dashboards never scan the ledger.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type {
  DocumentReference,
  DocumentSnapshot,
  FieldValue as FieldValueType,
  Firestore,
  Transaction,
  WriteBatch,
} from '@google-cloud/firestore';
import { z } from 'zod';
import { type Finding, Severity, severityRank } from '../findings/finding.js';
import { type ImageRecord, ImageState } from '../image-record.js';
import { Decision } from '../verdict.js';
import { COLLECTIONS, FLEET } from './collections.js';

export { FLEET };
export const SHARDS = 16;
/** Statuses people filter on: `denied` covers revoked images, `pending` everything not yet decided. */
export const STATUS_KINDS = ['denied', 'attested', 'pending', 'stale'] as const;
export type StatusKind = (typeof STATUS_KINDS)[number];
const MAX_CVES = 2_000;
const MAX_KEY = 200;

export const CveEntry = z.object({ id: z.string(), fixable: z.boolean(), severity: Severity });
export type CveEntry = z.infer<typeof CveEntry>;

export const FleetRow = z.object({
  id: z.string(),
  registry: z.string(),
  repository: z.string(),
  /** registry/repository: what `--repo` globs match. */
  name: z.string(),
  digest: z.string(),
  tags: z.array(z.string()).default([]),
  team: z.string(),
  state: ImageState,
  decisions: z.record(z.string(), Decision).default({}),
  kinds: z.array(z.enum(STATUS_KINDS)).default([]),
  staleSince: z.string().nullable().default(null),
  baseName: z.string().nullable().default(null),
  denyRules: z.array(z.string()).default([]),
  topReason: z
    .object({ ruleId: z.string(), message: z.string(), remediation: z.string().nullable() })
    .nullable()
    .default(null),
  pushedAt: z.string().nullable().default(null),
  updatedAt: z.string(),
  /** Tokens for array-contains queries: state, status kinds, team, team×kind, env decisions, path prefixes. */
  facets: z.array(z.string()).default([]),
  /** Current vulnerability ids (array-contains `--cve`), and per finding source their detail. */
  cves: z.array(z.string()).default([]),
  cvesBySource: z.record(z.string(), z.array(CveEntry)).default({}),
  counts: z.record(z.string(), z.number()).nullable().default(null),
});
export type FleetRow = z.infer<typeof FleetRow>;

/** The team an image belongs to: its `team` label, else the owner labels routing reads, else unassigned. */
export function teamOf(rec: Pick<ImageRecord, 'labels' | 'owner'>): string {
  const raw = rec.labels.team ?? rec.labels.owner ?? rec.owner ?? '';
  const t = raw.trim().slice(0, 100);
  return t.length > 0 ? t : 'unassigned';
}

export function kindsOf(rec: Pick<ImageRecord, 'state' | 'base'>): StatusKind[] {
  const out: StatusKind[] = [];
  if (rec.state === 'denied' || rec.state === 'revoked') out.push('denied');
  else if (rec.state === 'attested') out.push('attested');
  else if (rec.state !== 'deleted') out.push('pending');
  if (rec.state !== 'deleted' && rec.base?.status === 'stale') out.push('stale');
  return out;
}

/** Path prefixes of `registry/repository`, so a glob's literal head is one array-contains. */
export function pathPrefixes(name: string): string[] {
  const parts = name.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** Current vulnerabilities of one source's findings, one entry per id (fixable if any finding has a fix). */
export function cveEntries(findings: readonly Finding[]): CveEntry[] {
  const by = new Map<string, CveEntry>();
  for (const f of findings) {
    const prev = by.get(f.id);
    const fixable = f.fixState === 'fixed';
    if (!prev) by.set(f.id, { id: f.id, fixable, severity: f.severity });
    else {
      prev.fixable ||= fixable;
      if (severityRank(f.severity) > severityRank(prev.severity)) prev.severity = f.severity;
    }
  }
  return [...by.values()].sort((a, b) => a.id.localeCompare(b.id)).slice(0, MAX_CVES);
}

function mergedCves(bySource: Record<string, CveEntry[]>): CveEntry[] {
  return cveEntries(
    Object.values(bySource)
      .flat()
      .map((c) => ({
        id: c.id,
        fixState: c.fixable ? 'fixed' : 'not-fixed',
        severity: c.severity,
      })) as Finding[],
  );
}

export function fleetRow(rec: ImageRecord, cvesBySource: Record<string, CveEntry[]>): FleetRow {
  const team = teamOf(rec);
  const kinds = kindsOf(rec);
  const decisions = Object.fromEntries(
    Object.entries(rec.verdicts).map(([env, v]) => [env, v.decision]),
  );
  const denying = Object.values(rec.verdicts)
    .filter((v) => v.mode === 'enforce' && v.decision === 'deny')
    .flatMap((v) => v.reasons.filter((r) => r.level === 'deny'));
  const top = denying[0] ?? null;
  const name = `${rec.registry}/${rec.repository}`;
  const facets = [
    `state:${rec.state}`,
    `team:${team}`,
    ...kinds.flatMap((k) => [`kind:${k}`, `team:${team}|kind:${k}`]),
    ...Object.entries(decisions).map(([env, d]) => `env:${env}:${d}`),
    ...pathPrefixes(name).map((p) => `path:${p}`),
  ];
  return {
    id: rec.id,
    registry: rec.registry,
    repository: rec.repository,
    name,
    digest: rec.digest,
    tags: rec.tags,
    team,
    state: rec.state,
    decisions,
    kinds,
    staleSince: kinds.includes('stale') ? (rec.base?.supersededAt ?? rec.updatedAt) : null,
    baseName: rec.base?.name ?? null,
    denyRules: [...new Set(denying.map((r) => r.ruleId))].sort(),
    topReason: top
      ? { ruleId: top.ruleId, message: top.message, remediation: top.remediation }
      : null,
    pushedAt: rec.pushedAt,
    updatedAt: rec.updatedAt,
    facets,
    // A deleted image keeps its vulnerabilities (a re-push restores them) but answers no `--cve` query.
    cves: rec.state === 'deleted' ? [] : mergedCves(cvesBySource).map((c) => c.id),
    cvesBySource,
    counts: rec.scan.counts ? { ...rec.scan.counts.bySeverity } : null,
  };
}

/** Map keys are arbitrary strings from outside: bounded, and never Firestore's reserved `__x__`. */
export function safeKey(k: string): string {
  const s = k.slice(0, MAX_KEY).replace(/^__/, '_');
  return s.length > 0 ? s : '_';
}

type Path = string[];

/**
 * Firestore's FieldValue, required when first needed: every caller already holds a Firestore, so
 * the client is loaded; writers that import the ledger do not load it at start because of the index.
 */
let fieldValue: typeof FieldValueType | undefined;
function increment(n: number): FieldValueType {
  fieldValue ??= (
    createRequire(import.meta.url)('@google-cloud/firestore') as {
      FieldValue: typeof FieldValueType;
    }
  ).FieldValue;
  return fieldValue.increment(n);
}
/** What one image adds to the fleet counters; deleted images count only as deleted. */
export function contributions(row: FleetRow | null): Map<string, number> {
  const out = new Map<string, number>();
  if (!row) return out;
  const add = (p: Path) => out.set(JSON.stringify(p.map(safeKey)), 1);
  add(['states', row.state]);
  if (row.state === 'deleted') return out;
  add(['total']);
  for (const k of row.kinds) add(['kinds', k]);
  for (const [env, d] of Object.entries(row.decisions)) add(['envs', env, d]);
  add(['teams', row.team, 'images']);
  for (const k of row.kinds) add(['teams', row.team, k]);
  if (row.kinds.includes('denied')) {
    for (const r of row.denyRules) add(['teams', row.team, 'rules', r]);
  }
  for (const c of mergedCves(row.cvesBySource)) {
    add(['cves', c.id, 'images']);
    if (c.fixable) add(['cves', c.id, 'fixable']);
    add(['cves', c.id, c.severity]);
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: Path, value: unknown): void {
  let node = target;
  for (const seg of path.slice(0, -1)) {
    node[seg] ??= {};
    node = node[seg] as Record<string, unknown>;
  }
  node[path.at(-1) as string] = value;
}

/** Counter increments (and remediation texts) turning `before` into `after`, as one merge-set object. */
export function counterDelta(
  before: FleetRow | null,
  after: FleetRow | null,
  verdictDay?: { day: string; decisions: string[] },
): Record<string, unknown> | null {
  const a = contributions(before);
  const b = contributions(after);
  const out: Record<string, unknown> = {};
  let any = false;
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const d = (b.get(key) ?? 0) - (a.get(key) ?? 0);
    if (d === 0) continue;
    setPath(out, JSON.parse(key) as Path, increment(d));
    any = true;
  }
  for (const d of verdictDay?.decisions ?? []) {
    setPath(out, ['days', verdictDay?.day as string, d], increment(1));
    any = true;
  }
  if (after?.topReason?.remediation) {
    setPath(out, ['remediations', safeKey(after.topReason.ruleId)], after.topReason.remediation);
    any = true;
  }
  return any ? out : null;
}

export function shardOf(id: string): number {
  return createHash('sha256').update(id).digest().readUInt16BE(0) % SHARDS;
}

export function fleetRowRef(db: Firestore, id: string): DocumentReference {
  return db.collection(FLEET.rows).doc(id);
}

/** Stale images also get a row here: the "rebuild needed" list is a query over a small collection. */
export function staleRef(db: Firestore, id: string): DocumentReference {
  return db.collection(FLEET.stale).doc(id);
}

export function shardRef(db: Firestore, n: number): DocumentReference {
  return db.collection(FLEET.stats).doc(`shard-${String(n).padStart(2, '0')}`);
}

function changedDecisions(previous: ImageRecord | null, next: ImageRecord): string[] {
  return Object.entries(next.verdicts)
    .filter(([env, v]) => previous?.verdicts[env]?.decision !== v.decision)
    .map(([, v]) => v.decision);
}

export interface FleetWrite {
  db: Firestore;
  previous: ImageRecord | null;
  next: ImageRecord;
  /**
   * The row as read in the same transaction; null when it is known not to exist (a new image has
   * none, so the ledger does not read it). When undefined the write keeps the row's
   * vulnerabilities, which only a scan changes.
   */
  previousRow?: DocumentSnapshot | null | undefined;
  /** A finished (or failed: no findings) scan of one source replaces that source's vulnerabilities. */
  scan?: { source: string; findings: readonly Finding[] } | undefined;
}

/**
 * The projection of one image write, called only by the ledger's `writeImage` (ledger-store.ts)
 * inside the transaction that sets the image, with the row read in that transaction. It writes the
 * image's row and the counter delta; nothing here reads.
 */
/** Key-order-independent JSON (undefined dropped, as the client drops it), for comparing a row with its stored form. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0,
          ),
        )
      : x,
  );
}

/**
 * Stages the image's fleet row, stale entry and counter delta; returns how many writes it staged.
 * A row whose content is unchanged but for `updatedAt` is not rewritten (an unchanged rescan costs
 * no fleet writes): the row's `updatedAt` is when what it shows last changed.
 */
export function indexImageWrite(tx: Transaction, w: FleetWrite): number {
  const haveRow = w.previousRow !== undefined;
  const stored = w.previousRow?.exists ? FleetRow.safeParse(w.previousRow.data()) : null;
  // Read with the image: its vulnerabilities are known (none if the row is new or unreadable).
  const known = haveRow ? (stored?.success ? stored.data.cvesBySource : {}) : null;
  let bySource = known ?? {};
  if (w.scan) bySource = { ...bySource, [w.scan.source]: cveEntries(w.scan.findings) };
  const next = fleetRow(w.next, bySource);
  // Without the stored row the vulnerabilities are unknown here but unchanged: both sides omit them.
  const before = w.previous ? fleetRow(w.previous, known ?? {}) : null;
  const after = haveRow ? next : { ...next, cvesBySource: {} };
  const ref = fleetRowRef(w.db, w.next.id);
  let writes = 0;
  const unchanged =
    stored?.success === true &&
    canonical({ ...stored.data, updatedAt: null }) === canonical({ ...next, updatedAt: null });
  if (!unchanged) {
    if (haveRow) tx.set(ref, next);
    else {
      const { cves: _c, cvesBySource: _s, ...rest } = next;
      tx.set(ref, rest, { merge: true });
    }
    writes += 1;
    if (next.kinds.includes('stale')) {
      tx.set(staleRef(w.db, w.next.id), staleEntry(next));
      writes += 1;
    } else if (before?.kinds.includes('stale')) {
      tx.delete(staleRef(w.db, w.next.id));
      writes += 1;
    }
  }
  const delta = counterDelta(before, after, {
    day: w.next.updatedAt.slice(0, 10),
    decisions: changedDecisions(w.previous, w.next),
  });
  // An unchanged row restates its top remediation (part of the row) and counts nothing: no write.
  const restatesOnly =
    unchanged && delta !== null && Object.keys(delta).every((k) => k === 'remediations');
  if (delta && !restatesOnly) {
    tx.set(shardRef(w.db, shardOf(w.next.id)), delta, { merge: true });
    writes += 1;
  }
  return writes;
}

export function staleEntry(row: FleetRow): Omit<FleetRow, 'cves' | 'cvesBySource' | 'facets'> {
  const { cves: _c, cvesBySource: _s, facets: _f, ...rest } = row;
  return rest;
}

/** Rebuilds rows and counters from images and their current findings (backfill, seeds, repair). */
export async function writeFleetIndex(
  db: Firestore,
  images: Iterable<{ record: ImageRecord; findings: readonly Finding[] }>,
): Promise<{ rows: number }> {
  const old = await db.collection(FLEET.stale).get();
  for (let i = 0; i < old.size; i += 400) {
    const batch = db.batch();
    for (const d of old.docs.slice(i, i + 400)) batch.delete(d.ref);
    await batch.commit();
  }
  const shards: Record<string, unknown>[] = Array.from({ length: SHARDS }, () => ({}));
  const sums: Map<string, number>[] = Array.from({ length: SHARDS }, () => new Map());
  let batch: WriteBatch = db.batch();
  let inBatch = 0;
  let rows = 0;
  const pending: Promise<unknown>[] = [];
  for (const { record, findings } of images) {
    const bySourceFindings = new Map<string, Finding[]>();
    for (const f of findings)
      bySourceFindings.set(f.source, [...(bySourceFindings.get(f.source) ?? []), f]);
    const bySource = Object.fromEntries(
      [...bySourceFindings].map(([source, list]) => [source, cveEntries(list)]),
    );
    const row = fleetRow(record, bySource);
    const n = shardOf(record.id);
    const sum = sums[n] as Map<string, number>;
    for (const [k, v] of contributions(row)) sum.set(k, (sum.get(k) ?? 0) + v);
    for (const v of Object.values(record.verdicts)) {
      const k = JSON.stringify(['days', v.evaluatedAt.slice(0, 10), v.decision]);
      sum.set(k, (sum.get(k) ?? 0) + 1);
    }
    if (row.topReason?.remediation) {
      setPath(
        shards[n] as Record<string, unknown>,
        ['remediations', safeKey(row.topReason.ruleId)],
        row.topReason.remediation,
      );
    }
    batch.set(fleetRowRef(db, record.id), row);
    if (row.kinds.includes('stale')) batch.set(staleRef(db, record.id), staleEntry(row));
    rows += 1;
    if (++inBatch >= 400) {
      pending.push(batch.commit());
      batch = db.batch();
      inBatch = 0;
      if (pending.length >= 4) await Promise.all(pending.splice(0));
    }
  }
  if (inBatch > 0) pending.push(batch.commit());
  await Promise.all(pending);
  await Promise.all(
    shards.map((doc, n) => {
      for (const [k, v] of sums[n] as Map<string, number>) setPath(doc, JSON.parse(k) as Path, v);
      return shardRef(db, n).set(doc);
    }),
  );
  return { rows };
}

/** Reads every image and its current findings, then rewrites the index: for backfills, O(ledger). */
export async function rebuildFleetIndex(db: Firestore): Promise<{ rows: number }> {
  const out: { record: ImageRecord; findings: Finding[] }[] = [];
  const { ImageRecord: Schema } = await import('../image-record.js');
  const snap = await db.collection(COLLECTIONS.images).get();
  for (const d of snap.docs) {
    const record = Schema.parse(d.data());
    const { getChunkFindings } = await import('./findings-store.js');
    const findings = await getChunkFindings(
      d.ref,
      { reads: 0, writes: 0 },
      Object.keys(record.scanRefs),
    );
    out.push({ record, findings });
  }
  return writeFleetIndex(db, out);
}
