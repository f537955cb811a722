// First sightings of fixes in the Firestore emulator: written once, kept through rescans, first writer wins under concurrency.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { Finding } from '../../../shared/findings/finding.js';
import { firestoreFixSightings } from '../../../shared/ledger/fix-sightings.js';
import { OpCounter } from '../../../shared/ledger/ledger-store.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';

const f = (id: string, pkg: string, fixedVersion: string | null) =>
  Finding.parse({
    id,
    package: pkg,
    installedVersion: '1.0',
    fixedVersion,
    fixState: fixedVersion ? 'fixed' : 'not-fixed',
    severity: 'HIGH',
    cvss: null,
    source: 'grype',
  });

describeWithEmulators('fix sightings', () => {
  const db = new Firestore({ projectId: emulators?.projectId ?? 'none' });
  afterAll(() => db.terminate());

  it('records each fix once, at the first time it is seen; rescans and other images keep that date', async () => {
    const first = new Date('2026-11-30T15:20:00Z');
    const later = new Date('2026-12-03T08:00:00Z');
    const store = firestoreFixSightings(db);
    const seen = await store.record(
      [
        f('CVE-2026-1', 'openssl', '3.0.13'),
        f('cve-2026-1', 'openssl', '3.0.13'),
        f('CVE-2026-2', 'zlib', null),
      ],
      first,
    );
    expect(seen).toEqual([
      {
        vulnerability: 'CVE-2026-1',
        package: 'openssl',
        fixedVersion: '3.0.13',
        firstSeenAt: first.toISOString(),
      },
    ]);
    // A new instance (no memory), a rescan days later, plus a new fix.
    const ops = new OpCounter();
    const fresh = firestoreFixSightings(db, { ops });
    const again = await fresh.record(
      [f('CVE-2026-1', 'openssl', '3.0.13'), f('CVE-2026-3', 'openssl', '3.0.14')],
      later,
    );
    expect(Object.fromEntries(again.map((s) => [s.vulnerability, s.firstSeenAt]))).toEqual({
      'CVE-2026-1': first.toISOString(),
      'CVE-2026-3': later.toISOString(),
    });
    expect(ops).toMatchObject({ reads: 2, writes: 1 });
    // Lookups read, never write; the instance remembers what it read.
    ops.reset();
    expect(
      await fresh.lookup([f('CVE-2026-1', 'openssl', '3.0.13'), f('CVE-2026-9', 'x', '1')]),
    ).toHaveLength(1);
    expect(ops).toMatchObject({ reads: 1, writes: 0 });
  });

  it('keeps one sighting when scans race to record the same fix', async () => {
    const findings = [f('CVE-2026-7', 'libc6', '2.36-9')];
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        firestoreFixSightings(db).record(findings, new Date(Date.UTC(2026, 11, 1, 0, 0, i))),
      ),
    );
    const dates = new Set(results.map((r) => r[0].firstSeenAt));
    expect(dates.size).toBe(1);
    const stored = await firestoreFixSightings(db).lookup(findings);
    expect(stored[0].firstSeenAt).toBe([...dates][0]);
  });
});
