// Per test file of the integration project: point Google's clients at the emulators and start from an empty Firestore.
import { beforeAll, inject } from 'vitest';
import { resetFirestore } from '../../scripts/lib/emulators.js';

const emulators = inject('emulators');
if (emulators) {
  process.env.FIRESTORE_EMULATOR_HOST = emulators.firestoreHost;
  process.env.PUBSUB_EMULATOR_HOST = emulators.pubsubHost;
  process.env.GOOGLE_CLOUD_PROJECT = emulators.projectId;
  process.env.GCLOUD_PROJECT = emulators.projectId;
  beforeAll(async () => {
    await resetFirestore(emulators.firestoreHost, emulators.projectId);
  });
}
