// The fleet index against the Firestore emulator: hooks keep rows and counters equal to a rebuild from the ledger, under concurrency.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listImages, readOverview } from '../../../shared/dashboard/queries.js';
import {
  FLEET,
  FleetRow,
  rebuildFleetIndex,
  SHARDS,
  shardRef,
} from '../../../shared/ledger/fleet-index.js';
import { FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import {
  type FleetImage,
  HOSTILE_TEAM,
  ledgerTruth,
  REGISTRY,
  seedFleet,
} from '../../support/fleet-ledger.js';
import { describeWithEmulators, requireEmulators } from '../../support/integration.js';

const NOW = new Date('2026-11-30T12:00:00Z');

async function counters(db: Firestore): Promise<Record<string, unknown>> {
  const snaps = await db.getAll(...Array.from({ length: SHARDS }, (_, i) => shardRef(db, i)));
  const sum: Record<string, number> = {};
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number') {
        if (v !== 0) sum[`${prefix}${k}`] = (sum[`${prefix}${k}`] ?? 0) + v;
      } else if (v && typeof v === 'object') walk(v as Record<string, unknown>, `${prefix}${k}.`);
    }
  };
  // `days` counts verdict changes as they happen; a rebuild can only count current verdicts.
  for (const s of snaps) if (s.exists) walk({ ...s.data(), days: {}, remediations: {} }, '');
  for (const k of Object.keys(sum)) if (sum[k] === 0) delete sum[k];
  return sum;
}

async function rows(db: Firestore): Promise<Record<string, FleetRow>> {
  const snap = await db.collection(FLEET.rows).get();
  return Object.fromEntries(snap.docs.map((d) => [d.id, FleetRow.parse(d.data())]));
}

describeWithEmulators('fleet index', () => {
  let db: Firestore;
  let images: FleetImage[];

  beforeAll(async () => {
    db = new Firestore({ projectId: requireEmulators().projectId });
    images = await seedFleet(db, 24, NOW);
    // Concurrent rescans and a delete: counters must still match a rebuild.
    const ledger = new FirestoreLedger(db);
    const victim = images[1] as FleetImage;
    const digest = victim.id.split('@')[1] as string;
    // Rescans of one image, in order: a stale or concurrent scan of one image rewrites the shared
    // finding documents before its transaction (a ledger matter outside the index).
    const rescans = async () => {
      for (const n of [2, 3, 4]) {
        await ledger.applyScan(
          {
            registry: REGISTRY,
            repository: victim.repository,
            digest,
            source: 'container-analysis',
            scanner: 'artifact-analysis',
            scanRef: `2026-11-30T12:0${n}:00Z#${n}`,
            completedAt: NOW.toISOString(),
            status: 'finished',
            findings: victim.findings.slice(0, n === 4 ? 1 : 2),
          },
          { source: 'test', messageId: `rescan-${n}`, at: NOW.toISOString() },
          NOW,
        );
      }
    };
    await Promise.all([
      rescans(),
      ledger.applyRegistryEvent(
        {
          action: 'delete',
          registry: REGISTRY,
          repository: (images[5] as FleetImage).repository,
          digest: (images[5] as FleetImage).id.split('@')[1] as string,
          tag: null,
        },
        { source: 'test', messageId: 'delete-5', at: NOW.toISOString() },
        NOW,
      ),
    ]);
  });
  afterAll(async () => {
    await db?.terminate();
  });

  it('keeps rows and counters equal to a rebuild from the whole ledger', async () => {
    const incremental = await counters(db);
    const incrementalRows = await rows(db);
    const staleIds = async () =>
      (await db.collection(FLEET.stale).get()).docs.map((d) => d.id).sort();
    const incrementalStale = await staleIds();
    expect(incrementalStale.length).toBeGreaterThan(0);
    expect(incremental['states.deleted']).toBe(1);
    const { rows: rebuilt } = await rebuildFleetIndex(db);
    expect(rebuilt).toBe(images.length);
    expect(await counters(db)).toEqual(incremental);
    expect(await rows(db)).toEqual(incrementalRows);
    expect(await staleIds()).toEqual(incrementalStale);
  });

  it('counts what the ledger holds', async () => {
    const truth = await ledgerTruth(db);
    const o = await readOverview(db, NOW);
    expect(o.total).toBe(truth.records.filter((r) => r.state !== 'deleted').length);
    for (const k of ['denied', 'attested', 'pending', 'stale'] as const) {
      expect(o.kinds[k], k).toBe(truth.kinds[k].length);
    }
    for (const e of o.environments) {
      expect({ allow: e.allow, deny: e.deny, pending: e.pending }).toEqual({
        allow: truth.envs[e.env]?.allow ?? 0,
        deny: truth.envs[e.env]?.deny ?? 0,
        pending: truth.envs[e.env]?.pending ?? 0,
      });
    }
    expect(
      Object.fromEntries(o.teams.filter((t) => t.denied > 0).map((t) => [t.team, t.denied])),
    ).toEqual(truth.deniedByTeam);
    for (const c of o.cves) expect(c.images, c.id).toBe(truth.cveImages[c.id]);
    expect(o.cves.map((c) => c.id)).toEqual(expect.arrayContaining(Object.keys(truth.cveImages)));
    expect(o.exceptions.map((x) => [x.id, x.images])).toEqual([
      ['CVE-2005-2541', truth.cveImages['CVE-2005-2541']],
    ]);
    expect(o.stale.map((r) => r.id).sort()).toEqual([...truth.kinds.stale].sort());
    // Shards, the stale list and the policy: never the image documents.
    expect(o.reads).toBe(SHARDS + truth.kinds.stale.length + 1);
  });

  it('answers each filter from one index, reading only rows of its most selective filter', async () => {
    const truth = await ledgerTruth(db);
    const byId = new Map(truth.records.map((r) => [r.id, r]));
    const denied = await listImages(db, { state: 'denied' }, NOW);
    expect(denied.images.map((r) => r.id).sort()).toEqual([...truth.kinds.denied].sort());
    expect(denied.reads).toBe(truth.kinds.denied.length);

    const payDenied = await listImages(db, { state: 'denied', team: 'payments' }, NOW);
    const wantPay = truth.kinds.denied.filter((id) => byId.get(id)?.labels.team === 'payments');
    expect(payDenied.images.map((r) => r.id).sort()).toEqual(wantPay.sort());
    expect(payDenied.plan.token).toBe('team:payments|kind:denied');
    expect(payDenied.reads).toBe(Math.max(1, wantPay.length));

    const cve = await listImages(db, { cve: 'CVE-2026-0002' }, NOW);
    expect(cve.images.length).toBe(truth.cveImages['CVE-2026-0002']);
    expect(cve.plan.field).toBe('cves');

    const jobs = await listImages(db, { repo: `${REGISTRY}/acme/jobs/svc-1*` }, NOW);
    expect(jobs.plan.token).toBe(`path:${REGISTRY}/acme/jobs`);
    expect(jobs.images.map((r) => r.repository).sort()).toEqual(
      truth.records
        .filter((r) => /^acme\/jobs\/svc-1\d*$/.test(r.repository))
        .map((r) => r.repository)
        .sort(),
    );
    expect(jobs.reads).toBeLessThan(truth.records.length);

    const prodDeny = await listImages(db, { env: 'prod', state: 'denied' }, NOW);
    expect(prodDeny.images.every((r) => r.decisions.prod === 'deny')).toBe(true);
    expect(prodDeny.images.length).toBe(truth.envs.prod?.deny ?? 0);

    const none = await listImages(db, { since: '2026-12-01' }, NOW);
    expect(none.images).toEqual([]);
    const recent = await listImages(db, { since: '10m' }, NOW);
    expect(recent.images.length).toBeGreaterThan(0);
    expect(recent.images.every((r) => (r.pushedAt ?? '') >= '2026-11-30T11:50:00.000Z')).toBe(true);

    const hostile = await listImages(db, { team: HOSTILE_TEAM }, NOW);
    expect(hostile.images).toHaveLength(1);
  });
});
