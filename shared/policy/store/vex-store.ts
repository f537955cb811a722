// VEX statements kept in Firestore, indexed by the digests and repository names their products name.
import { createHash } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import type { VexStatement } from '../../findings/finding.js';
import type { ImageRecord } from '../../image-record.js';
import { canonicalImageName } from '../../image-ref/image-ref.js';
import { COLLECTIONS } from '../../ledger/collections.js';
import { parsePurl } from '../vex.js';

const DIGEST = /sha256:[0-9a-f]{64}/g;
/** Key of statements whose products are repository globs. */
export const WILDCARD = '*';

/** Lookup keys of a product id: every digest in it, and its repository name where one is given. */
export function productKeys(product: string): string[] {
  let decoded = product;
  try {
    decoded = decodeURIComponent(product);
  } catch {
    // a malformed escape: the digests in the raw text still count
  }
  const keys = new Set<string>(decoded.match(DIGEST) ?? []);
  // A repository glob cannot be looked up by name: every image query also asks for WILDCARD.
  if (decoded.includes('*')) keys.add(WILDCARD);
  // Names are keyed in the form image lookups use (Docker Hub aliases folded: canonicalImageName).
  const purl = parsePurl(product);
  if (purl?.qualifiers.repository_url) {
    keys.add(canonicalImageName(purl.qualifiers.repository_url.toLowerCase()));
  } else if (!product.startsWith('pkg:') && !/^sha(256|512):/.test(product)) {
    const name = product.split('@')[0]?.replace(/:[^/:]+$/, '');
    if (name) keys.add(canonicalImageName(name.toLowerCase()));
  }
  return [...keys];
}

export interface VexStore {
  save(statements: readonly VexStatement[]): Promise<number>;
  forImage(
    image: Pick<ImageRecord, 'registry' | 'repository' | 'digest' | 'parents'>,
  ): Promise<VexStatement[]>;
}

export function firestoreVexStore(db: Firestore): VexStore {
  const col = db.collection(COLLECTIONS.vex);
  return {
    async save(statements) {
      const batch = db.batch();
      for (const s of statements) {
        const id = createHash('sha256')
          .update(JSON.stringify([s.documentId, s.vulnerability, s.products, s.subcomponents]))
          .digest('hex')
          .slice(0, 40);
        batch.set(col.doc(id), {
          ...s,
          keys: [...new Set(s.products.flatMap(productKeys))].slice(0, 100),
        });
      }
      await batch.commit();
      return statements.length;
    },
    async forImage(image) {
      // array-contains-any takes 30 values: the wildcard, the name, the digest and up to 27 parents.
      const keys = [
        WILDCARD,
        `${image.registry}/${image.repository}`,
        image.digest,
        ...image.parents,
      ].slice(0, 30);
      const snap = await col.where('keys', 'array-contains-any', keys).get();
      return snap.docs.map((d) => {
        const { keys: _k, ...s } = d.data() as VexStatement & { keys: string[] };
        return s;
      });
    },
  };
}
