import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { externalDocId } from '../../../shared/ledger/collections.js';

describe('externalDocId', () => {
  it('is a valid Firestore id for any key: no slash, not reserved, not . or .., at most 1,500 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (key) => {
        const id = externalDocId(key);
        expect(id).toMatch(/^[0-9a-f]{64}$/);
        expect(Buffer.byteLength(id)).toBeLessThanOrEqual(1500);
      }),
    );
  });

  it('keeps keys apart that cleaning would merge', () => {
    expect(externalDocId('a/b')).not.toBe(externalDocId('a_b'));
    expect(externalDocId('a b')).not.toBe(externalDocId('a_b'));
    expect(externalDocId('x'.repeat(701))).not.toBe(externalDocId('x'.repeat(702)));
  });
});
