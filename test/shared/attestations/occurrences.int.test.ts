import { generateKeyPairSync } from 'node:crypto';
import { ContainerAnalysisClient } from '@google-cloud/containeranalysis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  attestationOccurrence,
  binauthzPayload,
  imageResourceUri,
} from '../../../shared/attestations/binauthz.js';
import {
  attestationFilter,
  type GrafeasClient,
  grafeasAttestationWriter,
} from '../../../shared/attestations/occurrences.js';
import { localSigner } from '../../../shared/attestations/signer.js';
import { type FakeGrafeas, FIXED_TOKEN, startFakeGrafeas } from './fake-google.js';
import { localGrafeasOptions } from './grafeas-client.js';
import { opensslVerify } from './openssl.js';

const PROJECT = 'clearance-attestors';
const NOTE = `projects/${PROJECT}/notes/clearance-prod`;
const DIGEST = 'sha256:8c733d1c02c464f484bccd5fda4bc560040b80e105e431f17e1b1c3fce9b7d27';
const OTHER_DIGEST = 'sha256:739fd4cae3d43c4c3c33ada74f1199ed33e194979d194f34d4443ee222a08f50';

function signer() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return localSigner({ pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
}

async function occurrenceFor(s: ReturnType<typeof signer>, repository: string, digest: string) {
  const payload = binauthzPayload('us-docker.pkg.dev', repository, digest);
  return attestationOccurrence({
    noteName: NOTE,
    resourceUri: imageResourceUri('us-docker.pkg.dev', repository, digest),
    payload,
    signature: await s.sign(payload),
    keyId: s.keyId,
  });
}

describe('attestationFilter', () => {
  it('writes the Container Analysis filter with quoted, escaped values', () => {
    expect(attestationFilter(`https://gcr.io/a/b@${DIGEST}`, NOTE)).toBe(
      `resourceUrl="https://gcr.io/a/b@${DIGEST}" AND noteProjectId="${PROJECT}" AND noteId="clearance-prod" AND kind="ATTESTATION"`,
    );
    expect(attestationFilter('x"y\\z', NOTE)).toContain('resourceUrl="x\\"y\\\\z"');
    expect(() => attestationFilter('u', 'projects/p/attestors/a')).toThrow(/projects\/P\/notes\/N/);
  });
});

/*
 * The real Grafeas client (from ContainerAnalysisClient.getGrafeasClient()) in REST fallback mode:
 * gax builds POST/GET `/v1/projects/P/occurrences` and DELETE `/v1/projects/P/occurrences/ID`
 * from the proto http rules; bytes fields travel as base64, NOT_FOUND comes back as gRPC code 5.
 */
describe('grafeasAttestationWriter through the real Grafeas client (REST fallback, local server)', () => {
  let server: FakeGrafeas;
  let client: ContainerAnalysisClient;
  let grafeas: GrafeasClient;

  beforeAll(async () => {
    server = await startFakeGrafeas(PROJECT);
    client = new ContainerAnalysisClient(localGrafeasOptions(server.port, FIXED_TOKEN));
    grafeas = client.getGrafeasClient() satisfies GrafeasClient;
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });
  beforeEach(() => {
    server.occurrences.clear();
  });

  it('creates an ATTESTATION occurrence whose payload and signature verify with openssl', async () => {
    const s = signer();
    const writer = grafeasAttestationWriter({ client: grafeas });
    const occurrence = await occurrenceFor(s, 'clearance/apps/web', DIGEST);
    const { name } = await writer.create(occurrence);
    expect(name).toMatch(new RegExp(`^projects/${PROJECT}/occurrences/`));

    const stored = server.occurrences.get(name);
    expect(stored?.noteName).toBe(NOTE);
    expect(stored?.resourceUri).toBe(`https://us-docker.pkg.dev/clearance/apps/web@${DIGEST}`);
    const payload = Buffer.from(stored?.attestation.serializedPayload ?? '', 'base64');
    expect(payload.equals(occurrence.attestation.serializedPayload)).toBe(true);
    expect(stored?.attestation.signatures[0].publicKeyId).toBe(s.keyId);
    const sig = Buffer.from(stored?.attestation.signatures[0].signature ?? '', 'base64');
    expect((await opensslVerify(await s.publicKeyPem(), sig, payload)).stdout.trim()).toBe(
      'Verified OK',
    );

    const create = server.requests.find((r) => r.method === 'POST');
    expect(create?.path).toBe(`/v1/projects/${PROJECT}/occurrences`);
    expect(server.requests.every((r) => r.authorization === `Bearer ${FIXED_TOKEN}`)).toBe(true);
  });

  it('finds existing occurrences by image and note across pages, optionally by key', async () => {
    const mine = signer();
    const theirs = signer();
    const writer = grafeasAttestationWriter({ client: grafeas });
    const uri = imageResourceUri('us-docker.pkg.dev', 'clearance/apps/web', DIGEST);
    const names: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      names.push(
        (await writer.create(await occurrenceFor(mine, 'clearance/apps/web', DIGEST))).name,
      );
    }
    const stranger = (
      await writer.create(await occurrenceFor(theirs, 'clearance/apps/web', DIGEST))
    ).name;
    await writer.create(await occurrenceFor(mine, 'clearance/apps/web', OTHER_DIGEST));
    await writer.create(await occurrenceFor(mine, 'clearance/apps/api', DIGEST));

    // Four match; the server pages two at a time, so the client follows nextPageToken.
    expect((await writer.findExisting(uri, NOTE)).sort()).toEqual([...names, stranger].sort());
    expect((await writer.findExisting(uri, NOTE, mine.keyId)).sort()).toEqual([...names].sort());
    expect(await writer.findExisting(uri, `projects/${PROJECT}/notes/other`)).toEqual([]);
    expect(server.filters.at(-1)).toBe(attestationFilter(uri, `projects/${PROJECT}/notes/other`));
    const lists = server.requests.filter((r) => r.method === 'GET');
    expect(lists.some((r) => r.query.get('pageToken') === '2')).toBe(true);
  });

  it('deletes an occurrence, and deleting it again succeeds (NOT_FOUND = already gone)', async () => {
    const writer = grafeasAttestationWriter({ client: grafeas });
    const { name } = await writer.create(
      await occurrenceFor(signer(), 'clearance/apps/web', DIGEST),
    );
    await writer.delete(name);
    expect(server.occurrences.has(name)).toBe(false);
    await expect(writer.delete(name)).resolves.toBeUndefined();
    const deletes = server.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.at(-1)?.path).toBe(`/v1/${name}`);
  });

  it('builds its own client lazily from clientOptions and writes to the note project', async () => {
    const writer = grafeasAttestationWriter({
      clientOptions: localGrafeasOptions(server.port, FIXED_TOKEN),
    });
    const { name } = await writer.create(
      await occurrenceFor(signer(), 'clearance/apps/web', DIGEST),
    );
    expect(server.occurrences.has(name)).toBe(true);
  });

  it('reports a refused token as a final error', async () => {
    const other = new ContainerAnalysisClient(
      localGrafeasOptions(server.port, 'wrong-token-value'),
    );
    try {
      const writer = grafeasAttestationWriter({ client: other.getGrafeasClient() });
      await expect(
        writer.create(await occurrenceFor(signer(), 'clearance/apps/web', DIGEST)),
      ).rejects.toMatchObject({ retryable: false });
      expect(server.occurrences.size).toBe(0);
    } finally {
      await other.close();
    }
  });
});
