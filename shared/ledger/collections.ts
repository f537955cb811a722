// Names of the Firestore collections that make up the ledger (see the README's data model).
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
} as const;

/** Firestore document ids may not contain `/`; event ids from outside are made safe and bounded. */
export function safeDocId(raw: string): string {
  const cleaned = raw.replace(/[/\s]/g, '_').replace(/^__|__$/g, '_');
  if (cleaned === '.' || cleaned === '..' || cleaned.length === 0) return `_${cleaned}`;
  return cleaned.length > 700 ? cleaned.slice(0, 700) : cleaned;
}
