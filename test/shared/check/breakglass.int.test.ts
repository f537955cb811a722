// Break-glass records keyed by ids from outside (AdmissionReview uids): every uid gets its own valid document.
import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { type AlertInput, alertSubject, parseAlert } from '../../../shared/alerts/alert.js';
import {
  type BreakglassEvent,
  firestoreBreakglassRecorder,
} from '../../../shared/check/breakglass.js';
import { COLLECTIONS, externalDocId } from '../../../shared/ledger/collections.js';
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

describeWithEmulators('break-glass of an image unknown to the ledger', () => {
  const db = new Firestore({ projectId: requireEmulators().projectId });
  afterAll(() => db.terminate());
  const unknownByTag: BreakglassEvent = {
    uid: 'bg-unknown-1',
    environment: 'prod',
    actor: 'system:serviceaccount:ci:deployer',
    caller: 'bearer-token',
    workload: { kind: 'Deployment', namespace: 'shop', name: 'web' },
    denied: [
      {
        image: 'us-docker.pkg.dev/acme/shop/web:2.0',
        answer: {
          image: 'us-docker.pkg.dev/acme/shop/web:2.0',
          digest: null,
          decision: 'deny',
          reasons: [{ level: 'deny', ruleId: 'check.unknown-image', message: 'unknown' }],
        } as never,
        ref: null,
        imageId: null,
      },
    ],
    justification: null,
    at: new Date('2026-03-01T00:00:00Z'),
  };

  it('is alerted, with the workload as subject', async () => {
    const alerts: AlertInput[] = [];
    const recorder = firestoreBreakglassRecorder(
      async () => db,
      { publish: async (a) => String(alerts.push(a)) },
      async () => new FirestoreLedger(db),
    );
    await recorder.record(unknownByTag);
    expect(alerts).toHaveLength(1);
    const alert = parseAlert(alerts[0]);
    expect(alert.image).toBeUndefined();
    expect(alertSubject(alert)).toBe('workload shop/Deployment/web');
    expect(alert).toMatchObject({ images: ['us-docker.pkg.dev/acme/shop/web:2.0'] });
  });

  it('fails (so the break-glass is refused) when the alert cannot be published', async () => {
    const recorder = firestoreBreakglassRecorder(
      async () => db,
      {
        publish: async () => {
          throw new Error('UNAVAILABLE: pubsub');
        },
      },
      async () => new FirestoreLedger(db),
    );
    await expect(recorder.record({ ...unknownByTag, uid: 'bg-unknown-2' })).rejects.toThrow(
      'UNAVAILABLE',
    );
    const record = await db
      .collection(COLLECTIONS.breakglass)
      .doc(externalDocId('bg-unknown-2'))
      .get();
    expect(record.data()).toMatchObject({ alert: 'failed', outcome: 'refused' });
  });

  it('fails when the audit entry cannot be written', async () => {
    const recorder = firestoreBreakglassRecorder(
      async () => db,
      { publish: async () => '1' },
      async () => ({
        recordAudit: async () => {
          throw new Error('PERMISSION_DENIED: audit');
        },
      }),
    );
    const known = {
      ...unknownByTag,
      uid: 'bg-known-3',
      denied: [{ ...unknownByTag.denied[0], imageId: 'some-image' }],
    } as BreakglassEvent;
    await expect(recorder.record(known)).rejects.toThrow('PERMISSION_DENIED');
  });
});
