// Re-evaluation of the ledger: a paged fan-out through Pub/Sub, idempotent per page, with progress kept in Firestore.
import { randomUUID } from 'node:crypto';
import { FieldValue, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import type { Finding, VexStatement } from '../findings/finding.js';
import type { ImageRecord } from '../image-record.js';
import { imageDocId } from '../image-ref/image-ref.js';
import { COLLECTIONS } from '../ledger/collections.js';
import type { FixSightingStore } from '../ledger/fix-sightings.js';
import type { EventMeta, UseCaseLedger } from '../ledger/image-ledger.js';
import { type ReevaluateMessage, RunId } from '../messages.js';
import { diffVerdicts, evaluate } from '../policy/evaluate.js';
import { canonicalJson, parsePolicy, policyHash } from '../policy/policy.js';
import {
  CURRENT_POLICY_DOC,
  type PolicySnapshot,
  type PolicySource,
  type StoredPolicy,
} from '../policy/store/policy-source.js';
import { firestoreVexStore } from '../policy/store/vex-store.js';
import { matchProduct } from '../policy/vex.js';
import type { Verdict } from '../verdict.js';
import { computeEffects, type Effect, type EffectPublisher } from './effects.js';
import { aggregateIndexVerdicts, isIndex } from './index-verdicts.js';
import { type IngestDeps, sweepEnrichment } from './registry-ingest.js';

export const PAGE_SIZE = 200;
/** A record that keeps changing under us is left to the event that changes it. */
const MAX_ATTEMPTS = 3;

export { ReevaluateMessage, type ReevaluateMessageInput } from '../messages.js';

export interface ReevaluationDeps {
  db: Firestore;
  ledger: UseCaseLedger;
  policy: PolicySource;
  publisher: EffectPublisher;
  /** Sends the next page (or a start) to the reevaluate topic. */
  enqueue(message: ReevaluateMessage): Promise<void>;
  pageSize?: number;
  /** Images evaluated at once within a page. */
  concurrency?: number;
  /** When each fix was first seen (fix grace periods); absent: no grace applies. */
  fixes?: FixSightingStore;
  /** What reading the registry for waiting pushes needs (`enrich` messages); absent: they are refused. */
  enrich?: () => Promise<IngestDeps>;
}

export const RunProgress = z.object({
  runId: z.string(),
  reason: z.string(),
  policyHash: z.string().nullable(),
  startedAt: z.string(),
  /** Ledger size when the run started (an aggregation count); null if it could not be counted. */
  total: z.number().int().nonnegative().nullable().default(null),
  pages: z.number().int().nonnegative(),
  processed: z.number().int().nonnegative(),
  changed: z.number().int().nonnegative(),
  done: z.boolean(),
  finishedAt: z.string().nullable(),
});
export type RunProgress = z.infer<typeof RunProgress>;

/** Same decisions, reasons and policy: nothing to write (evaluatedAt alone does not count). */
export function sameVerdicts(a: Record<string, Verdict>, b: Record<string, Verdict>): boolean {
  // Canonical (sorted keys): Firestore hands maps back in its own key order, not the evaluator's.
  const strip = (v: Record<string, Verdict>) =>
    canonicalJson(
      Object.fromEntries(
        Object.entries(v).map(([env, { evaluatedAt: _t, ...rest }]) => [env, rest]),
      ),
    );
  return strip(a) === strip(b);
}

/** A cheap superset of the statements naming the image; the policy engine applies its own matching rules. */
function vexFor(image: ImageRecord, all: readonly VexStatement[]): VexStatement[] {
  return all.filter((s) => s.products.some((p) => matchProduct(p, image, true)));
}

async function allVex(db: Firestore): Promise<VexStatement[]> {
  const snap = await db.collection(COLLECTIONS.vex).get();
  return snap.docs.map((d) => {
    const { keys: _k, ...s } = d.data() as VexStatement & { keys?: string[] };
    return s;
  });
}

/** Reads the applied policy without any cache: a run must use the policy it was started for (or a newer one). */
export async function readCurrentPolicy(db: Firestore): Promise<PolicySnapshot | null> {
  const snap = await db.collection(COLLECTIONS.policies).doc(CURRENT_POLICY_DOC).get();
  if (!snap.exists) return null;
  const stored = snap.data() as StoredPolicy;
  const policy = parsePolicy(stored.source, stored.format);
  return { policy, hash: policyHash(policy) };
}

async function policyForRun(
  deps: Pick<ReevaluationDeps, 'db' | 'policy'>,
  runHash: string | null,
): Promise<PolicySnapshot | null> {
  const cached = await deps.policy.current();
  // Instances cache the policy briefly; one that still holds the previous policy must not apply it.
  if (cached && cached.hash === runHash) return cached;
  return readCurrentPolicy(deps.db);
}

export async function mapLimit<T, R>(
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

/** Findings read with one range query hold at most about this many documents (memory per page). */
export const MAX_FINDINGS_PER_READ = 20_000;

/** Consecutive images (in id order) whose findings, by their scan counts, fit one read. */
function findingGroups(images: readonly ImageRecord[]): ImageRecord[][] {
  const groups: ImageRecord[][] = [];
  let current: ImageRecord[] = [];
  let total = 0;
  for (const image of images) {
    const n = image.scan.counts?.total ?? 0;
    if (current.length > 0 && total + n > MAX_FINDINGS_PER_READ) {
      groups.push(current);
      current = [];
      total = 0;
    }
    current.push(image);
    total += n;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Runs `fn` for each image with its findings, reading findings group by group. */
async function withFindings<R>(
  deps: Pick<ReevaluationDeps, 'db' | 'ledger'> & { concurrency?: number | undefined },
  images: readonly ImageRecord[],
  fn: (image: ImageRecord, findings: Finding[]) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (const group of findingGroups(images)) {
    const findings = await deps.ledger.findingsOfRange(group);
    out.push(
      ...(await mapLimit(group, deps.concurrency ?? 16, (image) =>
        fn(image, findings.get(image.id) ?? []),
      )),
    );
  }
  return out;
}

/** The event a re-evaluation of one image under `key` (the run id, or the message id) is recorded as. */
function eventOf(key: string, imageId: string, now: Date): EventMeta {
  return { source: 'reevaluate', messageId: `${key}:${imageId}`, at: now.toISOString() };
}

/**
 * Evaluates one stored image under a snapshot and writes the verdict if it changed; returns whether it did.
 * With a `key` (the run id, or the message id), the effects are kept on a marker written in the same
 * transaction until published, so a crash between the write and the publish is repaired by redelivery.
 */
async function childrenOf(
  ledger: ReevaluationDeps['ledger'],
  index: ImageRecord,
): Promise<Map<string, ImageRecord>> {
  const out = new Map<string, ImageRecord>();
  for (const p of index.platforms) {
    const child = await ledger.getImage(imageDocId(index.registry, index.repository, p.digest));
    if (child) out.set(p.digest, child);
  }
  return out;
}

export async function reevaluateImage(
  deps: Pick<ReevaluationDeps, 'db' | 'ledger' | 'publisher' | 'fixes'>,
  snapshot: PolicySnapshot,
  image: ImageRecord,
  vex: readonly VexStatement[],
  now: Date,
  options: { findings?: Finding[]; key?: string } = {},
): Promise<boolean> {
  let record: ImageRecord | null = image;
  let findings = options.findings;
  for (let attempt = 1; record && attempt <= MAX_ATTEMPTS; attempt++) {
    if (record.state === 'deleted') return false;
    const evaluated: ImageRecord = record;
    const index = isIndex(evaluated);
    const f = index ? [] : (findings ?? (await deps.ledger.getFindings(evaluated)));
    const next = index
      ? aggregateIndexVerdicts(
          evaluated,
          await childrenOf(deps.ledger, evaluated),
          snapshot.policy,
          snapshot.hash,
          now,
        )
      : evaluate({
          image: evaluated,
          findings: f,
          vex: vexFor(evaluated, vex),
          policy: snapshot.policy,
          policyHash: snapshot.hash,
          now,
          fixSightings: deps.fixes ? await deps.fixes.lookup(f) : [],
        });
    if (sameVerdicts(evaluated.verdicts, next)) return false;
    const meta = options.key
      ? eventOf(options.key, evaluated.id, now)
      : { source: 'reevaluate', messageId: evaluated.id, at: now.toISOString() };
    // Optimistic: the record must still be the version evaluated, else evaluate the newer one.
    const outcome = await deps.ledger.transact<Effect, 'gone' | 'moved'>(
      evaluated.id,
      meta,
      (current) => {
        if (!current) return { skip: 'gone' };
        if (current.version !== evaluated.version) return { skip: 'moved' };
        return {
          record: { ...current, verdicts: next },
          audit: {
            kind: 'verdict-change',
            cause: 'reevaluation',
            changes: JSON.parse(JSON.stringify(diffVerdicts(current.verdicts, next))),
            policyHash: snapshot.hash,
          },
          auditId: `reevaluate:${snapshot.hash.slice(7, 23)}:${current.version}`,
          // Without a key there is no marker to keep them on: they are published right away.
          effects: (previous, updated) =>
            options.key ? computeEffects(previous, updated, f, now, snapshot.policy) : [],
        };
      },
      { now, dedupe: false },
    );
    switch (outcome.outcome) {
      case 'gone':
        return false;
      case 'moved':
        record = outcome.image;
        findings = undefined;
        continue;
      case 'applied': {
        const effects = options.key
          ? outcome.effects
          : computeEffects(outcome.previous, outcome.image as ImageRecord, f, now, snapshot.policy);
        if (options.key) await deps.ledger.settle(meta, effects, (e) => deps.publisher.publish(e));
        else if (effects.length > 0) await deps.publisher.publish(effects);
        return true;
      }
      case 'duplicate':
        return false;
      default: {
        const never: never = outcome.outcome;
        throw new Error(`unknown outcome ${JSON.stringify(never)}`);
      }
    }
  }
  return false;
}

/** Publishes effects an earlier, interrupted delivery wrote but never published. */
async function republishPending(
  deps: Pick<ReevaluationDeps, 'ledger' | 'publisher'>,
  key: string,
  imageIds: readonly string[],
  now: Date,
): Promise<number> {
  const pending = await deps.ledger.pendingEffects<Effect>({
    metas: imageIds.map((id) => eventOf(key, id, now)),
  });
  for (const p of pending.filter((e) => !e.done)) {
    await deps.ledger.settle(p.meta, p.effects, (e) => deps.publisher.publish(e));
  }
  return pending.length;
}

export async function startRun(
  deps: ReevaluationDeps,
  msg: { runId?: string | undefined; reason: string },
  now: Date,
): Promise<string> {
  const runId =
    msg.runId ?? `${now.toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
  const snapshot = await readCurrentPolicy(deps.db);
  const ref = deps.db.collection(COLLECTIONS.reevaluations).doc(runId);
  // The count only feeds the progress display.
  const total = await deps.ledger.countImages();
  const created = await deps.db.runTransaction(async (tx) => {
    if ((await tx.get(ref)).exists) return false;
    const progress: RunProgress = {
      runId,
      reason: msg.reason,
      policyHash: snapshot?.hash ?? null,
      startedAt: now.toISOString(),
      total,
      pages: 0,
      processed: 0,
      changed: 0,
      done: false,
      finishedAt: null,
    };
    tx.set(ref, progress);
    return true;
  });
  // A start delivered twice creates one run; the first page is (re)sent, and deduplicated per page.
  if (created || !(await ref.collection('pages').doc('0').get()).exists) {
    await deps.enqueue({ kind: 'page', runId, cursor: null, page: 0 });
  }
  return runId;
}

export interface PageResult {
  processed: number;
  changed: number;
  duplicate: boolean;
  next: string | null;
}

/**
 * Processes one page. The page's marker and the run's counters are written in one transaction, so a
 * page delivered twice counts once; the next page is enqueued once (a retry re-sends it only if the
 * earlier delivery died before sending it). Work per page is bounded by the page size, not the ledger.
 */
export async function processPage(
  deps: ReevaluationDeps,
  msg: { runId: string; cursor: string | null; page: number },
  now: Date,
): Promise<PageResult> {
  const runRef = deps.db.collection(COLLECTIONS.reevaluations).doc(msg.runId);
  const pageRef = runRef.collection('pages').doc(String(msg.page));
  const size = deps.pageSize ?? PAGE_SIZE;
  const [run, existing] = await deps.db.getAll(runRef, pageRef);
  deps.ledger.ops.reads += 2;
  if (!run?.exists) {
    // Pages of a run that was never started (or was deleted) are dropped: there is nothing to count.
    return { processed: 0, changed: 0, duplicate: true, next: null };
  }
  const enqueueNext = async (next: string | null) => {
    if (!next) return;
    await deps.enqueue({ kind: 'page', runId: msg.runId, cursor: next, page: msg.page + 1 });
    await pageRef.set({ enqueued: true }, { merge: true });
    deps.ledger.ops.writes += 1;
  };
  if (existing?.exists && existing.get('status') === 'done') {
    const next = (existing.get('next') as string | null) ?? null;
    if (existing.get('enqueued') !== true) await enqueueNext(next);
    return { processed: 0, changed: 0, duplicate: true, next };
  }
  const retry = existing?.exists === true;
  if (!retry) {
    await pageRef.set({ status: 'started', at: now.toISOString() });
    deps.ledger.ops.writes += 1;
  }
  const snapshot = await policyForRun(deps, (run.get('policyHash') as string | null) ?? null);
  // One document past the page tells whether another page follows, so no empty last page is sent.
  const page = await deps.ledger.listImages(msg.cursor, size + 1);
  const records = page.slice(0, size);
  let changed = 0;
  if (snapshot && records.length > 0) {
    const vex = await allVex(deps.db);
    const results = await withFindings(deps, records, (image, findings) =>
      reevaluateImage(deps, snapshot, image, vex, now, { key: msg.runId, findings }),
    );
    changed = results.filter(Boolean).length;
    if (retry)
      await republishPending(
        deps,
        msg.runId,
        records.map((r) => r.id),
        now,
      );
  }
  const next = page.length > size ? (records.at(-1)?.id ?? null) : null;
  const counted = await deps.db.runTransaction(async (tx) => {
    const done = await tx.get(pageRef);
    if (done.exists && done.get('status') === 'done') return false;
    tx.set(pageRef, {
      status: 'done',
      processed: records.length,
      changed,
      next,
      enqueued: false,
      at: now.toISOString(),
    });
    tx.update(runRef, {
      pages: FieldValue.increment(1),
      processed: FieldValue.increment(records.length),
      changed: FieldValue.increment(changed),
      ...(next ? {} : { done: true, finishedAt: now.toISOString() }),
    });
    return true;
  });
  deps.ledger.ops.reads += 1;
  if (counted) {
    deps.ledger.ops.writes += 2;
    await enqueueNext(next);
  }
  return { processed: records.length, changed, duplicate: !counted, next };
}

/** Progress of a run, or null when there is no such run. */
export async function runProgress(db: Firestore, runId: string): Promise<RunProgress | null> {
  const snap = await db.collection(COLLECTIONS.reevaluations).doc(runId).get();
  return snap.exists ? RunProgress.parse(snap.data()) : null;
}

export async function handleReevaluateMessage(
  deps: ReevaluationDeps,
  msg: ReevaluateMessage,
  now: Date,
  meta: { messageId?: string } = {},
): Promise<unknown> {
  switch (msg.kind) {
    case 'start': {
      // A scheduler's start carries no run id: the message id makes its redelivery the same run.
      const runId = msg.runId ?? (meta.messageId ? `run-${meta.messageId}` : undefined);
      const safe = runId === undefined || RunId.safeParse(runId).success ? runId : undefined;
      return { runId: await startRun(deps, { ...msg, runId: safe }, now) };
    }
    case 'page':
      return processPage(deps, msg, now);
    case 'image': {
      const key = meta.messageId ? `msg-${meta.messageId}` : undefined;
      if (key) {
        // A marker is written only with effects: one exists when this message changed the image.
        const [seen] = await deps.ledger.pendingEffects({
          metas: [eventOf(key, msg.imageId, now)],
        });
        if (seen) {
          await republishPending(deps, key, [msg.imageId], now);
          return { changed: false, duplicate: true };
        }
      }
      const image = await deps.ledger.getImage(msg.imageId);
      const snapshot = image ? await deps.policy.current() : null;
      if (!snapshot || !image) return { changed: false };
      return {
        // One image: only the statements that name it (a page reads the collection once for all).
        changed: await reevaluateImage(
          deps,
          snapshot,
          image,
          await firestoreVexStore(deps.db).forImage(image),
          now,
          {
            ...(key ? { key } : {}),
          },
        ),
      };
    }
    case 'enrich': {
      if (!deps.enrich)
        throw new InvalidInputError(
          'this deployment reads no registry: enrich messages are refused',
        );
      return sweepEnrichment(await deps.enrich(), now, msg.limit);
    }
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

export interface PreviewFlip {
  imageId: string;
  environment: string;
  from: string | null;
  to: string;
  reasons: string[];
}

export interface PolicyPreview {
  images: number;
  /** Images with at least one environment whose decision would change. */
  changedImages: number;
  unchanged: number;
  /** Per environment: how many decisions would go to allow / deny / pending. */
  counts: Record<string, { allow: number; deny: number; pending: number; flips: number }>;
  flips: PreviewFlip[];
}

/** What a proposed policy would change, without writing anything. */
export async function previewPolicy(
  deps: Pick<ReevaluationDeps, 'db' | 'ledger' | 'fixes'> & {
    concurrency?: number;
    /** Called after each page with the number of images read so far (the CLI shows progress). */
    onProgress?: (imagesRead: number) => void;
  },
  proposed: PolicySnapshot,
  now: Date,
): Promise<PolicyPreview> {
  const vex = await allVex(deps.db);
  const flips: PreviewFlip[] = [];
  const counts: PolicyPreview['counts'] = {};
  let images = 0;
  let unchanged = 0;
  let cursor: string | null = null;
  for (;;) {
    const page = await deps.ledger.listImages(cursor, PAGE_SIZE);
    const records = page.filter((image) => image.state !== 'deleted');
    const evaluated = await withFindings(deps, records, async (image, findings) => ({
      image,
      next: evaluate({
        image,
        findings,
        vex: vexFor(image, vex),
        policy: proposed.policy,
        policyHash: proposed.hash,
        now,
        fixSightings: deps.fixes ? await deps.fixes.lookup(findings) : [],
      }),
    }));
    for (const { image, next } of evaluated) {
      images += 1;
      let flipped = false;
      for (const [env, v] of Object.entries(next).sort(([a], [b]) => a.localeCompare(b))) {
        counts[env] ??= { allow: 0, deny: 0, pending: 0, flips: 0 };
        const c = counts[env];
        c[v.decision] += 1;
        const before = image.verdicts[env]?.decision ?? null;
        if (before !== v.decision) {
          flipped = true;
          c.flips += 1;
          flips.push({
            imageId: image.id,
            environment: env,
            from: before,
            to: v.decision,
            reasons: v.reasons
              .filter((r) => r.level === 'deny' || v.decision !== 'deny')
              .map((r) => `${r.ruleId}: ${r.message}`),
          });
        }
      }
      if (!flipped) unchanged += 1;
    }
    deps.onProgress?.(images);
    if (page.length < PAGE_SIZE) break;
    cursor = page.at(-1)?.id ?? null;
  }
  return { images, changedImages: images - unchanged, unchanged, counts, flips };
}
