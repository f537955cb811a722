// Names of the Firestore collections that make up the ledger (see the README's data model).
export const COLLECTIONS = {
  images: 'images',
  findings: 'findings',
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

/** Firestore document ids may not contain `/`; event ids from outside are made safe and bounded. */
export function safeDocId(raw: string): string {
  const cleaned = raw.replace(/[/\s]/g, '_').replace(/^__|__$/g, '_');
  if (cleaned === '.' || cleaned === '..' || cleaned.length === 0) return `_${cleaned}`;
  return cleaned.length > 700 ? cleaned.slice(0, 700) : cleaned;
}
