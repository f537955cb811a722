// A ledger transaction the client gave up on with ABORTED (lost lock races) is run again, a bounded number of times.
import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';

const NOW = new Date('2026-12-01T08:00:00Z');
const REGISTRY = 'us-docker.pkg.dev';

/** The emulator's database, whose first `failures` transactions end as the client ends one after 5 lost races. */
function losingRaces(failures: number): { db: Firestore; calls: () => number } {
  const db = new Firestore({ projectId: emulators?.projectId });
  const real = db.runTransaction.bind(db);
  let calls = 0;
  db.runTransaction = (async (...args: Parameters<Firestore['runTransaction']>) => {
    calls += 1;
    if (calls <= failures) {
      throw Object.assign(new Error('10 ABORTED: Transaction lock timeout.'), { code: 10 });
    }
    return real(...args);
  }) as Firestore['runTransaction'];
  return { db, calls: () => calls };
}

describeWithEmulators('ledger transactions under contention (Firestore emulator)', () => {
  const dbs: Firestore[] = [];
  afterAll(() => Promise.all(dbs.map((d) => d.terminate())));

  const push = (ledger: FirestoreLedger) => {
    const repository = `test/contention-${randomUUID().slice(0, 8)}`;
    const digest = `sha256:${'c'.repeat(64)}`;
    return {
      id: imageDocId(REGISTRY, repository, digest),
      run: () =>
        ledger.applyRegistryEvent(
          { action: 'push', registry: REGISTRY, repository, digest, tag: 'v1' },
          { source: 'test', messageId: randomUUID(), at: NOW.toISOString() },
          NOW,
        ),
    };
  };

  it('runs a transaction the client gave up with ABORTED again, and records it once', async () => {
    const { db, calls } = losingRaces(2);
    dbs.push(db);
    const ledger = new FirestoreLedger(db);
    const p = push(ledger);
    expect((await p.run()).outcome).toBe('applied');
    expect(calls()).toBe(3);
    expect(ledger.ops.transactions).toBe(1);
    expect((await ledger.getImage(p.id))?.tags).toEqual(['v1']);
  });

  it('passes ABORTED on after three rounds, so the delivery is retried by Pub/Sub', async () => {
    const { db, calls } = losingRaces(3);
    dbs.push(db);
    const ledger = new FirestoreLedger(db);
    const p = push(ledger);
    await expect(p.run()).rejects.toMatchObject({ code: 10 });
    expect(calls()).toBe(3);
    expect(await ledger.getImage(p.id)).toBeNull();
  });
});
