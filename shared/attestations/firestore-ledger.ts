// AttestationLedger over the Firestore `images` collection: claims, records and revocations in transactions.
import { createHash, randomUUID } from 'node:crypto';
import type {
  DocumentReference,
  DocumentSnapshot,
  Firestore,
  Transaction,
} from '@google-cloud/firestore';
import { z } from 'zod';
import { indexImageWrite } from '../dashboard/fleet-index.js';
import { ClearanceError } from '../errors.js';
import { Attestation, ImageRecord } from '../ledger/image-record.js';
import { deriveState } from '../ledger/state.js';
import type { AttestationFormat, AttestationLedger } from './attestor.js';

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
    throw new ClearanceError('invalid-input', `image ${imageId} does not match the ledger schema`, {
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

export function firestoreAttestationLedger(options: {
  db: Firestore;
  /** Default `images`. */
  collection?: string;
}): AttestationLedger {
  const { db } = options;
  const images = db.collection(options.collection ?? 'images');
  const imageRef = (id: string) => images.doc(id);
  const claimRef = (id: string, policyHash: string, format: AttestationFormat) =>
    imageRef(id).collection('attestationClaims').doc(claimId(policyHash, format));

  /** Writes the attestations list back with the bookkeeping every ledger write carries. */
  const writeImage = (
    tx: Transaction,
    ref: DocumentReference,
    image: ImageRecord,
    attestations: Attestation[],
    state: ImageRecord['state'],
    now: string,
  ) => {
    tx.update(ref, {
      attestations: attestations.map((a) => Attestation.parse(a)),
      state,
      version: image.version + 1,
      updatedAt: now,
    });
    // Fleet index hook (dashboard).
    const next = { ...image, attestations, state, version: image.version + 1, updatedAt: now };
    indexImageWrite(tx, { db, previous: image, next });
  };

  return {
    claim(imageId, policyHash, format, now, leaseMs) {
      return db.runTransaction(async (tx) => {
        const cref = claimRef(imageId, policyHash, format);
        const [snap, claimSnap] = await tx.getAll(imageRef(imageId), cref);
        const image = readImage(snap, imageId);
        const done = activeFor(image.attestations, policyHash, format);
        if (done) return { status: 'exists', attestation: done } as const;
        if (claimSnap.exists) {
          const claim = Claim.safeParse(claimSnap.data());
          if (claim.success && Date.parse(claim.data.leaseUntil) > now.getTime()) {
            return { status: 'busy', leaseUntil: claim.data.leaseUntil } as const;
          }
        }
        const token = randomUUID();
        tx.set(cref, {
          token,
          format,
          policyHash,
          claimedAt: now.toISOString(),
          leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
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

    record(imageId, attestation, check) {
      const a = Attestation.parse(attestation);
      return db.runTransaction(async (tx) => {
        const ref = imageRef(imageId);
        const cref = claimRef(imageId, a.policyHash, a.format);
        const image = readImage(await tx.get(ref), imageId);
        const done = activeFor(image.attestations, a.policyHash, a.format);
        if (done) {
          tx.delete(cref);
          return { status: 'exists', attestation: done } as const;
        }
        if (!check(image)) {
          tx.delete(cref);
          return { status: 'stale', image } as const;
        }
        const attestations = [...image.attestations, a];
        writeImage(
          tx,
          ref,
          image,
          attestations,
          deriveState({ ...image, attestations }),
          a.createdAt,
        );
        tx.delete(cref);
        return { status: 'recorded' } as const;
      });
    },

    markRevoked(imageId, reason, now) {
      return db.runTransaction(async (tx) => {
        const ref = imageRef(imageId);
        const snap = await tx.get(ref);
        // A record already gone has nothing left to mark; its occurrences were handled by the caller.
        if (!snap.exists) return [];
        const image = readImage(snap, imageId);
        const at = now.toISOString();
        const revoked: Attestation[] = [];
        const next = image.attestations.map((a) => {
          if (a.revokedAt !== null) return a;
          const r = { ...a, revokedAt: at, revokedReason: reason };
          revoked.push(r);
          return r;
        });
        if (revoked.length === 0) return [];
        writeImage(tx, ref, image, next, deriveState({ ...image, attestations: next }), at);
        return revoked;
      });
    },
  };
}
