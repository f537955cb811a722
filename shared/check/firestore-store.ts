// The check's reads: one image and one tag through the ledger port, one small admission-settings document.
import type { Firestore } from '@google-cloud/firestore';
import type { ImageRecord } from '../image-record.js';
import { COLLECTIONS } from '../ledger/collections.js';
import { firestoreImageReads, type ImageReads } from '../ledger/image-reads.js';
import { parseInput } from '../parse-input.js';
import type { VerdictStore } from './check-service.js';
import { AdmissionSettings, NO_POLICY } from './decide.js';

/** Written by storePolicy next to `policies/current`; read by the check instead of the policy itself. */
export const ADMISSION_SETTINGS_DOC = 'admission';

export function firestoreVerdictStore(
  db: Firestore,
  ledger: ImageReads = firestoreImageReads(db),
): VerdictStore & { reads: number } {
  const store = {
    reads: 0,
    async getImage(id: string): Promise<ImageRecord | null> {
      store.reads += 1;
      return ledger.getImage(id);
    },
    async resolveTag(registry: string, repository: string, tag: string): Promise<string | null> {
      store.reads += 1;
      return ledger.resolveTag(registry, repository, tag);
    },
    async getAdmissionSettings(): Promise<AdmissionSettings> {
      store.reads += 1;
      const snap = await db.collection(COLLECTIONS.policies).doc(ADMISSION_SETTINGS_DOC).get();
      // No policy applied yet: every environment is unknown, so everything is denied.
      if (!snap.exists) return NO_POLICY;
      return parseInput(AdmissionSettings, snap.data(), 'admission settings (policies/admission)');
    },
  };
  return store;
}
