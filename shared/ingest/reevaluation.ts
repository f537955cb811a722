// Re-evaluation of the ledger: a paged fan-out through Pub/Sub, idempotent per page, with progress kept in Firestore.
import { randomUUID } from 'node:crypto';
import {
  FieldPath,
  FieldValue,
  type Firestore,
  type QueryDocumentSnapshot,
} from '@google-cloud/firestore';
import { z } from 'zod';
import type { Finding, VexStatement } from '../findings/finding.js';
import { COLLECTIONS, safeDocId } from '../ledger/collections.js';
import { ImageRecord, type Verdict } from '../ledger/image-record.js';
import type { FirestoreLedger } from '../ledger/ledger-store.js';
import { deriveState } from '../ledger/state.js';
import { diffVerdicts, evaluate } from '../policy/evaluate.js';
import { matchProduct } from '../policy/vex.js';
import { computeEffects, type Effect, type EffectPublisher } from './effects.js';
import type { PolicySnapshot, PolicySource } from './policy-source.js';

export const PAGE_SIZE = 200;

export const ReevaluateMessage = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('start'),
    runId: z
      .string()
      .regex(/^[\w.-]{1,100}$/)
      .optional(),
    reason: z.string().max(200).default('manual'),
  }),
  z.object({
    kind: z.literal('page'),
    runId: z.string().regex(/^[\w.-]{1,100}$/),
    cursor: z.string().max(1500).nullable(),
    page: z.number().int().nonnegative(),
  }),
  z.object({ kind: z.literal('image'), imageId: z.string().min(1).max(1500) }),
]);
export type ReevaluateMessage = z.infer<typeof ReevaluateMessage>;

export interface ReevaluationDeps {
  db: Firestore;
  ledger: FirestoreLedger;
  policy: PolicySource;
  publisher: EffectPublisher;
  /** Sends the next page (or a start) to the reevaluate topic. */
  enqueue(message: ReevaluateMessage): Promise<void>;
  pageSize?: number;
  /** Images evaluated at once within a page. */
  concurrency?: number;
}

export interface RunProgress {
  runId: string;
  reason: string;
  policyHash: string | null;
  startedAt: string;
  pages: number;
  processed: number;
  changed: number;
  done: boolean;
  finishedAt: string | null;
}

/** Same decisions, reasons and policy: nothing to write (evaluatedAt alone does not count). */
export function sameVerdicts(a: Record<string, Verdict>, b: Record<string, Verdict>): boolean {
  const strip = (v: Record<string, Verdict>) =>
    JSON.stringify(
      Object.entries(v)
        .sort(([x], [y]) => x.localeCompare(y))
        .map(([env, { evaluatedAt: _t, ...rest }]) => [env, rest]),
    );
  return strip(a) === strip(b);
}

/** A cheap superset of the statements naming the image; the policy engine applies its own matching rules. */
function vexFor(image: ImageRecord, all: readonly VexStatement[]): VexStatement[] {
  return all.filter((s) => s.products.some((p) => matchProduct(p, image, true)));
}

async function allVex(db: Firestore): Promise<VexStatement[]> {
  const snap = await db.collection(COLLECTIONS.vex).limit(10_000).get();
  return snap.docs.map((d) => {
    const { keys: _k, ...s } = d.data() as VexStatement & { keys?: string[] };
    return s;
  });
}

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Evaluates one stored image under a snapshot and writes the verdict if it changed; returns whether it did. */
export async function reevaluateImage(
  deps: Pick<ReevaluationDeps, 'db' | 'ledger' | 'publisher'>,
  snapshot: PolicySnapshot,
  image: ImageRecord,
  vex: readonly VexStatement[],
  now: Date,
  findings?: Finding[],
): Promise<boolean> {
  if (image.state === 'deleted') return false;
  const f = findings ?? (await deps.ledger.getFindings(image));
  const next = evaluate({
    image,
    findings: f,
    vex: vexFor(image, vex),
    policy: snapshot.policy,
    policyHash: snapshot.hash,
    now,
  });
  if (sameVerdicts(image.verdicts, next)) return false;
  const ref = deps.ledger.imageRef(image.id);
  const nowIso = now.toISOString();
  // Optimistic: the record must still be the version evaluated, else a newer event already decided it.
  const effects = await deps.db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    deps.ledger.ops.reads += 1;
    if (!snap.exists) return null;
    const current = ImageRecord.parse(snap.data());
    if (current.version !== image.version) return null;
    const updated = { ...current, verdicts: next, version: current.version + 1, updatedAt: nowIso };
    updated.state = deriveState(updated);
    tx.set(ref, updated);
    const changes = diffVerdicts(current.verdicts, next);
    tx.set(
      ref
        .collection(COLLECTIONS.audit)
        .doc(safeDocId(`reevaluate:${snapshot.hash.slice(7, 23)}:${current.version}`)),
      {
        kind: 'verdict-change',
        cause: 'reevaluation',
        changes: JSON.parse(JSON.stringify(changes)),
        policyHash: snapshot.hash,
        recordedAt: nowIso,
      },
    );
    deps.ledger.ops.writes += 2;
    return computeEffects(current, updated, f, now, snapshot.policy);
  });
  if (effects === null) return false;
  await deps.publisher.publish(effects as Effect[]);
  return true;
}

export async function startRun(
  deps: ReevaluationDeps,
  msg: { runId?: string | undefined; reason: string },
  now: Date,
): Promise<string> {
  const runId =
    msg.runId ?? `${now.toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
  const snapshot = await deps.policy.current();
  const ref = deps.db.collection(COLLECTIONS.reevaluations).doc(runId);
  const created = await deps.db.runTransaction(async (tx) => {
    if ((await tx.get(ref)).exists) return false;
    const progress: RunProgress = {
      runId,
      reason: msg.reason,
      policyHash: snapshot?.hash ?? null,
      startedAt: now.toISOString(),
      pages: 0,
      processed: 0,
      changed: 0,
      done: false,
      finishedAt: null,
    };
    tx.set(ref, progress);
    return true;
  });
  if (created) await deps.enqueue({ kind: 'page', runId, cursor: null, page: 0 });
  return runId;
}

/**
 * Processes one page. The page's marker and the run's counters are written in one transaction, so a
 * page delivered twice counts once; the next page is always (re)enqueued, and deduplicated the same way.
 */
export async function processPage(
  deps: ReevaluationDeps,
  msg: { runId: string; cursor: string | null; page: number },
  now: Date,
): Promise<{ processed: number; changed: number; duplicate: boolean; next: string | null }> {
  const runRef = deps.db.collection(COLLECTIONS.reevaluations).doc(msg.runId);
  const pageRef = runRef.collection('pages').doc(String(msg.page));
  const size = deps.pageSize ?? PAGE_SIZE;
  const existing = await pageRef.get();
  if (existing.exists) {
    const next = existing.get('next') as string | null;
    if (next)
      await deps.enqueue({ kind: 'page', runId: msg.runId, cursor: next, page: msg.page + 1 });
    return { processed: 0, changed: 0, duplicate: true, next };
  }
  const snapshot = await deps.policy.current();
  let query = deps.db.collection(COLLECTIONS.images).orderBy(FieldPath.documentId()).limit(size);
  if (msg.cursor) query = query.startAfter(msg.cursor);
  const snap = await query.get();
  deps.ledger.ops.reads += Math.max(1, snap.size);
  let changed = 0;
  if (snapshot && snap.size > 0) {
    const vex = await allVex(deps.db);
    const results = await mapLimit(snap.docs, deps.concurrency ?? 16, (d: QueryDocumentSnapshot) =>
      reevaluateImage(deps, snapshot, ImageRecord.parse(d.data()), vex, now),
    );
    changed = results.filter(Boolean).length;
  }
  const next = snap.size === size ? (snap.docs.at(-1)?.id ?? null) : null;
  const counted = await deps.db.runTransaction(async (tx) => {
    if ((await tx.get(pageRef)).exists) return false;
    tx.set(pageRef, { processed: snap.size, changed, next, at: now.toISOString() });
    tx.update(runRef, {
      pages: FieldValue.increment(1),
      processed: FieldValue.increment(snap.size),
      changed: FieldValue.increment(changed),
      ...(next ? {} : { done: true, finishedAt: now.toISOString() }),
    });
    return true;
  });
  if (next)
    await deps.enqueue({ kind: 'page', runId: msg.runId, cursor: next, page: msg.page + 1 });
  return { processed: snap.size, changed, duplicate: !counted, next };
}

export async function handleReevaluateMessage(
  deps: ReevaluationDeps,
  msg: ReevaluateMessage,
  now: Date,
): Promise<unknown> {
  switch (msg.kind) {
    case 'start':
      return { runId: await startRun(deps, msg, now) };
    case 'page':
      return processPage(deps, msg, now);
    case 'image': {
      const snapshot = await deps.policy.current();
      const image = await deps.ledger.getImage(msg.imageId);
      if (!snapshot || !image) return { changed: false };
      return { changed: await reevaluateImage(deps, snapshot, image, await allVex(deps.db), now) };
    }
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

/** What a proposed policy would change, without writing anything. */
export async function previewPolicy(
  deps: Pick<ReevaluationDeps, 'db' | 'ledger'>,
  proposed: PolicySnapshot,
  now: Date,
): Promise<{
  images: number;
  flips: {
    imageId: string;
    environment: string;
    from: string | null;
    to: string;
    reasons: string[];
  }[];
  unchanged: number;
}> {
  const vex = await allVex(deps.db);
  const flips: {
    imageId: string;
    environment: string;
    from: string | null;
    to: string;
    reasons: string[];
  }[] = [];
  let images = 0;
  let unchanged = 0;
  let cursor: string | null = null;
  for (;;) {
    let q = deps.db.collection(COLLECTIONS.images).orderBy(FieldPath.documentId()).limit(PAGE_SIZE);
    if (cursor) q = q.startAfter(cursor);
    const snap = await q.get();
    for (const d of snap.docs) {
      const image = ImageRecord.parse(d.data());
      if (image.state === 'deleted') continue;
      images += 1;
      const next = evaluate({
        image,
        findings: await deps.ledger.getFindings(image),
        vex: vexFor(image, vex),
        policy: proposed.policy,
        policyHash: proposed.hash,
        now,
      });
      let flipped = false;
      for (const [env, v] of Object.entries(next)) {
        const before = image.verdicts[env]?.decision ?? null;
        if (before !== v.decision) {
          flipped = true;
          flips.push({
            imageId: image.id,
            environment: env,
            from: before,
            to: v.decision,
            reasons: v.reasons
              .filter((r) => r.level === 'deny')
              .map((r) => `${r.ruleId}: ${r.message}`),
          });
        }
      }
      if (!flipped) unchanged += 1;
    }
    if (snap.size < PAGE_SIZE) break;
    cursor = snap.docs.at(-1)?.id ?? null;
  }
  return { images, flips, unchanged };
}
