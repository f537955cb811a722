// Break-glass records keyed by ids from outside (AdmissionReview uids): every uid gets its own valid document.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import type { AlertInput } from '../../../shared/alerts/alert.js';
import {
  type BreakglassEvent,
  firestoreBreakglassRecorder,
} from '../../../shared/check/breakglass.js';
import { COLLECTIONS } from '../../../shared/ledger/collections.js';
import { FirestoreLedger } from '../../../shared/ledger/ledger-store.js';
import { describeWithEmulators, requireEmulators } from '../../support/integration.js';

describeWithEmulators('break-glass records', () => {
  const db = new Firestore({ projectId: requireEmulators().projectId });
  afterAll(() => db.terminate());

  const event = (uid: string): BreakglassEvent => ({
    uid,
    environment: 'prod',
    actor: 'system:serviceaccount:ci:deployer',
    caller: 'admission@p.iam.gserviceaccount.com',
    workload: { kind: 'Deployment', namespace: 'shop', name: 'web' },
    denied: [],
    justification: 'incident 42',
    at: new Date('2026-03-01T00:00:00Z'),
  });

  it('keeps one record per uid: no collisions, no reserved ids, no ids over 1,500 bytes', async () => {
    const alerts: AlertInput[] = [];
    const recorder = firestoreBreakglassRecorder(
      async () => db,
      {
        publish: async (a) => {
          alerts.push(a);
          return String(alerts.length);
        },
      },
      async () => new FirestoreLedger(db),
    );
    // `a/b` and `a_b` were one document; `___x___` became the reserved `__x__`; 2,000 bytes was cut.
    const uids = ['a/b', 'a_b', '___x___', '..', `${'é'.repeat(1000)}`, `${'é'.repeat(1000)}z`];
    for (const uid of uids) await recorder.record(event(uid));
    const stored = (await db.collection(COLLECTIONS.breakglass).get()).docs.map((d) =>
      d.get('uid'),
    );
    expect(stored.sort()).toEqual([...uids].sort());
  });
});
