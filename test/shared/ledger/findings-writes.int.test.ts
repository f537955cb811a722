// What a scan writes, counted by the documents' update times in the emulator (not by the ledger's own counter).
import { randomUUID } from 'node:crypto';
import { FieldValue, Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { type Finding, findingKey } from '../../../shared/findings/finding.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { FLEET } from '../../../shared/ledger/collections.js';
import { shardOf, shardRef } from '../../../shared/ledger/fleet-index.js';
import { FirestoreLedger, type ScanResult } from '../../../shared/ledger/ledger-store.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';

const finding = (i: number, over: Partial<Finding> = {}): Finding => ({
  id: `CVE-2025-${10_000 + i}`,
  aliases: i % 7 === 0 ? [`GHSA-test-${i}`] : [],
  package: `pkg-${i % 90}`,
  packageType: 'deb',
  installedVersion: `1.${i}.0-1`,
  fixedVersion: i % 3 === 0 ? `1.${i}.1-1` : null,
  fixState: i % 3 === 0 ? 'fixed' : 'not-fixed',
  severity: 'MEDIUM',
  cvss: 5.5,
  source: 'container-analysis',
  // Real descriptions are long: 1,500 findings then need two chunk documents.
  description: `${'a flaw in input handling '.repeat(16)}#${i}`,
  url: `https://security-tracker.debian.org/tracker/CVE-2025-${10_000 + i}`,
  ...over,
});

const keys = (fs: readonly Finding[]) => fs.map(findingKey).sort();

describeWithEmulators('ledger: findings written as diffs (Firestore emulator)', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  afterAll(() => db.terminate());

  const image = () => {
    const repository = `test/diffs-${randomUUID().slice(0, 8)}`;
    const digest = `sha256:${'a'.repeat(64)}`;
    return {
      registry: 'us-docker.pkg.dev',
      repository,
      digest,
      id: imageDocId('us-docker.pkg.dev', repository, digest),
    };
  };
  let seq = 0;
  const scanOf = (
    img: ReturnType<typeof image>,
    findings: Finding[],
    over: Partial<ScanResult> = {},
  ): ScanResult => ({
    registry: img.registry,
    repository: img.repository,
    digest: img.digest,
    source: 'container-analysis',
    scanner: 'artifact-analysis',
    scanRef: `2026-11-29T09:${String(10 + seq++).padStart(2, '0')}:00Z#x`,
    completedAt: '2026-11-29T09:00:00Z',
    status: 'finished',
    findings,
    ...over,
  });
  const meta = () => ({ source: 'test', messageId: randomUUID(), at: '2026-11-29T09:00:00Z' });
  const now = new Date('2026-11-29T10:00:00Z');

  /** Update time of every document the image's events can touch: its tree, its event markers and its fleet projection. */
  async function updateTimes(id: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const ref = db.collection('images').doc(id);
    const image = await ref.get();
    if (image.exists) out.set(ref.path, image.updateTime?.valueOf() ?? '');
    // The fleet projection (fleet-index.ts) is written in the same transaction: its row, stale
    // entry and this image's counter shard count too.
    for (const d of await Promise.all(
      [
        db.collection(FLEET.rows).doc(id),
        db.collection(FLEET.stale).doc(id),
        shardRef(db, shardOf(id)),
      ].map((r) => r.get()),
    )) {
      if (d.exists) out.set(d.ref.path, d.updateTime?.valueOf() ?? '');
    }
    for (const q of [
      ref.collection('audit'),
      ref.collection('findingChunks'),
      ref.collection('findings'),
      db.collection('events').where('imageId', '==', id),
    ]) {
      for (const d of (await q.select().get()).docs) out.set(d.ref.path, d.updateTime.valueOf());
    }
    return out;
  }
  /** Documents written (created or updated) and deleted between two snapshots. */
  function written(before: Map<string, string>, after: Map<string, string>) {
    const changed = [...after].filter(([p, t]) => before.get(p) !== t).map(([p]) => p);
    const deleted = [...before.keys()].filter((p) => !after.has(p));
    return { changed, deleted, total: changed.length + deleted.length };
  }

  it('a rescan with the same findings writes 3 documents (image, audit entry, marker); k changed, at most k + 3', async () => {
    const ledger = new FirestoreLedger(db);
    const img = image();
    const first = Array.from({ length: 1_500 }, (_, i) => finding(i));
    await ledger.applyScan(scanOf(img, first), meta(), now);
    const chunks = await db.collection('images').doc(img.id).collection('findingChunks').get();
    expect(chunks.size).toBe(2);

    let before = await updateTimes(img.id);
    ledger.ops.reset();
    const same = await ledger.applyScan(scanOf(img, [...first].reverse()), meta(), now);
    let w = written(before, await updateTimes(img.id));
    expect(same.outcome).toBe('applied');
    expect(same.changedFindings).toBe(0);
    expect(w.deleted).toEqual([]);
    expect(w.changed.map((p) => p.split('/').at(-2)).sort()).toEqual(['audit', 'events', 'images']);
    expect(ledger.ops.writes).toBe(3);

    // k = 5: two with a new severity, two gone, one new.
    const next = [
      ...first.slice(0, 2).map((f) => ({ ...f, severity: 'CRITICAL' as const })),
      ...first.slice(4),
      finding(5_000, { id: 'CVE-2026-0001' }),
    ];
    before = await updateTimes(img.id);
    ledger.ops.reset();
    const changed = await ledger.applyScan(scanOf(img, next), meta(), now);
    w = written(before, await updateTimes(img.id));
    expect(changed.changedFindings).toBe(5);
    expect(w.total).toBeGreaterThan(3);
    expect(w.total).toBeLessThanOrEqual(5 + 3);
    expect(ledger.ops.writes).toBe(w.total);
    expect(keys(await ledger.getFindings({ id: img.id }))).toEqual(keys(next));
    const stored = await ledger.getFindings({ id: img.id });
    expect(stored.find((f) => f.id === first[0]?.id)?.severity).toBe('CRITICAL');
  });

  it('finds the images with a vulnerability across the fleet, by id or alias, and forgets one that is fixed', async () => {
    const ledger = new FirestoreLedger(db);
    const cve = `CVE-2099-${randomUUID().slice(0, 6)}`;
    const [a, b, c] = [image(), image(), image()];
    const base = Array.from({ length: 20 }, (_, i) => finding(i));
    const tar = finding(999, { id: cve, aliases: [`DSA-${cve}`], package: 'tar' });
    await ledger.applyScan(scanOf(a, [...base, tar]), meta(), now);
    await ledger.applyScan(scanOf(b, [tar]), meta(), now);
    await ledger.applyScan(scanOf(c, base), meta(), now);
    expect((await ledger.imagesWithVulnerability(cve)).sort()).toEqual([a.id, b.id].sort());
    expect((await ledger.imagesWithVulnerability(`DSA-${cve}`)).sort()).toEqual(
      [a.id, b.id].sort(),
    );
    // Pages: one image, then the images after it.
    const sorted = [a.id, b.id].sort();
    expect(await ledger.imagesWithVulnerability(cve, { limit: 1 })).toEqual([sorted[0]]);
    expect(await ledger.imagesWithVulnerability(cve, { after: sorted[0] })).toEqual([sorted[1]]);
    // b's rescan no longer lists it (its only finding: the chunk goes).
    await ledger.applyScan(scanOf(b, []), meta(), now);
    expect(await ledger.imagesWithVulnerability(cve)).toEqual([a.id]);
    expect(await ledger.getFindings({ id: b.id })).toEqual([]);
  });

  it('concurrent scans stay transactional: the newest scan of a source wins whole, other sources are kept, and evaluation sees both', async () => {
    const ledger = new FirestoreLedger(db);
    const img = image();
    const trivy = Array.from({ length: 30 }, (_, i) => finding(i, { source: 'trivy' }));
    const sets = Array.from({ length: 6 }, (_, s) =>
      Array.from({ length: 40 }, (_, i) => finding(i + s * 7)),
    );
    const scans = sets.map((f, s) => scanOf(img, f, { scanRef: `2026-11-29T10:0${s}:00Z#c` }));
    const seen: number[] = [];
    const results = await Promise.all([
      ...scans.map((s) =>
        ledger.applyScan(s, meta(), now, {
          evaluate: (_rec, all) => {
            seen.push(all.length);
            return null;
          },
        }),
      ),
      ledger.applyScan(
        scanOf(img, trivy, {
          source: 'trivy',
          scanner: 'trivy',
          scanRef: '2026-11-29T10:00:00Z#t',
        }),
        meta(),
        now,
      ),
    ]);
    expect(results.every((r) => r.outcome === 'applied' || r.outcome === 'stale')).toBe(true);
    // Contended transactions retry; only committed attempts are counted (one audit entry per applied scan).
    expect(ledger.ops.auditWrites).toBe(results.filter((r) => r.outcome === 'applied').length);
    expect(ledger.ops.transactions).toBe(results.length);
    const stored = await ledger.getFindings({ id: img.id });
    expect(keys(stored.filter((f) => f.source === 'container-analysis'))).toEqual(
      keys(sets[5] as Finding[]),
    );
    expect(keys(stored.filter((f) => f.source === 'trivy'))).toEqual(keys(trivy));
    const rec = await ledger.getImage(img.id);
    expect(rec?.scanRefs).toEqual({
      'container-analysis': '2026-11-29T10:05:00Z#c',
      trivy: '2026-11-29T10:00:00Z#t',
    });
    // A later scan of one source is evaluated with the other source's findings too.
    let evaluatedWith = 0;
    await ledger.applyScan(
      scanOf(img, sets[5] as Finding[], { scanRef: '2026-11-29T10:09:00Z#c' }),
      meta(),
      now,
      {
        evaluate: (_rec, all) => {
          evaluatedWith = all.length;
          return null;
        },
      },
    );
    expect(evaluatedWith).toBe(40 + 30);
    expect(seen.length).toBeGreaterThanOrEqual(1);
  });

  it('scans of different images read their chunks by id and never contend: no transaction is retried', async () => {
    const ledger = new FirestoreLedger(db);
    const imgs = Array.from({ length: 12 }, () => image());
    const round = (n: number) =>
      Promise.all(
        imgs.map((img, i) =>
          ledger.applyScan(
            scanOf(
              img,
              Array.from({ length: 20 }, (_, j) => finding(i * 100 + j + n)),
              { scanRef: `2026-11-29T11:0${n}:00Z#p` },
            ),
            meta(),
            now,
          ),
        ),
      );
    await round(0);
    await round(1);
    expect(ledger.ops.transactions).toBe(24);
    // A query for the chunks inside the transaction locked across images in the emulator, so
    // concurrent scans of different images deadlocked until one was aborted and retried.
    expect(ledger.ops.attempts).toBe(ledger.ops.transactions);
    for (const [i, img] of imgs.entries()) {
      const rec = await ledger.getImage(img.id);
      expect(rec?.findingChunks).toEqual(['container-analysis.0']);
      expect(keys(await ledger.getFindings({ id: img.id }))).toEqual(
        keys(Array.from({ length: 20 }, (_, j) => finding(i * 100 + j + 1))),
      );
    }
  });

  it('an image recorded before the chunk list was kept is read by query once, then by its list', async () => {
    const ledger = new FirestoreLedger(db);
    const img = image();
    const first = Array.from({ length: 30 }, (_, i) => finding(i));
    await ledger.applyScan(scanOf(img, first), meta(), now);
    // What an older version left: chunks without their list on the image.
    await db.collection('images').doc(img.id).update({ findingChunks: FieldValue.delete() });
    expect((await ledger.getImage(img.id))?.findingChunks).toBeNull();
    const second = [...first.slice(5), finding(500)];
    await ledger.applyScan(scanOf(img, second), meta(), now);
    expect(keys(await ledger.getFindings({ id: img.id }))).toEqual(keys(second));
    expect((await ledger.getImage(img.id))?.findingChunks).toEqual(['container-analysis.0']);
    // Every finding gone: the chunk is deleted and the list is empty.
    await ledger.applyScan(scanOf(img, []), meta(), now);
    expect((await ledger.getImage(img.id))?.findingChunks).toEqual([]);
    expect(await ledger.getFindings({ id: img.id })).toEqual([]);
  });
});
