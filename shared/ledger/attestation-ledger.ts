// AttestationLedger over the Firestore `images` collection: claims, records and revocations in transactions.
import { createHash, randomUUID } from 'node:crypto';
import type { DocumentSnapshot, Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import type { AttestationFormat, AttestationLedger } from '../attestations/attestor.js';
import type { Clock } from '../clock.js';
import { ClearanceError, InvalidInputError } from '../errors.js';
import { Attestation, ImageRecord } from '../image-record.js';
import { COLLECTIONS } from './collections.js';
import type { EventMeta, ImageLedger } from './image-ledger.js';
import { FirestoreLedger } from './ledger-store.js';

/**
 * A pending claim, in `images/{id}/attestationClaims/{claimId}`. It lives outside the image
 * document so writers that replace the whole record through the ImageRecord schema cannot drop it.
 */
const Claim = z.object({
  token: z.string(),
  format: z.string(),
  policyHash: z.string(),
  claimedAt: z.string(),
  leaseUntil: z.string(),
});

/** The occurrences the image's active binauthz attestations name (of any policy). */
function held(image: ImageRecord): string[] {
  return image.attestations
    .filter((x) => x.format === 'binauthz' && x.revokedAt === null && x.occurrence !== null)
    .map((x) => x.occurrence as string);
}

function claimId(policyHash: string, format: AttestationFormat): string {
  // Policy hashes may hold characters a document id may not; hash them to a fixed, safe id.
  return `${format}-${createHash('sha256').update(policyHash).digest('hex').slice(0, 40)}`;
}

function readImage(snap: DocumentSnapshot, imageId: string): ImageRecord {
  if (!snap.exists) {
    throw new ClearanceError('not-found', `image ${imageId} is not in the ledger`, {
      details: { imageId },
    });
  }
  const parsed = ImageRecord.safeParse({ id: imageId, ...snap.data() });
  if (!parsed.success) {
    throw new InvalidInputError(`image ${imageId} does not match the ledger schema`, {
      details: {
        imageId,
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      },
    });
  }
  return parsed.data;
}

function activeFor(
  attestations: Attestation[],
  policyHash: string,
  format: AttestationFormat,
): Attestation | undefined {
  return attestations.find(
    (a) => a.format === format && a.policyHash === policyHash && a.revokedAt === null,
  );
}

/** The event an attestation's record or revocation is audited as. */
function eventOf(imageId: string, key: string, at: string): EventMeta {
  return { source: 'attestation', messageId: `${imageId}:${key}`.slice(0, 600), at };
}

export function firestoreAttestationLedger(options: {
  db: Firestore;
  /** The image ledger every image write goes through; default one over `db`. */
  ledger?: Pick<ImageLedger, 'transact'>;
  /**
   * Read inside each attempt of the claim transaction: a lease runs from when it is written, not
   * from when the claim was asked for (a transaction that waited out contention or an outage
   * would otherwise write a lease already short, or already over). Never earlier than `now`.
   */
  clock?: Clock;
}): AttestationLedger {
  const { db } = options;
  const ledger = options.ledger ?? new FirestoreLedger(db);
  const images = db.collection(COLLECTIONS.images);
  const imageRef = (id: string) => images.doc(id);
  const claimRef = (id: string, policyHash: string, format: AttestationFormat) =>
    imageRef(id).collection(COLLECTIONS.attestationClaims).doc(claimId(policyHash, format));
  const missing = (imageId: string) =>
    new ClearanceError('not-found', `image ${imageId} is not in the ledger`, {
      details: { imageId },
    });

  return {
    // Claims live beside the image document, not in it: only the claim document is written here.
    claim(imageId, policyHash, format, now, leaseMs) {
      return db.runTransaction(async (tx) => {
        const at = Math.max(now.getTime(), options.clock?.now().getTime() ?? 0);
        const cref = claimRef(imageId, policyHash, format);
        const [snap, claimSnap] = await tx.getAll(imageRef(imageId), cref);
        const image = readImage(snap, imageId);
        const done = activeFor(image.attestations, policyHash, format);
        if (done) return { status: 'exists', attestation: done, held: held(image) } as const;
        if (claimSnap.exists) {
          const claim = Claim.safeParse(claimSnap.data());
          if (claim.success && Date.parse(claim.data.leaseUntil) > at) {
            return { status: 'busy', leaseUntil: claim.data.leaseUntil } as const;
          }
        }
        const token = randomUUID();
        tx.set(cref, {
          token,
          format,
          policyHash,
          claimedAt: new Date(at).toISOString(),
          leaseUntil: new Date(at + leaseMs).toISOString(),
        });
        return { status: 'claimed', token } as const;
      });
    },

    async release(imageId, policyHash, format, token) {
      const cref = claimRef(imageId, policyHash, format);
      await db.runTransaction(async (tx) => {
        const snap = await tx.get(cref);
        const claim = Claim.safeParse(snap.data());
        if (claim.success && claim.data.token === token) tx.delete(cref);
      });
    },

    async record(imageId, attestation, check) {
      const a = Attestation.parse(attestation);
      const cid = claimId(a.policyHash, a.format);
      const result = await ledger.transact<never, 'exists' | 'stale'>(
        imageId,
        eventOf(imageId, `${cid}:${a.createdAt}`, a.createdAt),
        (image, writes) => {
          if (!image) throw missing(imageId);
          writes.deleteAttestationClaim(cid);
          if (activeFor(image.attestations, a.policyHash, a.format)) return { skip: 'exists' };
          if (!check(image)) return { skip: 'stale' };
          return {
            record: { ...image, attestations: [...image.attestations, a] },
            audit: { kind: 'attested', format: a.format, policyHash: a.policyHash, keyId: a.keyId },
          };
        },
        { now: new Date(a.createdAt), dedupe: false },
      );
      const image = result.image as ImageRecord;
      switch (result.outcome) {
        case 'exists':
          return {
            status: 'exists',
            attestation: activeFor(image.attestations, a.policyHash, a.format) as Attestation,
            held: held(image),
          } as const;
        case 'stale':
          return { status: 'stale', image } as const;
        default:
          return { status: 'recorded', held: held(image) } as const;
      }
    },

    async markRevoked(imageId, reason, now) {
      const at = now.toISOString();
      let revoked: Attestation[] = [];
      await ledger.transact<never, 'unchanged'>(
        imageId,
        eventOf(imageId, `revoke:${at}`, at),
        (image) => {
          revoked = [];
          // A record already gone has nothing left to mark; its occurrences were handled by the caller.
          if (!image) return { skip: 'unchanged' };
          const next = image.attestations.map((x) => {
            if (x.revokedAt !== null) return x;
            const r = { ...x, revokedAt: at, revokedReason: reason };
            revoked.push(r);
            return r;
          });
          if (revoked.length === 0) return { skip: 'unchanged' };
          return {
            record: { ...image, attestations: next },
            audit: { kind: 'attestations-revoked', reason, count: revoked.length },
          };
        },
        { now, dedupe: false },
      );
      return revoked;
    },
  };
}
