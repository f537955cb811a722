// `clearance images` and `clearance image` against the Firestore emulator: filters, JSON and table output, exit codes.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run as runImage } from '../../cli/commands/image.js';
import { run as runImages } from '../../cli/commands/images.js';
import { COLLECTIONS } from '../../shared/ledger/collections.js';
import { FleetRow } from '../../shared/ledger/fleet-index.js';
import { capturedIo } from '../support/cli-io.js';
import { ledgerTruth, REGISTRY, seedFleet } from '../support/fleet-ledger.js';
import { describeWithEmulators, requireEmulators } from '../support/integration.js';

const NOW = new Date('2026-11-30T12:00:00Z');

const io = (isTTY: boolean) => capturedIo({ now: NOW, outIsTTY: isTTY });

describeWithEmulators('clearance images / image', () => {
  let db: Firestore;
  let truth: Awaited<ReturnType<typeof ledgerTruth>>;
  beforeAll(async () => {
    db = new Firestore({ projectId: requireEmulators().projectId });
    await seedFleet(db, 12, NOW);
    truth = await ledgerTruth(db);
  });
  afterAll(async () => {
    await db?.terminate();
  });

  it('prints JSON when not on a terminal, with the plan and the reads', async () => {
    const o = io(false);
    expect(await runImages(['--state', 'denied', '--team', 'search'], o)).toBe(0);
    const body = JSON.parse(o.stdout()) as {
      images: unknown[];
      query: { token: string; reads: number };
    };
    const ids = body.images.map((r) => FleetRow.parse(r).id).sort();
    const want = truth.records
      .filter((r) => r.state === 'denied' && r.labels.team === 'search')
      .map((r) => r.id)
      .sort();
    expect(ids).toEqual(want);
    expect(body.query.token).toBe('team:search|kind:denied');
    expect(body.query.reads).toBe(Math.max(1, want.length));
  });

  it('prints a table on a terminal', async () => {
    const o = io(true);
    expect(await runImages(['--cve', 'CVE-2026-0002', '--repo', `${REGISTRY}/acme/**`], o)).toBe(0);
    const lines = o.stdout().trim().split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+TEAM\s+STATE\s+VERDICTS\s+PUSHED\s+TOP REASON$/);
    expect(lines).toHaveLength(1 + (truth.cveImages['CVE-2026-0002'] ?? 0));
    expect(o.stderr()).toContain('documents read via fleet(cves CONTAINS, pushedAt DESC)');
  });

  it('refuses bad filters with exit code 2 before touching Firestore', async () => {
    for (const args of [['--state', 'evil'], ['--cve', '<x>'], ['--bogus'], ['--limit', '5000']]) {
      const o = io(false);
      expect(await runImages(args, o), args.join(' ')).toBe(2);
      expect(o.stderr()).not.toBe('');
    }
  });

  it('reports one image by tag: record, verdicts with reasons, attestations and its timeline', async () => {
    const denied = truth.records.find((r) => r.state === 'denied');
    if (!denied) throw new Error('the seed has a denied image');
    const o = io(true);
    const ref = `${REGISTRY}/${denied.repository}:${denied.tags[0]}`;
    expect(await runImage([ref], o)).toBe(0);
    const out = o.stdout();
    expect(out).toContain(`${REGISTRY}/${denied.repository}@${denied.digest}`);
    expect(out).toContain('prod (enforce): DENY');
    expect(out).toContain('vulnerabilities.fixable-severity');
    expect(out).toMatch(/attestations:\n {2}\(none\)/);
    const audit = await db
      .collection(COLLECTIONS.images)
      .doc(denied.id)
      .collection(COLLECTIONS.audit)
      .get();
    const timeline = out.split('timeline:\n')[1]?.trim().split('\n') ?? [];
    expect(timeline).toHaveLength(audit.size);
    expect(timeline[0]).toContain('registry-push');

    const json = io(false);
    expect(await runImage([`${REGISTRY}/${denied.repository}@${denied.digest}`], json)).toBe(0);
    expect(JSON.parse(json.stdout()).image.id).toBe(denied.id);

    const missing = io(false);
    expect(await runImage([`${REGISTRY}/acme/none:v1`], missing)).toBe(1);
    expect(await runImage(['not a ref!'], io(false))).toBe(2);
  });
});
