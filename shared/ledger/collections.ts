// Names of the Firestore collections that make up the ledger (see the README's data model), and the id rule for keys from outside.
import { createHash } from 'node:crypto';

export const COLLECTIONS = {
  images: 'images',
  findings: 'findings',
  /** Findings in chunk documents per source (see finding-chunks.ts); `findings` is the older per-finding layout. */
  findingChunks: 'findingChunks',
  audit: 'audit',
  vex: 'vex',
  tags: 'tags',
  events: 'events',
  deadLetters: 'deadLetters',
  policies: 'policies',
  reevaluations: 'reevaluations',
  bases: 'bases',
  /** Sub-collection of an image: pending attestation claims (leases). */
  attestationClaims: 'attestationClaims',
  breakglass: 'breakglass',
  /** Base images' manifests and configs by digest (layers, diff_ids, platforms): read once per digest. */
  baseLayers: 'baseLayers',
  /** When each fix (vulnerability, package, fixed version) was first seen: fix grace periods start there. */
  fixSightings: 'fixSightings',
} as const;

/** The fleet index (fleet-index.ts): a projection of the images, written with them, read by dashboards. */
export const FLEET = { rows: 'fleet', stats: 'fleetStats', stale: 'fleetStale' } as const;

/**
 * The document id for a key that comes from outside (a message id, a break-glass uid, a delivery
 * id): its SHA-256 in hex. Firestore ids may not contain `/`, may not be `__x__` and are capped
 * at 1,500 bytes; a hash is always a valid 64-byte id, and two keys never share one (cleaning
 * the text instead made `a/b` and `a_b` the same document). The key itself is kept in a field.
 */
export function externalDocId(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
