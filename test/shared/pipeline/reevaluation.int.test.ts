import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  LENIENT_POLICY,
  type SeededImage,
  STRICT_POLICY,
  seedLedger,
} from '../../../bench/lib/ledger-seed.js';
import { ImageRecord } from '../../../shared/image-record.js';
import { FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import type { Effect, EffectPublisher } from '../../../shared/pipeline/effects.js';
import {
  handleReevaluateMessage,
  processPage,
  type ReevaluateMessage,
  type ReevaluationDeps,
  reevaluateImage,
  startRun,
} from '../../../shared/pipeline/reevaluation.js';
import { evaluate } from '../../../shared/policy/evaluate.js';
import { parsePolicy, policyHash } from '../../../shared/policy/policy.js';
import { storePolicy } from '../../../shared/policy/store/policy-source.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';

const NOW = new Date('2026-11-29T10:00:00Z');
const snapshotOf = (yaml: string) => {
  const policy = parsePolicy(yaml);
  return { policy, hash: policyHash(policy) };
};
const lenient = snapshotOf(LENIENT_POLICY);
const strict = snapshotOf(STRICT_POLICY);
const flipsUnderStrict = (s: SeededImage) =>
  [1, 2, 4].includes(Number(s.record.tags[0]?.slice(1)) % 5);

describeWithEmulators('re-evaluation pages against the Firestore emulator', () => {
  const db = new Firestore({ projectId: emulators?.projectId ?? 'none' });
  const ledger = new FirestoreLedger(db);
  let seeded: SeededImage[] = [];
  const published: Effect[][] = [];
  const queue: ReevaluateMessage[] = [];
  let failPublish = 0;
  const publisher: EffectPublisher = {
    async publish(effects) {
      if (failPublish > 0) {
        failPublish -= 1;
        throw new Error('simulated Pub/Sub outage');
      }
      published.push([...effects]);
    },
  };
  const deps: ReevaluationDeps = {
    db,
    ledger,
    // An instance that still caches the previous policy: runs must not apply it.
    policy: { current: async () => lenient },
    publisher,
    enqueue: async (m) => {
      queue.push(m);
    },
    pageSize: 10,
    concurrency: 1,
  };

  async function versions(): Promise<Map<string, number>> {
    const snap = await db.collection('images').get();
    return new Map(snap.docs.map((d) => [d.id, d.get('version') as number]));
  }

  beforeAll(async () => {
    await storePolicy(db, { source: LENIENT_POLICY, format: 'yaml', appliedBy: null, now: NOW });
    seeded = await seedLedger(db, { count: 25, prefix: 'pages', policy: lenient, now: NOW });
    await storePolicy(db, { source: STRICT_POLICY, format: 'yaml', appliedBy: null, now: NOW });
  });
  afterAll(async () => {
    await db.terminate();
  });

  it('runs page by page with the applied policy, counts once, and a duplicate page changes nothing', async () => {
    const runId = await startRun(deps, { runId: 'run-1', reason: 'test' }, NOW);
    expect(queue.splice(0)).toEqual([{ kind: 'page', runId, cursor: null, page: 0 }]);
    // A start delivered twice makes no second run and no second page while page 0 is pending.
    await startRun(deps, { runId: 'run-1', reason: 'test' }, NOW);
    expect(queue.splice(0)).toEqual([{ kind: 'page', runId, cursor: null, page: 0 }]);

    const first = await processPage(deps, { runId, cursor: null, page: 0 }, NOW);
    expect(first).toMatchObject({ processed: 10, changed: 10, duplicate: false });
    const next = queue.splice(0);
    expect(next).toEqual([{ kind: 'page', runId, cursor: first.next, page: 1 }]);

    const before = await versions();
    const again = await processPage(deps, { runId, cursor: null, page: 0 }, NOW);
    expect(again).toMatchObject({ processed: 0, changed: 0, duplicate: true });
    expect(queue).toEqual([]);
    expect(await versions()).toEqual(before);

    let msg: ReevaluateMessage | undefined = next[0];
    while (msg?.kind === 'page') {
      await processPage(deps, msg, NOW);
      msg = queue.shift();
    }
    const run = (await db.collection('reevaluations').doc(runId).get()).data();
    expect(run).toMatchObject({
      policyHash: strict.hash,
      total: 25,
      pages: 3,
      processed: 25,
      changed: 25,
      done: true,
    });
    for (const s of seeded) {
      const rec = ImageRecord.parse((await db.collection('images').doc(s.record.id).get()).data());
      expect(rec.verdicts.prod?.policyHash).toBe(strict.hash);
      expect(rec.verdicts.prod?.decision).toBe(flipsUnderStrict(s) ? 'deny' : 'allow');
    }
    const verdictIds = published
      .flat()
      .filter((e) => e.kind === 'verdict')
      .map((e) => (e.kind === 'verdict' ? e.message.imageId : ''));
    expect(verdictIds.sort()).toEqual(
      seeded
        .filter(flipsUnderStrict)
        .map((s) => s.record.id)
        .sort(),
    );
  });

  it("reads a range of images' findings in one query, exactly as per-image reads give them", async () => {
    const snap = await db.collection('images').orderBy('__name__').get();
    const all = snap.docs.map((d) => ImageRecord.parse(d.data()));
    const range = all.slice(5, 15);
    // A finding of the image just after the range must not be returned.
    const after = all[15];
    if (!after) throw new Error('the seeded ledger has fewer than 16 images');
    await db
      .collection('images')
      .doc(after.id)
      .collection('findingChunks')
      .doc('trivy.0')
      .set({
        source: 'trivy',
        n: 0,
        imageId: after.id,
        findings: [{ ...seeded[0]?.findings[0], id: 'CVE-2020-0001', source: 'trivy' }],
        vulnerabilities: ['CVE-2020-0001'],
      });
    const byRange = await ledger.findingsOfRange(range);
    expect([...byRange.keys()]).toEqual(range.map((r) => r.id));
    for (const image of range) {
      const direct = await ledger.getFindings(image);
      expect(
        byRange
          .get(image.id)
          ?.map((f) => f.id)
          .sort(),
      ).toEqual(direct.map((f) => f.id).sort());
      expect(direct.length).toBeGreaterThan(0);
    }
    const leaked = [...byRange.values()].flat().filter((f) => f.id === 'CVE-2020-0001');
    expect(leaked).toEqual([]);
    expect((await ledger.getFindings(after)).map((f) => f.id)).toContain('CVE-2020-0001');
    expect(byRange.get(range[0]?.id as string)?.some((f) => f.id === 'CVE-2020-0001')).toBe(false);
  });

  it('a start message without a run id delivered twice starts one run', async () => {
    queue.length = 0;
    const msg: ReevaluateMessage = { kind: 'start', reason: 'daily' };
    const a = await handleReevaluateMessage(deps, msg, NOW, { messageId: '4242' });
    const b = await handleReevaluateMessage(deps, msg, NOW, { messageId: '4242' });
    expect(a).toEqual({ runId: 'run-4242' });
    expect(b).toEqual(a);
    const runs = await db.collection('reevaluations').where('reason', '==', 'daily').get();
    expect(runs.docs.map((d) => d.id)).toEqual(['run-4242']);
    // The page is re-sent while not yet processed; page markers make the copy a no-op.
    expect(queue.map((m) => m.kind)).toEqual(['page', 'page']);
    queue.length = 0;
  });

  it('a page that died between writing a verdict and publishing its effects publishes them on redelivery', async () => {
    await storePolicy(db, { source: LENIENT_POLICY, format: 'yaml', appliedBy: null, now: NOW });
    published.length = 0;
    queue.length = 0;
    const runId = await startRun(deps, { runId: 'run-crash', reason: 'test' }, NOW);
    queue.length = 0;
    failPublish = 1;
    await expect(processPage(deps, { runId, cursor: null, page: 0 }, NOW)).rejects.toThrow(
      'simulated Pub/Sub outage',
    );
    expect((await db.collection('reevaluations').doc(runId).get()).get('pages')).toBe(0);

    const retry = await processPage(deps, { runId, cursor: null, page: 0 }, NOW);
    expect(retry.duplicate).toBe(false);
    const page0 = (await db.collection('images').orderBy('__name__').limit(10).get()).docs.map(
      (d) => d.id,
    );
    const expected = seeded
      .filter((s) => page0.includes(s.record.id) && flipsUnderStrict(s))
      .map((s) => s.record.id)
      .sort();
    const verdictIds = published
      .flat()
      .filter((e) => e.kind === 'verdict')
      .map((e) => (e.kind === 'verdict' ? e.message.imageId : ''));
    // Every image whose decision went back to allow is announced exactly once.
    expect(verdictIds.sort()).toEqual(expected);
    expect((await db.collection('reevaluations').doc(runId).get()).data()).toMatchObject({
      pages: 1,
      processed: 10,
    });
  });

  it('re-evaluates the newer record when the one it read has moved on', async () => {
    await storePolicy(db, { source: STRICT_POLICY, format: 'yaml', appliedBy: null, now: NOW });
    const target = seeded.find(flipsUnderStrict) as SeededImage;
    const ref = db.collection('images').doc(target.record.id);
    // Its stored verdicts are the lenient ones, so the strict policy changes them.
    await ref.update({ verdicts: target.record.verdicts });
    const old = ImageRecord.parse((await ref.get()).data());
    // A newer event changed the record (and its labels) after this page read it.
    await ref.update({ version: old.version + 1, 'labels.team': 'moved' });
    const changed = await reevaluateImage(deps, strict, old, [], NOW);
    expect(changed).toBe(true);
    const rec = ImageRecord.parse((await ref.get()).data());
    expect(rec.version).toBe(old.version + 2);
    expect(rec.labels.team).toBe('moved');
    const direct = evaluate({
      image: rec,
      findings: target.findings,
      vex: [],
      policy: strict.policy,
      policyHash: strict.hash,
      now: NOW,
    });
    expect(rec.verdicts.prod?.decision).toBe(direct.prod?.decision);
    expect(rec.verdicts.prod?.policyHash).toBe(strict.hash);
  });

  it('an image message delivered twice is handled once', async () => {
    const target = seeded.filter(flipsUnderStrict)[1] as SeededImage;
    const strictDeps = { ...deps, policy: { current: async () => strict } };
    await db
      .collection('images')
      .doc(target.record.id)
      .update({ verdicts: target.record.verdicts });
    published.length = 0;
    const msg: ReevaluateMessage = { kind: 'image', imageId: target.record.id };
    const first = await handleReevaluateMessage(strictDeps, msg, NOW, { messageId: 'm-1' });
    expect(first).toEqual({ changed: true });
    expect(published.flat().map((e) => e.kind)).toEqual(['verdict', 'alert']);
    const before = await versions();
    const second = await handleReevaluateMessage(strictDeps, msg, NOW, { messageId: 'm-1' });
    expect(second).toEqual({ changed: false, duplicate: true });
    // Another message for the same image under the same policy: evaluated, found equal, not written.
    const third = await handleReevaluateMessage(strictDeps, msg, NOW, { messageId: 'm-2' });
    expect(third).toEqual({ changed: false });
    expect(await versions()).toEqual(before);
    expect(published.flat()).toHaveLength(2);
  });
});
