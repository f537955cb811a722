import { generateKeyPairSync } from 'node:crypto';
import { ContainerAnalysisClient } from '@google-cloud/containeranalysis';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AttestationLedger, createAttestor } from '../../../shared/attestations/attestor.js';
import {
  attestationOccurrence,
  binauthzPayload,
  imageResourceUri,
} from '../../../shared/attestations/binauthz.js';
import { dsseVerify, parseDsseEnvelope } from '../../../shared/attestations/dsse.js';
import {
  type AttestationWriter,
  grafeasAttestationWriter,
} from '../../../shared/attestations/occurrences.js';
import { localSigner, type Signer } from '../../../shared/attestations/signer.js';
import type { Clock } from '../../../shared/clock.js';
import { InvalidInputError, isRetryable, TransientError } from '../../../shared/errors.js';
import { ImageRecord } from '../../../shared/image-record.js';
import { firestoreAttestationLedger } from '../../../shared/ledger/attestation-ledger.js';
import { describeWithEmulators, emulators } from '../../support/integration.js';
import { type FakeGrafeas, FIXED_TOKEN, startFakeGrafeas } from './fake-google.js';
import { localGrafeasOptions } from './grafeas-client.js';
import { image, POLICY_A, verdict } from './images.js';
import { opensslVerify } from './openssl.js';

const PROJECT = 'clearance-attestors';
const NOTE = `projects/${PROJECT}/notes/clearance-prod`;
const VERIFIER = 'https://github.com/example/clearance';
const NOW = new Date('2026-11-29T10:00:00.000Z');

function digestOf(n: number): string {
  return `sha256:${n.toString(16).padStart(2, '0').repeat(32)}`;
}

describeWithEmulators('attestor with the Firestore ledger and the real Grafeas client', () => {
  const db = new Firestore({ projectId: emulators?.projectId });
  const ledger = firestoreAttestationLedger({ db });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signer = localSigner({
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  });
  let server: FakeGrafeas;
  let client: ContainerAnalysisClient;
  let writer: AttestationWriter;

  beforeAll(async () => {
    server = await startFakeGrafeas(PROJECT);
    client = new ContainerAnalysisClient(localGrafeasOptions(server.port, FIXED_TOKEN));
    writer = grafeasAttestationWriter({ client: client.getGrafeasClient() });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
    await db.terminate();
  });

  const attestorWith = (
    overrides: { ledger?: AttestationLedger; signer?: Signer; clock?: Clock } = {},
  ) =>
    createAttestor({
      signer: overrides.signer ?? signer,
      ledger: overrides.ledger ?? ledger,
      writer,
      noteName: NOTE,
      verifierId: VERIFIER,
      clock: overrides.clock,
    });

  async function seed(n: number, overrides: Partial<ImageRecord> = {}): Promise<ImageRecord> {
    const img = image({ id: `img-${n}`, digest: digestOf(n), ...overrides });
    await db.collection('images').doc(img.id).set(img);
    return img;
  }
  async function load(id: string): Promise<ImageRecord> {
    const snap = await db.collection('images').doc(id).get();
    return ImageRecord.parse({ id, ...snap.data() });
  }
  /** Every create request the server saw for the image, deleted or not. */
  const createsFor = (img: ImageRecord) =>
    server.requests.filter(
      (r) =>
        r.method === 'POST' &&
        (r.body as { resourceUri?: string }).resourceUri ===
          imageResourceUri(img.registry, img.repository, img.digest),
    ).length;
  const occurrencesOf = (img: ImageRecord) =>
    [...server.occurrences.values()].filter(
      (o) => o.resourceUri === imageResourceUri(img.registry, img.repository, img.digest),
    );

  it('attests an allowed image: one verifiable binauthz occurrence and one DSSE envelope, both in the ledger', async () => {
    const img = await seed(1);
    const outcome = await attestorWith().attest({ image: img, now: NOW });
    expect(outcome).toEqual({
      status: 'done',
      policyHash: POLICY_A,
      formats: { binauthz: 'created', dsse: 'created' },
    });

    const [occ] = occurrencesOf(img);
    expect(occurrencesOf(img)).toHaveLength(1);
    expect(occ.noteName).toBe(NOTE);
    const payload = Buffer.from(occ.attestation.serializedPayload, 'base64');
    expect(payload.equals(binauthzPayload(img.registry, img.repository, img.digest))).toBe(true);
    expect(occ.attestation.signatures[0].publicKeyId).toBe(signer.keyId);
    const sig = Buffer.from(occ.attestation.signatures[0].signature, 'base64');
    expect((await opensslVerify(await signer.publicKeyPem(), sig, payload)).code).toBe(0);

    const stored = await load(img.id);
    expect(stored.state).toBe('attested');
    expect(stored.version).toBe(img.version + 2);
    const binauthz = stored.attestations.find((a) => a.format === 'binauthz');
    expect(binauthz).toMatchObject({
      keyId: signer.keyId,
      policyHash: POLICY_A,
      occurrence: occ.name,
      createdAt: NOW.toISOString(),
      revokedAt: null,
    });
    const dsse = stored.attestations.find((a) => a.format === 'dsse');
    const envelope = parseDsseEnvelope(dsse?.envelope ?? '');
    expect(dsseVerify(envelope, await signer.publicKeyPem())).toBe(true);
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as {
      subject: { name: string; digest: { sha256: string } }[];
      predicate: { verifier: { id: string }; policy: { digest: { sha256: string } } };
    };
    expect(statement.subject).toEqual([
      { name: 'us-docker.pkg.dev/clearance/apps/web', digest: { sha256: digestOf(1).slice(7) } },
    ]);
    expect(statement.predicate.verifier.id).toBe(VERIFIER);
    expect(statement.predicate.policy.digest.sha256).toBe(POLICY_A.slice(7));
  });

  it('creates nothing new when the event is delivered again', async () => {
    const img = await seed(2);
    await attestorWith().attest({ image: img, now: NOW });
    const again = await attestorWith().attest({ image: await load(img.id), now: NOW });
    expect(again).toMatchObject({ formats: { binauthz: 'exists', dsse: 'exists' } });
    expect(occurrencesOf(img)).toHaveLength(1);
    expect(createsFor(img)).toBe(1);
    expect((await load(img.id)).attestations).toHaveLength(2);
  });

  it('creates one occurrence and one ledger attestation per format under concurrent deliveries', async () => {
    const img = await seed(3);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => attestorWith().attest({ image: img, now: NOW })),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    // Losers are told to come back later (Pub/Sub redelivers); none may fail for good.
    for (const f of failed) expect(isRetryable((f as PromiseRejectedResult).reason)).toBe(true);
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);

    // The redeliveries of the losers find the work done.
    const retry = await attestorWith().attest({ image: img, now: NOW });
    expect(retry).toMatchObject({ formats: { binauthz: 'exists', dsse: 'exists' } });
    expect(occurrencesOf(img)).toHaveLength(1);
    expect(createsFor(img)).toBe(1);
    const stored = await load(img.id);
    expect(stored.attestations.filter((a) => a.format === 'binauthz')).toHaveLength(1);
    expect(stored.attestations.filter((a) => a.format === 'dsse')).toHaveLength(1);
    expect(stored.attestations.find((a) => a.format === 'binauthz')?.occurrence).toBe(
      occurrencesOf(img)[0].name,
    );
  });

  it('turns away a second delivery while the first is still signing, then finds its work done', async () => {
    const img = await seed(10);
    let started!: () => void;
    const signing = new Promise<void>((resolve) => {
      started = resolve;
    });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const slow: Signer = {
      keyId: signer.keyId,
      publicKeyPem: () => signer.publicKeyPem(),
      sign: async (data) => {
        started();
        await held;
        return signer.sign(data);
      },
    };
    const first = attestorWith({ signer: slow }).attest({ image: img, now: NOW });
    await signing;
    const second = await attestorWith()
      .attest({ image: img, now: NOW })
      .catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'conflict', retryable: true });
    expect(createsFor(img)).toBe(0);
    finish();
    expect(await first).toMatchObject({ formats: { binauthz: 'created', dsse: 'created' } });
    const redelivered = await attestorWith().attest({ image: img, now: NOW });
    expect(redelivered).toMatchObject({ formats: { binauthz: 'exists', dsse: 'exists' } });
    expect(createsFor(img)).toBe(1);
    expect(occurrencesOf(img)).toHaveLength(1);
  });

  it('adopts the occurrence a run left behind when it died between creating and recording it', async () => {
    const img = await seed(4);
    // The process "dies" in record(): nothing recorded, and no release (a dead process frees nothing).
    const dying: AttestationLedger = {
      ...ledger,
      record: async () => {
        throw new Error('process killed');
      },
      release: async () => undefined,
    };
    await expect(attestorWith({ ledger: dying }).attest({ image: img, now: NOW })).rejects.toThrow(
      'process killed',
    );
    expect(occurrencesOf(img)).toHaveLength(1);
    expect((await load(img.id)).attestations).toHaveLength(0);

    // Redelivered while the dead run's lease is live: come back later.
    const early = await attestorWith()
      .attest({ image: img, now: new Date(NOW.getTime() + 1_000) })
      .catch((e: unknown) => e);
    expect(isRetryable(early)).toBe(true);

    const later = await attestorWith().attest({
      image: img,
      now: new Date(NOW.getTime() + 121_000),
    });
    expect(later).toMatchObject({ formats: { binauthz: 'adopted', dsse: 'created' } });
    expect(occurrencesOf(img)).toHaveLength(1);
    expect(createsFor(img)).toBe(1);
    const binauthz = (await load(img.id)).attestations.find((a) => a.format === 'binauthz');
    expect(binauthz?.occurrence).toBe(occurrencesOf(img)[0].name);
  });

  it('deletes an occurrence no attestation holds: one a worker created but could not record, next to the recorded one', async () => {
    const img = await seed(40);
    await attestorWith().attest({ image: img, now: NOW });
    const [held] = occurrencesOf(img);
    // A second worker whose lease ran out while it waited on a backend created its own, then died.
    const resourceUri = imageResourceUri(img.registry, img.repository, img.digest);
    const payload = binauthzPayload(img.registry, img.repository, img.digest);
    const orphan = await writer.create(
      attestationOccurrence({
        noteName: NOTE,
        resourceUri,
        payload,
        signature: await signer.sign(payload),
        keyId: signer.keyId,
      }),
    );
    expect(occurrencesOf(img)).toHaveLength(2);
    // Its redelivery finds the image attested, and leaves only what the ledger holds.
    const again = await attestorWith().attest({ image: await load(img.id), now: NOW });
    expect(again).toMatchObject({ formats: { binauthz: 'exists' } });
    expect(occurrencesOf(img).map((o) => o.name)).toEqual([held?.name]);
    expect(occurrencesOf(img).map((o) => o.name)).not.toContain(orphan.name);
    const binauthz = (await load(img.id)).attestations.find((a) => a.format === 'binauthz');
    expect(binauthz?.occurrence).toBe(held?.name);
  });

  it('times the lease from when the claim is taken, not from when the message arrived', async () => {
    const img = await seed(41);
    const at = (ms: number): Clock => ({ now: () => new Date(NOW.getTime() + ms) });
    const dying: AttestationLedger = {
      ...ledger,
      record: async () => {
        throw new Error('process killed');
      },
      release: async () => undefined,
    };
    // The message arrived at NOW; its claim was taken 200 s later, after waiting on Firestore.
    await expect(
      attestorWith({ ledger: dying, clock: at(200_000) }).attest({ image: img, now: NOW }),
    ).rejects.toThrow('process killed');
    // 250 s after the message the lease (taken at 200 s, 120 s long) still holds: no second signer.
    const redelivered = await attestorWith({ clock: at(250_000) })
      .attest({ image: img, now: new Date(NOW.getTime() + 250_000) })
      .catch((e: unknown) => e);
    expect(isRetryable(redelivered)).toBe(true);
    expect(occurrencesOf(img)).toHaveLength(1);
    const later = await attestorWith({ clock: at(321_000) }).attest({
      image: img,
      now: new Date(NOW.getTime() + 321_000),
    });
    expect(later).toMatchObject({ formats: { binauthz: 'adopted' } });
    expect(occurrencesOf(img)).toHaveLength(1);
  });

  it('creates no occurrence once its delivery was answered at the deadline, and frees the claim for the redelivery', async () => {
    const img = await seed(43);
    const deadline = new AbortController();
    // The deadline passes while the worker signs: its redelivery is already on the way.
    const late: Signer = {
      keyId: signer.keyId,
      publicKeyPem: () => signer.publicKeyPem(),
      sign: async (data) => {
        deadline.abort(new TransientError('not finished within 15000 ms', { code: 'timeout' }));
        return signer.sign(data);
      },
    };
    const err = await attestorWith({ signer: late })
      .attest({ image: img, now: NOW, signal: deadline.signal })
      .catch((e: unknown) => e);
    expect(isRetryable(err)).toBe(true);
    expect(createsFor(img)).toBe(0);
    // The claim was given back: the redelivery need not wait out the lease.
    const redelivered = await attestorWith().attest({ image: img, now: NOW });
    expect(redelivered).toMatchObject({ formats: { binauthz: 'created', dsse: 'created' } });
    expect(occurrencesOf(img)).toHaveLength(1);
  });

  it('revokes when the verdict flips to deny: occurrence deleted, ledger marked with the reason', async () => {
    const img = await seed(5);
    await attestorWith().attest({ image: img, now: NOW });
    expect(occurrencesOf(img)).toHaveLength(1);

    const denyAt = new Date(NOW.getTime() + 3_600_000);
    await db
      .collection('images')
      .doc(img.id)
      .update({ 'verdicts.prod': verdict('prod', 'deny'), state: 'denied' });
    const result = await attestorWith().reconcile({ image: await load(img.id), now: denyAt });
    expect(result.action).toBe('revoke');
    expect(occurrencesOf(img)).toHaveLength(0);

    const stored = await load(img.id);
    expect(stored.state).toBe('revoked');
    const reason = `denied in prod by policy ${POLICY_A}: vulnerabilities.max-fixable: CVE-2024-0001 (CRITICAL) is fixable`;
    expect(stored.attestations).toHaveLength(2);
    for (const a of stored.attestations) {
      expect(a).toMatchObject({ revokedAt: denyAt.toISOString(), revokedReason: reason });
    }

    // Revoking again (redelivery) changes nothing and fails nothing.
    const again = await attestorWith().revoke({ image: stored, reason, now: denyAt });
    expect(again).toEqual({ deletedOccurrences: [], revoked: [] });

    // Allowed again later: a fresh attestation, the revoked ones kept as history.
    await db
      .collection('images')
      .doc(img.id)
      .update({ 'verdicts.prod': verdict('prod', 'allow') });
    const back = await attestorWith().attest({
      image: await load(img.id),
      now: new Date(denyAt.getTime() + 1_000),
    });
    expect(back).toMatchObject({ formats: { binauthz: 'created', dsse: 'created' } });
    expect(occurrencesOf(img)).toHaveLength(1);
    expect((await load(img.id)).attestations).toHaveLength(4);
  });

  it('revokes a deleted image, including an occurrence the ledger never recorded', async () => {
    const img = await seed(6);
    await attestorWith().attest({ image: img, now: NOW });
    // An orphan from a crashed run, signed by our key, with no ledger entry.
    await writer.create({
      resourceUri: imageResourceUri(img.registry, img.repository, img.digest),
      noteName: NOTE,
      attestation: {
        serializedPayload: binauthzPayload(img.registry, img.repository, img.digest),
        signatures: [{ signature: Buffer.from([1]), publicKeyId: signer.keyId }],
      },
    });
    expect(occurrencesOf(img)).toHaveLength(2);
    await db
      .collection('images')
      .doc(img.id)
      .update({ state: 'deleted', deletedAt: NOW.toISOString() });
    const result = await attestorWith().reconcile({ image: await load(img.id), now: NOW });
    expect(result).toMatchObject({ action: 'revoke' });
    expect(occurrencesOf(img)).toHaveLength(0);
    const stored = await load(img.id);
    expect(stored.state).toBe('deleted');
    expect(stored.attestations.every((a) => a.revokedReason === 'image deleted')).toBe(true);
  });

  it('revokes an orphan occurrence on a flip to deny when recording the attestation had failed', async () => {
    const img = await seed(44);
    // The occurrence is written, then recording it in the ledger fails (and the lease is freed).
    const failing: AttestationLedger = {
      ...ledger,
      record: async () => {
        throw new Error('ledger unavailable');
      },
    };
    await expect(
      attestorWith({ ledger: failing }).attest({ image: img, now: NOW }),
    ).rejects.toThrow('ledger unavailable');
    expect(occurrencesOf(img)).toHaveLength(1);
    expect((await load(img.id)).attestations).toHaveLength(0);
    // The verdict flips to deny before any redelivery: "nothing attested" must not leave the occurrence.
    await db
      .collection('images')
      .doc(img.id)
      .update({ 'verdicts.prod': verdict('prod', 'deny'), state: 'denied' });
    const result = await attestorWith().reconcile({ image: await load(img.id), now: NOW });
    expect(result.action).toBe('revoke');
    expect(occurrencesOf(img)).toHaveLength(0);
  });

  it('deletes the occurrence it made when the verdict turns pending while it signs', async () => {
    const img = await seed(42);
    const racing: Signer = {
      keyId: signer.keyId,
      publicKeyPem: () => signer.publicKeyPem(),
      sign: async (data) => {
        await db
          .collection('images')
          .doc(img.id)
          .update({ 'verdicts.prod': verdict('prod', 'pending') });
        return signer.sign(data);
      },
    };
    const outcome = await attestorWith({ signer: racing }).attest({ image: img, now: NOW });
    expect(outcome).toMatchObject({ formats: { binauthz: 'stale' } });
    // The ledger holds no attestation, so Binary Authorization must not hold one either.
    expect((await load(img.id)).attestations).toHaveLength(0);
    expect(occurrencesOf(img)).toHaveLength(0);
  });

  it('drops its work when the verdict turns to deny while it signs', async () => {
    const img = await seed(7);
    // The evaluator denies the image between our claim and our record.
    const racing: Signer = {
      keyId: signer.keyId,
      publicKeyPem: () => signer.publicKeyPem(),
      sign: async (data) => {
        await db
          .collection('images')
          .doc(img.id)
          .update({ 'verdicts.prod': verdict('prod', 'deny') });
        return signer.sign(data);
      },
    };
    const outcome = await attestorWith({ signer: racing }).attest({ image: img, now: NOW });
    expect(outcome).toMatchObject({ formats: { binauthz: 'stale', dsse: 'stale' } });
    expect(occurrencesOf(img)).toHaveLength(0);
    expect((await load(img.id)).attestations).toHaveLength(0);
  });

  it('refuses an image whose repository is a placeholder, writing nothing', async () => {
    const img = await seed(8, { repository: '$PROJECT/repo/image' });
    const err = await attestorWith()
      .attest({ image: img, now: NOW })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(/\$PROJECT\/repo\/image/);
    expect((await load(img.id)).attestations).toHaveLength(0);
    expect([...server.occurrences.values()].some((o) => o.resourceUri.includes('$PROJECT'))).toBe(
      false,
    );
  });

  it('skips an image that is not allowed in every enforce environment', async () => {
    const img = await seed(9, {
      verdicts: { prod: verdict('prod', 'pending'), dev: verdict('dev', 'allow') },
    });
    expect(await attestorWith().attest({ image: img, now: NOW })).toEqual({
      status: 'skipped',
      why: 'a gating verdict is pending',
    });
    expect(occurrencesOf(img)).toHaveLength(0);
  });
});
