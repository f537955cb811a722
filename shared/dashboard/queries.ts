// Questions people ask of the ledger, answered from the fleet index with declared indexes; each answer says how many documents it read.
import type { Firestore, Query, QueryDocumentSnapshot } from '@google-cloud/firestore';
import { z } from 'zod';
import type { Finding } from '../findings/finding.js';
import { SEVERITIES } from '../findings/finding.js';
import { ImageRecord } from '../image-record.js';
import { COLLECTIONS } from '../ledger/collections.js';
import { getChunkFindings } from '../ledger/findings-store.js';
import {
  FLEET,
  FleetRow,
  SHARDS,
  STATUS_KINDS,
  type StatusKind,
  shardRef,
  teamOf,
} from '../ledger/fleet-index.js';
import { compileGlob } from '../policy/glob.js';
import { expiryInstant, parsePolicy } from '../policy/policy.js';
import { CURRENT_POLICY_DOC, type StoredPolicy } from '../policy/store/policy-source.js';

const DAY_MS = 86_400_000;
const VULN_ID = /^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$/;
const ENV = /^[a-z][a-z0-9-]{0,62}$/;

/** `--since`: a date, a date-time, or a duration back from now (30m, 12h, 7d). */
export const Since = z
  .string()
  .max(40)
  .regex(/^(\d+[mhd]|\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?)$/, 'a date, or 30m, 12h, 7d');

export const ImagesFilter = z.strictObject({
  state: z.enum(STATUS_KINDS).optional(),
  team: z.string().trim().min(1).max(100).optional(),
  repo: z.string().min(1).max(300).optional(),
  cve: z.string().max(200).regex(VULN_ID, 'a vulnerability id such as CVE-2005-2541').optional(),
  env: z.string().regex(ENV, 'an environment name such as prod').optional(),
  since: Since.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export type ImagesFilter = z.infer<typeof ImagesFilter>;
export type ImagesFilterInput = z.input<typeof ImagesFilter>;

export function sinceInstant(since: string, now: Date): string {
  const m = /^(\d+)([mhd])$/.exec(since);
  if (m) {
    const unit = { m: 60_000, h: 3_600_000, d: DAY_MS }[m[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(m[1]) * unit).toISOString();
  }
  const t = Date.parse(since.length === 10 ? `${since}T00:00:00Z` : since);
  if (Number.isNaN(t)) throw new Error(`invalid --since ${since}`);
  return new Date(t).toISOString();
}

/** The literal head of a repository glob, whole path segments only (`a/b/c-*` → `a/b`). */
export function globHead(glob: string): string | null {
  const parts = glob.split('/');
  const head: string[] = [];
  for (const p of parts) {
    if (/[*?[\]{}!()+@]/.test(p)) break;
    head.push(p);
  }
  if (head.length === parts.length) return glob;
  return head.length > 0 ? head.join('/') : null;
}

export interface QueryPlan {
  /** The one array-contains the server answers; the other filters are checked on the rows it returns. */
  field: 'facets' | 'cves' | null;
  token: string | null;
  since: string | null;
  index: string;
  /** The server's filter is the whole question: no row it returns is dropped here. */
  exact: boolean;
}

/** Picks the most selective filter the fleet index can answer; every plan is a declared index. */
export function planImagesQuery(f: ImagesFilter, now: Date): QueryPlan {
  const since = f.since ? sinceInstant(f.since, now) : null;
  const head = f.repo ? globHead(f.repo) : null;
  let field: QueryPlan['field'] = 'facets';
  let token: string | null = null;
  if (f.cve) {
    field = 'cves';
    token = f.cve;
  } else if (f.team && f.state) token = `team:${f.team}|kind:${f.state}`;
  else if (f.env && f.state === 'denied') token = `env:${f.env}:deny`;
  else if (head && head.split('/').length >= 2) token = `path:${head}`;
  else if (f.team) token = `team:${f.team}`;
  else if (f.state) token = `kind:${f.state}`;
  else if (f.env) token = `env:${f.env}`;
  else if (head) token = `path:${head}`;
  if (token === null) field = null;
  const given = [f.state, f.team, f.repo, f.cve, f.env].filter((x) => x !== undefined).length;
  const covered = !token
    ? 0
    : token.startsWith('team:') && token.includes('|kind:')
      ? 2
      : token.startsWith('env:') && token.endsWith(':deny')
        ? 2
        : token.startsWith('path:')
          ? Number(head === f.repo)
          : 1;
  return {
    field,
    token,
    since,
    exact: given === covered,
    index: field ? `fleet(${field} CONTAINS, pushedAt DESC)` : 'fleet(pushedAt DESC) single-field',
  };
}

/** Whether a row satisfies every filter (the server applied only one of them). */
export function rowMatches(row: FleetRow, f: ImagesFilter, since: string | null): boolean {
  if (f.state && !row.kinds.includes(f.state)) return false;
  if (f.team && row.team !== f.team) return false;
  if (f.cve && !row.cves.includes(f.cve)) return false;
  if (f.env) {
    const d = row.decisions[f.env];
    if (d === undefined) return false;
    const want: Partial<Record<StatusKind, string>> = { denied: 'deny', attested: 'allow' };
    if (f.state && want[f.state] && d !== want[f.state]) return false;
  }
  if (f.repo && !compileGlob(f.repo).test(row.name)) return false;
  if (since && (row.pushedAt ?? '') < since) return false;
  return true;
}

export interface ImagesAnswer {
  images: FleetRow[];
  plan: QueryPlan;
  /** Documents read to answer (rows the index returned, matching or not). */
  reads: number;
  truncated: boolean;
}

export async function listImages(
  db: Firestore,
  input: ImagesFilterInput,
  now: Date,
): Promise<ImagesAnswer> {
  const f = ImagesFilter.parse(input);
  const plan = planImagesQuery(f, now);
  let q: Query = db.collection(FLEET.rows);
  if (plan.field && plan.token) q = q.where(plan.field, 'array-contains', plan.token);
  if (plan.since) q = q.where('pushedAt', '>=', plan.since);
  q = q.orderBy('pushedAt', 'desc');
  const page = plan.exact ? f.limit + 1 : Math.min(500, Math.max(50, f.limit * 2));
  const images: FleetRow[] = [];
  let reads = 0;
  let cursor: QueryDocumentSnapshot | null = null;
  let exhausted = false;
  while (images.length < f.limit && !exhausted) {
    // A snapshot cursor also orders by document id, as every composite index does implicitly.
    const snap = await (cursor ? q.startAfter(cursor) : q).limit(page).get();
    reads += Math.max(1, snap.size);
    let more = false;
    for (const d of snap.docs) {
      if (images.length >= f.limit) {
        more = true;
        break;
      }
      cursor = d;
      const row = FleetRow.safeParse(d.data());
      if (row.success && rowMatches(row.data, f, plan.since)) images.push(row.data);
    }
    exhausted = !more && snap.size < page;
  }
  return { images, plan, reads, truncated: !exhausted };
}

type Counters = {
  total?: number;
  states?: Record<string, number>;
  kinds?: Record<string, number>;
  envs?: Record<string, Record<string, number>>;
  teams?: Record<string, Record<string, number | Record<string, number>>>;
  cves?: Record<string, Record<string, number>>;
  days?: Record<string, Record<string, number>>;
  remediations?: Record<string, string>;
};

function addInto(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    if (typeof v === 'number') target[k] = ((target[k] as number | undefined) ?? 0) + v;
    else if (v && typeof v === 'object') {
      target[k] ??= {};
      addInto(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    } else target[k] ??= v;
  }
}

export interface TeamDenials {
  team: string;
  images: number;
  denied: number;
  stale: number;
  topReasons: { ruleId: string; images: number; remediation: string | null }[];
}

export interface FleetCve {
  id: string;
  images: number;
  fixable: number;
  severity: string;
}

export interface ExpiringException {
  id: string;
  owner: string;
  reason: string;
  expires: string;
  daysLeft: number;
  images: number;
}

export interface Overview {
  generatedAt: string;
  total: number;
  states: Record<string, number>;
  kinds: Record<StatusKind, number>;
  environments: { env: string; allow: number; deny: number; pending: number }[];
  teams: TeamDenials[];
  stale: FleetRow[];
  staleTotal: number;
  exceptions: ExpiringException[];
  policyHash: string | null;
  cves: FleetCve[];
  days: { day: string; allow: number; deny: number; pending: number }[];
  /** Firestore documents read to build this overview: counter shards, the stale list, the policy. */
  reads: number;
}

const n = (v: unknown) => (typeof v === 'number' && v > 0 ? v : 0);

/** The overview reads counters, one short list and the policy — never the image documents. */
export async function readOverview(
  db: Firestore,
  now: Date,
  options: { staleLimit?: number; cveLimit?: number; days?: number } = {},
): Promise<Overview> {
  let reads = 0;
  const refs = Array.from({ length: SHARDS }, (_, i) => shardRef(db, i));
  const [shards, staleSnap, policySnap] = await Promise.all([
    db.getAll(...refs),
    db
      .collection(FLEET.stale)
      .orderBy('staleSince', 'asc')
      .limit(options.staleLimit ?? 20)
      .get(),
    db.collection(COLLECTIONS.policies).doc(CURRENT_POLICY_DOC).get(),
  ]);
  reads += shards.length + Math.max(1, staleSnap.size) + 1;
  const c: Counters = {};
  for (const s of shards) if (s.exists) addInto(c as Record<string, unknown>, s.data() ?? {});

  const envs = Object.entries(c.envs ?? {})
    .map(([env, d]) => ({ env, allow: n(d.allow), deny: n(d.deny), pending: n(d.pending) }))
    .filter((e) => e.allow + e.deny + e.pending > 0)
    .sort((a, b) => a.env.localeCompare(b.env));
  const teams: TeamDenials[] = Object.entries(c.teams ?? {})
    .map(([team, t]) => ({
      team,
      images: n(t.images),
      denied: n(t.denied),
      stale: n(t.stale),
      topReasons: Object.entries((t.rules as Record<string, number> | undefined) ?? {})
        .filter(([, v]) => n(v) > 0)
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, 3)
        .map(([ruleId, v]) => ({
          ruleId,
          images: v,
          remediation: c.remediations?.[ruleId] ?? null,
        })),
    }))
    .filter((t) => t.images > 0)
    .sort((a, b) => b.denied - a.denied || a.team.localeCompare(b.team));
  const sevRank = (s: Record<string, number>) =>
    [...SEVERITIES].reverse().find((sev) => n(s[sev]) > 0) ?? 'UNSPECIFIED';
  const cves = Object.entries(c.cves ?? {})
    .map(([id, v]) => ({ id, images: n(v.images), fixable: n(v.fixable), severity: sevRank(v) }))
    .filter((v) => v.images > 0)
    .sort(
      (a, b) =>
        SEVERITIES.indexOf(b.severity as never) - SEVERITIES.indexOf(a.severity as never) ||
        b.images - a.images ||
        a.id.localeCompare(b.id),
    )
    .slice(0, options.cveLimit ?? 15);
  const dayCount = options.days ?? 14;
  const days = Array.from({ length: dayCount }, (_, i) => {
    const day = new Date(now.getTime() - (dayCount - 1 - i) * DAY_MS).toISOString().slice(0, 10);
    const d = c.days?.[day] ?? {};
    return { day, allow: n(d.allow), deny: n(d.deny), pending: n(d.pending) };
  });

  const exceptions: ExpiringException[] = [];
  let policyHash: string | null = null;
  if (policySnap.exists) {
    const stored = policySnap.data() as StoredPolicy;
    policyHash = stored.hash;
    const policy = parsePolicy(stored.source, stored.format);
    const horizon = now.getTime() + 30 * DAY_MS;
    for (const x of policy.rules.vulnerabilities?.allowedCves ?? []) {
      const at = expiryInstant(x.expires);
      if (at <= now.getTime() || at > horizon) continue;
      exceptions.push({
        id: x.id,
        owner: x.owner,
        reason: x.reason,
        expires: x.expires,
        daysLeft: Math.ceil((at - now.getTime()) / DAY_MS),
        images: 0,
      });
    }
    // Images carrying the vulnerability, from the counters (no query): the exception's scope may narrow it.
    for (const x of exceptions) x.images = n(c.cves?.[x.id]?.images);
    exceptions.sort((a, b) => a.daysLeft - b.daysLeft);
  }
  const stale = staleSnap.docs.flatMap((d) => {
    const r = FleetRow.safeParse({ facets: [], cves: [], cvesBySource: {}, ...d.data() });
    return r.success ? [r.data] : [];
  });
  const kinds = Object.fromEntries(STATUS_KINDS.map((k) => [k, n(c.kinds?.[k])])) as Record<
    StatusKind,
    number
  >;
  return {
    generatedAt: now.toISOString(),
    total: n(c.total),
    states: Object.fromEntries(Object.entries(c.states ?? {}).filter(([, v]) => n(v) > 0)),
    kinds,
    environments: envs,
    teams,
    stale,
    staleTotal: kinds.stale,
    exceptions,
    policyHash,
    cves,
    days,
    reads,
  };
}

export interface AuditRow {
  id: string;
  kind: string;
  at: string | null;
  recordedAt: string | null;
  source: string | null;
  detail: Record<string, unknown>;
}

export interface ImageDetail {
  image: ImageRecord;
  team: string;
  findings: Finding[];
  audit: AuditRow[];
  reads: number;
}

const MAX_AUDIT = 500;

/** One image: its record, current findings and audit trail, oldest entry first. */
export async function readImage(db: Firestore, id: string): Promise<ImageDetail | null> {
  const ref = db.collection(COLLECTIONS.images).doc(id);
  const snap = await ref.get();
  if (!snap.exists) return null;
  const image = ImageRecord.parse({ id, ...snap.data() });
  const sources = Object.keys(image.scanRefs);
  // Findings are chunk documents per source (ledger/finding-chunks.ts): a few reads per image.
  const chunkOps = { reads: 0, writes: 0 };
  const [current, auditSnap] = await Promise.all([
    sources.length > 0 ? getChunkFindings(ref, chunkOps, sources) : [],
    ref.collection(COLLECTIONS.audit).orderBy('recordedAt', 'desc').limit(MAX_AUDIT).get(),
  ]);
  const findings: Finding[] = [...current];
  findings.sort(
    (a, b) =>
      SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || a.id.localeCompare(b.id),
  );
  const audit = auditSnap.docs
    .map((d) => {
      const { kind, at, recordedAt, source, messageId: _m, ...detail } = d.data();
      return {
        id: d.id,
        kind: typeof kind === 'string' ? kind : 'event',
        at: typeof at === 'string' ? at : null,
        recordedAt: typeof recordedAt === 'string' ? recordedAt : null,
        source: typeof source === 'string' ? source : null,
        detail,
      };
    })
    .reverse()
    // Events recorded in one instant (a seed, a batch) keep the order they happened in.
    .sort(
      (a, b) =>
        (a.at ?? a.recordedAt ?? '').localeCompare(b.at ?? b.recordedAt ?? '') ||
        (a.recordedAt ?? '').localeCompare(b.recordedAt ?? ''),
    );
  return {
    image,
    team: teamOf(image),
    findings,
    audit,
    reads: 1 + chunkOps.reads + Math.max(1, auditSnap.size),
  };
}
