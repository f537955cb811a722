// The cold-start floor for bench/check.ts: functions-framework plus one Firestore document read, same client settings as shared/runtime/root.ts.
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';

const db = new Firestore({
  projectId: process.env.GOOGLE_CLOUD_PROJECT ?? 'demo-clearance',
  databaseId: process.env.CLEARANCE_FIRESTORE_DATABASE ?? '(default)',
  ignoreUndefinedProperties: true,
  preferRest: !process.env.FIRESTORE_EMULATOR_HOST,
});

ff.http('checkFloor', async (req, res) => {
  const id = typeof req.query.id === 'string' ? req.query.id : 'missing';
  const snap = await db.collection('images').doc(id).get();
  res.status(200).json({ exists: snap.exists });
});
