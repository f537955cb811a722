// The enrich sweep during a long registry outage (a real registry stopped, then started): each waiting image is read again only when its backoff has run out, the longest-due first (none starves), records older than the backoff are swept, and the reads end after the attempts limit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../../scripts/lib/local-registry.js';
import { skopeoCopy, writeOciImage } from '../../../scripts/lib/oci-image.js';
import { sandboxRegistry } from '../../../scripts/lib/sandbox-registry.js';
import { systemClock } from '../../../shared/clock.js';
import type { ImageRecord } from '../../../shared/image-record.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import {
  ENRICHMENT_BACKOFF_CAP_MS,
  enrichmentBackoffMs,
  MAX_ENRICHMENT_ATTEMPTS,
} from '../../../shared/ledger/enrichment-schedule.js';
import { emptyImageRecord, FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import { createLogger } from '../../../shared/logging/logger.js';
import type { Effect, EffectPublisher } from '../../../shared/pipeline/effects.js';
import {
  type IngestDeps,
  ingestRegistryEvent,
  sweepEnrichment,
} from '../../../shared/pipeline/registry-ingest.js';
import { firestorePolicySource } from '../../../shared/policy/store/policy-source.js';
import { applyNonRootPolicy, auditOf, testDb } from '../../functions/support.js';
import { describeWithEmulators } from '../../support/integration.js';

const T0 = new Date('2026-12-01T08:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const MIN = 60_000;

describeWithEmulators('enrich sweep backoff (a real registry down, then up)', () => {
  let db: Firestore;
  let ledger: FirestoreLedger;
  let registry: LocalRegistry;
  let port: number;
  let layout: string;
  const group = `test-${process.pid}-sweep`;
  /** Every registry read of a manifest the pipeline asked for, by digest. */
  let reads: string[] = [];
  const published: Effect[] = [];
  let deps: IngestDeps;
  let down = false;

  const startRegistry = async (fixed?: number) => {
    registry = await startLocalRegistry({
      port: fixed ?? 'free',
      group,
      keepStorage: fixed !== undefined,
    });
    port = Number(registry.host.split(':')[1]);
    down = false;
  };
  const stopRegistry = async () => {
    await registry.stop();
    down = true;
  };
  /** An image running as uid 65532 (allowed once read), pushed as repo:v1. */
  const pushApp = (repo: string, content: string) => {
    const ref = repo.replaceAll('/', '-');
    writeOciImage(layout, { ref, files: { 'app.txt': content }, config: { user: '65532' } });
    return skopeoCopy(layout, `${registry.host}/${repo}:v1`, { ref });
  };
  const idOf = (repo: string, digest: string) => imageDocId(registry.host, repo, digest);
  const image = async (repo: string, digest: string): Promise<ImageRecord> => {
    const rec = await ledger.getImage(idOf(repo, digest));
    if (!rec) throw new Error(`${repo}@${digest} is not in the ledger`);
    return rec;
  };
  /** The push as the registry's notification records it; its own read fails while the registry is down. */
  const announce = (repo: string, digest: string, now: Date) =>
    ingestRegistryEvent(
      deps,
      {
        source: 'gcr',
        action: 'push',
        registry: registry.host,
        repository: repo,
        digest,
        tag: 'v1',
      },
      { source: 'test', messageId: `${repo}-${digest}`, at: now.toISOString() },
      now,
    );
  const readsOf = (digest: string) => reads.filter((d) => d === digest).length;

  beforeAll(async () => {
    db = testDb();
    ledger = new FirestoreLedger(db);
    await startRegistry();
    layout = mkdtempSync(join(tmpdir(), 'clearance-sweep-'));
    await applyNonRootPolicy(db, T0);
    const real = sandboxRegistry();
    deps = {
      ledger,
      // The real client for the local registry, counting what the pipeline asks of it.
      registry: {
        describeImage: (host, repo, digest) => {
          reads.push(digest);
          return real.describeImage(host, repo, digest);
        },
        resolveTag: (host, repo, tag) => real.resolveTag(host, repo, tag),
      },
      policy: firestorePolicySource(db, systemClock, 0),
      publisher: {
        publish: async (e: readonly Effect[]) => void published.push(...e),
      } satisfies EffectPublisher,
      watch: [`${registry.host}/**`],
      logger: createLogger({ sink: () => {} }),
    };
  }, 120_000);
  beforeEach(async () => {
    reads = [];
    if (down) await startRegistry(port);
  });
  afterAll(async () => {
    await registry?.stop();
    if (registry) rmSync(dirname(registry.configFile), { recursive: true, force: true });
    if (layout) rmSync(layout, { recursive: true, force: true });
    await db?.terminate();
  });

  it('reads a waiting image again only when its backoff has run out, the longest-due first, so a limit of 1 starves neither; enriched once the registry is back', async () => {
    const a = await pushApp('team/a', 'a\n');
    const b = await pushApp('team/b', 'b\n');
    await stopRegistry();

    // Each push is recorded and its own read fails: thrown, so Pub/Sub would redeliver.
    await expect(announce('team/a', a, T0)).rejects.toThrow(/the read is retried/);
    await expect(announce('team/b', b, at(10_000))).rejects.toThrow(/the read is retried/);
    expect(reads).toEqual([a, b]);
    const first = await image('team/a', a);
    expect(first.enrichment).toMatchObject({ status: 'needed', attempts: 1 });
    expect(first.enrichment?.nextAttemptAt).toBe(
      at(enrichmentBackoffMs(1, first.id)).toISOString(),
    );
    expect(first.verdicts.prod?.decision).toBe('pending');

    // A push's own redelivery reads at once, whatever the backoff.
    await expect(announce('team/a', a, at(5_000))).rejects.toThrow(/the read is retried/);
    expect(readsOf(a)).toBe(2);
    expect((await image('team/a', a)).enrichment?.attempts).toBe(2);

    // Three hours of sweeps, one a minute, each reading at most one image.
    const digests = { [first.id]: a, [idOf('team/b', b)]: b } as Record<string, string>;
    const readAt: Record<string, number[]> = { [a]: [], [b]: [] };
    for (let t = 30_000; t <= 3 * 60 * MIN; t += MIN) {
      const now = at(t);
      const before = await Promise.all([image('team/a', a), image('team/b', b)]);
      const due = before
        .filter((r) => Date.parse(r.enrichment?.nextAttemptAt ?? '') <= now.getTime())
        .sort((x, y) =>
          (x.enrichment?.nextAttemptAt ?? '').localeCompare(y.enrichment?.nextAttemptAt ?? ''),
        );
      const count = reads.length;
      const out = await sweepEnrichment(deps, now, 1);
      const read = reads.slice(count);
      // Nothing before it is due; of two due, the one due longest.
      expect(read, `sweep at +${t / 1000}s`).toEqual(
        due.length > 0 ? [digests[due[0]?.id ?? '']] : [],
      );
      expect(out).toMatchObject({ waiting: read.length, retrying: read.length, enriched: 0 });
      for (const d of read) readAt[d]?.push(t);
    }
    // Each read again after its backoff, which doubled each time up to the hour cap.
    for (const [id, digest] of Object.entries(digests)) {
      const times = readAt[digest] ?? [];
      // 1+2+4+8+16+32 minutes, then hourly: 6 to 8 reads in three hours, not 180.
      expect(times.length, id).toBeGreaterThanOrEqual(6);
      expect(times.length, id).toBeLessThanOrEqual(8);
      for (let i = 1; i < times.length; i++) {
        const gap = (times[i] as number) - (times[i - 1] as number);
        const attempts = i + (digest === a ? 2 : 1);
        expect(gap).toBeGreaterThanOrEqual(enrichmentBackoffMs(attempts, id));
        // At most one sweep late, plus one more when the other image was due first.
        expect(gap).toBeLessThanOrEqual(enrichmentBackoffMs(attempts, id) + 2 * MIN);
      }
      // The last waits are the cap's.
      expect(enrichmentBackoffMs(times.length + 1, id)).toBeGreaterThan(
        0.9 * ENRICHMENT_BACKOFF_CAP_MS,
      );
    }
    const audit = await auditOf(db, first.id);
    expect(audit.filter((e) => e.kind === 'registry-read-failed')).toHaveLength(
      2 + (readAt[a]?.length ?? 0),
    );

    // The outage ends: the next sweeps read each image once, when due, and the verdicts follow.
    await startRegistry(port);
    let t = 3 * 60 * MIN + 30_000;
    for (; t <= 5 * 60 * MIN; t += MIN) {
      await sweepEnrichment(deps, at(t), 1);
      const [ra, rb] = await Promise.all([image('team/a', a), image('team/b', b)]);
      if (ra.enrichment?.status === 'done' && rb.enrichment?.status === 'done') break;
    }
    const [ra, rb] = await Promise.all([image('team/a', a), image('team/b', b)]);
    for (const r of [ra, rb]) {
      expect(r.enrichment).toMatchObject({ status: 'done', reason: null, nextAttemptAt: null });
      expect(r).toMatchObject({ user: '65532', verdicts: { prod: { decision: 'allow' } } });
    }
    const total = reads.length;
    expect(await sweepEnrichment(deps, at(t + 2 * ENRICHMENT_BACKOFF_CAP_MS), 10)).toMatchObject({
      waiting: 0,
    });
    expect(reads.length).toBe(total);
  }, 180_000);

  it('sweeps records written before nextAttemptAt existed (no field, or null) and leaves one not yet due', async () => {
    const legacy = await pushApp('team/legacy', 'legacy\n');
    const nulled = await pushApp('team/nulled', 'nulled\n');
    const waiting = await pushApp('team/waiting', 'waiting\n');
    const now = at(24 * 60 * MIN);
    const seed = async (repo: string, digest: string, enrichment: Record<string, unknown>) => {
      const id = idOf(repo, digest);
      const name = { registry: registry.host, repository: repo, digest };
      await ledger.transact(
        id,
        { source: 'test-seed', messageId: id, at: T0.toISOString() },
        () => ({
          record: { ...emptyImageRecord(id, name, T0), tags: ['v1'], enrichment } as ImageRecord,
          audit: { kind: 'registry-push' },
        }),
        { now: T0 },
      );
    };
    // As the previous version wrote it: no nextAttemptAt at all (a range query cannot see it).
    await seed('team/legacy', legacy, {
      status: 'needed',
      reason: 'registry unreachable',
      attempts: 4,
      lastAttemptAt: T0.toISOString(),
    });
    await seed('team/nulled', nulled, {
      status: 'needed',
      reason: null,
      attempts: 0,
      lastAttemptAt: null,
      nextAttemptAt: null,
    });
    await seed('team/waiting', waiting, {
      status: 'needed',
      reason: 'registry unreachable',
      attempts: 3,
      lastAttemptAt: now.toISOString(),
      nextAttemptAt: new Date(now.getTime() + 4 * MIN).toISOString(),
    });
    const raw = await db.collection('images').doc(idOf('team/legacy', legacy)).get();
    expect(raw.get('enrichment.nextAttemptAt')).toBeUndefined();

    const out = await sweepEnrichment(deps, now, 10);
    expect(out).toMatchObject({ waiting: 2, enriched: 2 });
    expect(reads.sort()).toEqual([legacy, nulled].sort());
    expect((await image('team/legacy', legacy)).enrichment?.status).toBe('done');
    expect((await image('team/nulled', nulled)).enrichment?.status).toBe('done');
    expect((await image('team/waiting', waiting)).enrichment?.status).toBe('needed');

    // Its time comes: read then.
    await sweepEnrichment(deps, new Date(now.getTime() + 4 * MIN), 10);
    expect(reads).toContain(waiting);
    expect((await image('team/waiting', waiting)).enrichment?.status).toBe('done');
  });

  it('reopening is one transaction: concurrent requests on a failed image reopen it once, with one audit entry', async () => {
    const digest = `sha256:${'c'.repeat(64)}`;
    // Announced, but the registry does not hold it: failed for good at once.
    await announce('team/contended', digest, T0);
    const id = idOf('team/contended', digest);
    expect((await image('team/contended', digest)).enrichment?.status).toBe('failed');
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ledger.reopenEnrichment(id, { by: `op-${i}`, requestId: `req-${i}` }, at(MIN)),
      ),
    );
    expect(results.map((r) => r.outcome).sort()).toEqual([
      'applied',
      ...Array(7).fill('not-failed'),
    ]);
    expect((await image('team/contended', digest)).enrichment).toMatchObject({
      status: 'needed',
      attempts: 0,
      reopened: 1,
      nextAttemptAt: at(MIN).toISOString(),
    });
    const audit = await auditOf(db, id);
    expect(audit.filter((e) => e.kind === 'enrichment-reopened')).toHaveLength(1);
    // The same request again (a client retry) is a duplicate, even forced.
    const applied = results.findIndex((r) => r.outcome === 'applied');
    const retry = await ledger.reopenEnrichment(
      id,
      { by: `op-${applied}`, requestId: `req-${applied}`, force: true },
      at(2 * MIN),
    );
    expect(retry.outcome).toBe('duplicate');
    expect(await ledger.reopenEnrichment(`${id}x`, { by: 'x', requestId: 'y' }, T0)).toMatchObject({
      outcome: 'missing',
    });
  });

  describe('never retried forever', () => {
    it(`after ${MAX_ENRICHMENT_ATTEMPTS} reads the registry did not answer, the image ends failed: denied, audited and dead-lettered, read no more`, async () => {
      const digest = await pushApp('team/gone', 'gone\n');
      await stopRegistry();
      await expect(announce('team/gone', digest, T0)).rejects.toThrow(/the read is retried/);
      const id = idOf('team/gone', digest);
      let now = T0;
      for (let n = 1; n < MAX_ENRICHMENT_ATTEMPTS; n++) {
        const rec = await image('team/gone', digest);
        expect(rec.enrichment).toMatchObject({ status: 'needed', attempts: n });
        now = new Date(rec.enrichment?.nextAttemptAt ?? '');
        await sweepEnrichment(deps, now, 5);
      }
      expect(readsOf(digest)).toBe(MAX_ENRICHMENT_ATTEMPTS);
      // About three days of sweeps, most of them an hour apart.
      const days = (now.getTime() - T0.getTime()) / 86_400_000;
      expect(days).toBeGreaterThan(2.4);
      expect(days).toBeLessThan(3);

      const rec = await image('team/gone', digest);
      expect(rec.enrichment).toMatchObject({
        status: 'failed',
        attempts: MAX_ENRICHMENT_ATTEMPTS,
        nextAttemptAt: null,
      });
      expect(rec.enrichment?.reason).toMatch(
        new RegExp(`did not answer in ${MAX_ENRICHMENT_ATTEMPTS} reads`),
      );
      expect(rec.verdicts.prod).toMatchObject({
        decision: 'deny',
        reasons: [expect.objectContaining({ ruleId: 'image.unreadable' })],
      });
      const audit = await auditOf(db, id);
      expect(audit.filter((e) => e.kind === 'registry-unreadable')).toHaveLength(1);
      const dead = await db.collection('deadLetters').where('messageId', '==', id).get();
      expect(dead.docs.map((d) => d.get('source'))).toEqual(['enrichment']);
      expect(JSON.parse(String(dead.docs[0]?.get('raw')))).toMatchObject({ digest });

      // Failed is final for the sweep: days later, with the registry back, it is not read.
      await startRegistry(port);
      await sweepEnrichment(deps, new Date(now.getTime() + 7 * 86_400_000), 10);
      expect(readsOf(digest)).toBe(MAX_ENRICHMENT_ATTEMPTS);
    }, 120_000);
  });
});
