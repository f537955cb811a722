import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { describeWithEmulators, emulators } from '../support/integration.js';

describeWithEmulators('Firestore emulator', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  afterAll(async () => {
    await db.terminate();
  });

  it('runs 20 concurrent transactions on one field and loses none', async () => {
    const ref = db.collection('counters').doc('c1');
    await ref.set({ n: 0 });
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.runTransaction(async (tx) => {
          const snap = await tx.get(ref);
          tx.update(ref, { n: (snap.get('n') as number) + 1 });
        }),
      ),
    );
    expect((await ref.get()).get('n')).toBe(20);
  });

  it('starts each test file from an empty database', async () => {
    const other = await db.collection('left-over').limit(1).get();
    expect(other.empty).toBe(true);
  });
});
