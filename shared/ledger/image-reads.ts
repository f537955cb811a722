// The ledger's point reads (one image, one tag) without the write path: light enough for the deploy check's cold start.
import type { Firestore } from '@google-cloud/firestore';
import { ImageRecord } from '../image-record.js';
import { parseInput } from '../parse-input.js';
import { COLLECTIONS } from './collections.js';
import type { ImageLedger } from './image-ledger.js';
import { resolveTagDoc, type TagDoc, tagDocId } from './tag-index.js';

export type ImageReads = Pick<ImageLedger, 'getImage' | 'resolveTag'>;

/** A record that does not parse is an invalid-input error naming the record (not retried). */
export function firestoreImageReads(db: Firestore): ImageReads {
  return {
    async getImage(id) {
      const snap = await db.collection(COLLECTIONS.images).doc(id).get();
      return snap.exists ? parseInput(ImageRecord, snap.data(), `ledger record ${id}`) : null;
    },
    async resolveTag(registry, repository, tag) {
      const snap = await db
        .collection(COLLECTIONS.tags)
        .doc(tagDocId(registry, repository, tag))
        .get();
      return snap.exists ? resolveTagDoc(snap.data() as TagDoc) : null;
    },
  };
}
