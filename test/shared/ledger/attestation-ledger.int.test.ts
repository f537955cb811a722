import { Firestore } from '@google-cloud/firestore';
import { afterAll, expect, it } from 'vitest';
import { ClearanceError } from '../../../shared/errors.js';
import { type Attestation, ImageRecord } from '../../../shared/image-record.js';
import { firestoreAttestationLedger } from '../../../shared/ledger/attestation-ledger.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';
import { image, POLICY_A, POLICY_B } from '../attestations/images.js';

const NOW = new Date('2026-11-29T10:00:00.000Z');
const LEASE = 60_000;
const later = (ms: number) => new Date(NOW.getTime() + ms);

function attestation(overrides: Partial<Attestation> = {}): Attestation {
  return {
    format: 'binauthz',
    keyId: 'local:sha256:00',
    policyHash: POLICY_A,
    occurrence: 'projects/p/occurrences/1',
    envelope: null,
    createdAt: NOW.toISOString(),
    revokedAt: null,
    revokedReason: null,
    ...overrides,
  };
}

describeWithEmulators('firestoreAttestationLedger', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  const ledger = firestoreAttestationLedger({ db });
  afterAll(async () => {
    await db.terminate();
  });

  async function seed(id: string, overrides: Partial<ImageRecord> = {}) {
    const img = image({ id, ...overrides });
    await db.collection('images').doc(id).set(img);
    return img;
  }
  async function load(id: string) {
    const snap = await db.collection('images').doc(id).get();
    return ImageRecord.parse({ id, ...snap.data() });
  }
  const claims = async (id: string) =>
    (await db.collection('images').doc(id).collection('attestationClaims').get()).size;

  it('refuses to claim for an image the ledger does not hold', async () => {
    const err = await ledger.claim('nope', POLICY_A, 'binauthz', NOW, LEASE).catch((e) => e);
    expect(err).toBeInstanceOf(ClearanceError);
    expect((err as ClearanceError).code).toBe('not-found');
  });

  it('leases a claim: busy while live, claimable after it runs out', async () => {
    await seed('lease');
    const first = await ledger.claim('lease', POLICY_A, 'binauthz', NOW, LEASE);
    expect(first.status).toBe('claimed');
    expect(await ledger.claim('lease', POLICY_A, 'binauthz', later(LEASE - 1), LEASE)).toEqual({
      status: 'busy',
      leaseUntil: later(LEASE).toISOString(),
    });
    // Other formats and policies are separate claims.
    expect((await ledger.claim('lease', POLICY_A, 'dsse', NOW, LEASE)).status).toBe('claimed');
    expect((await ledger.claim('lease', POLICY_B, 'binauthz', NOW, LEASE)).status).toBe('claimed');

    const second = await ledger.claim('lease', POLICY_A, 'binauthz', later(LEASE + 1), LEASE);
    expect(second.status).toBe('claimed');
    // The first holder's late release must not free the second holder's claim.
    if (first.status !== 'claimed' || second.status !== 'claimed') throw new Error('unreachable');
    await ledger.release('lease', POLICY_A, 'binauthz', first.token);
    expect(
      (await ledger.claim('lease', POLICY_A, 'binauthz', later(LEASE + 2), LEASE)).status,
    ).toBe('busy');
    await ledger.release('lease', POLICY_A, 'binauthz', second.token);
    expect(
      (await ledger.claim('lease', POLICY_A, 'binauthz', later(LEASE + 3), LEASE)).status,
    ).toBe('claimed');
  });

  it('times a lease from when the claim is written (its clock), never from before the request', async () => {
    await seed('lease-clock');
    // The claim was asked for at NOW but only written 200 s later, after waiting on Firestore.
    const waited = firestoreAttestationLedger({ db, clock: { now: () => later(200_000) } });
    expect((await waited.claim('lease-clock', POLICY_A, 'binauthz', NOW, LEASE)).status).toBe(
      'claimed',
    );
    expect(
      await ledger.claim('lease-clock', POLICY_A, 'binauthz', later(LEASE + 1), LEASE),
    ).toEqual({ status: 'busy', leaseUntil: later(200_000 + LEASE).toISOString() });
    // A clock behind the request's time does not shorten the lease either.
    await seed('lease-behind');
    const behind = firestoreAttestationLedger({ db, clock: { now: () => later(-30_000) } });
    await behind.claim('lease-behind', POLICY_A, 'dsse', NOW, LEASE);
    expect(await ledger.claim('lease-behind', POLICY_A, 'dsse', NOW, LEASE)).toEqual({
      status: 'busy',
      leaseUntil: later(LEASE).toISOString(),
    });
  });

  it('grants one of many concurrent claims', async () => {
    await seed('race');
    const results = await Promise.all(
      Array.from({ length: 8 }, () => ledger.claim('race', POLICY_A, 'dsse', NOW, LEASE)),
    );
    expect(results.filter((r) => r.status === 'claimed')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'busy')).toHaveLength(7);
  });

  it('records once, bumps version and state, and drops the claim', async () => {
    const img = await seed('rec');
    await ledger.claim('rec', POLICY_A, 'binauthz', NOW, LEASE);
    expect(await ledger.record('rec', attestation(), () => true)).toEqual({
      status: 'recorded',
      held: ['projects/p/occurrences/1'],
    });
    const stored = await load('rec');
    expect(stored.attestations).toEqual([attestation()]);
    expect(stored).toMatchObject({
      state: 'attested',
      version: img.version + 1,
      updatedAt: NOW.toISOString(),
    });
    expect(await claims('rec')).toBe(0);
    expect(await ledger.record('rec', attestation({ occurrence: 'x' }), () => true)).toEqual({
      status: 'exists',
      attestation: attestation(),
      held: ['projects/p/occurrences/1'],
    });
    expect(await ledger.claim('rec', POLICY_A, 'binauthz', NOW, LEASE)).toEqual({
      status: 'exists',
      attestation: attestation(),
      held: ['projects/p/occurrences/1'],
    });
  });

  it('records nothing when the fresh record fails the check, and frees the claim', async () => {
    await seed('stale');
    await ledger.claim('stale', POLICY_A, 'dsse', NOW, LEASE);
    const result = await ledger.record('stale', attestation({ format: 'dsse' }), (fresh) => {
      expect(fresh.id).toBe('stale');
      return false;
    });
    expect(result.status).toBe('stale');
    expect((await load('stale')).attestations).toEqual([]);
    expect(await claims('stale')).toBe(0);
  });

  it('marks active attestations revoked with the reason, once', async () => {
    await seed('rev', {
      attestations: [
        attestation({ revokedAt: '2026-01-01T00:00:00.000Z', revokedReason: 'old' }),
        attestation({ policyHash: POLICY_B }),
        attestation({ format: 'dsse', occurrence: null, envelope: '{}' }),
      ],
    });
    const at = later(1000);
    const revoked = await ledger.markRevoked('rev', 'denied in prod', at);
    expect(revoked.map((a) => [a.format, a.policyHash])).toEqual([
      ['binauthz', POLICY_B],
      ['dsse', POLICY_A],
    ]);
    const stored = await load('rev');
    expect(stored.state).toBe('revoked');
    expect(stored.attestations[0].revokedReason).toBe('old');
    expect(stored.attestations.slice(1).every((a) => a.revokedReason === 'denied in prod')).toBe(
      true,
    );
    expect(stored.attestations.slice(1).every((a) => a.revokedAt === at.toISOString())).toBe(true);
    expect(await ledger.markRevoked('rev', 'again', later(2000))).toEqual([]);
    expect(await ledger.markRevoked('missing-image', 'gone', at)).toEqual([]);
  });

  it('keeps a deleted image deleted when revoking', async () => {
    // A deleted image is one whose delete event is recorded (the state is derived from that fact).
    await seed('del', {
      state: 'deleted',
      deletedAt: '2026-11-28T00:00:00.000Z',
      attestations: [attestation()],
    });
    await ledger.markRevoked('del', 'image deleted', NOW);
    expect((await load('del')).state).toBe('deleted');
  });
});
