import { createHash } from 'node:crypto';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binauthzPayload } from '../../../shared/attestations/binauthz.js';
import { type KmsClient, kmsSigner } from '../../../shared/attestations/signer.js';
import { ClearanceError } from '../../../shared/errors.js';
import { type FakeKms, FIXED_TOKEN, startFakeKms } from './fake-google.js';
import { opensslVerify } from './openssl.js';

const KEY_VERSION =
  'projects/clearance-test/locations/global/keyRings/clearance/cryptoKeys/attestor/cryptoKeyVersions/3';
const DIGEST = 'sha256:8c733d1c02c464f484bccd5fda4bc560040b80e105e431f17e1b1c3fce9b7d27';

type KmsOptions = NonNullable<ConstructorParameters<typeof KeyManagementServiceClient>[0]>;

/**
 * REST-fallback options for a local server with a fixed-token OAuth2Client. The cast only bridges
 * two copies of google-auth-library's types (the KMS package nests its own 10.x); at run time gax
 * calls `authClient.fetch`, which OAuth2Client has.
 */
function localOptions(port: number, token: string): KmsOptions {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: token });
  return {
    fallback: true,
    apiEndpoint: '127.0.0.1',
    port,
    protocol: 'http',
    authClient: authClient as unknown as KmsOptions['authClient'],
  };
}

/*
 * The real KeyManagementServiceClient in REST fallback mode: gax builds
 * `${protocol}://${apiEndpoint}:${port}/v1/{name}:asymmetricSign?$alt=json;enum-encoding=int`
 * from the proto's http rules and sends requests through `authClient.fetch`, so an OAuth2Client
 * holding a fixed access token is all the auth it needs (no metadata server, no ADC).
 */
describe('kmsSigner through the real KMS client (REST fallback, local server)', () => {
  let kms: FakeKms;
  let client: KeyManagementServiceClient;

  beforeAll(async () => {
    kms = await startFakeKms(KEY_VERSION);
    client = new KeyManagementServiceClient(localOptions(kms.port, FIXED_TOKEN));
  });
  afterAll(async () => {
    await client.close();
    await kms.close();
  });

  it('signs a Binary Authorization payload that openssl verifies with the KMS public key', async () => {
    kms.faults = {};
    const signer = kmsSigner({
      keyVersionName: KEY_VERSION,
      client: client satisfies KmsClient,
    });
    expect(signer.keyId).toBe(`//cloudkms.googleapis.com/v1/${KEY_VERSION}`);
    const payload = binauthzPayload('us-docker.pkg.dev', 'clearance-test/apps/web', DIGEST);
    const signature = await signer.sign(payload);
    const pem = await signer.publicKeyPem();
    expect(pem).toBe(kms.publicKeyPem);
    const verified = await opensslVerify(pem, signature, payload);
    expect(verified.stdout.trim()).toBe('Verified OK');

    const signCall = kms.requests.find((r) => r.path.endsWith(':asymmetricSign'));
    expect(signCall?.authorization).toBe(`Bearer ${FIXED_TOKEN}`);
    const body = signCall?.body as { digest: { sha256: string }; digestCrc32c: string };
    expect(Buffer.from(body.digest.sha256, 'base64')).toEqual(
      createHash('sha256').update(payload).digest(),
    );
    expect(body.digestCrc32c).toMatch(/^\d+$/);
  });

  it('fetches the public key once per signer', async () => {
    kms.faults = {};
    const before = kms.requests.filter((r) => r.path.endsWith('/publicKey')).length;
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client });
    await Promise.all([signer.publicKeyPem(), signer.publicKeyPem(), signer.publicKeyPem()]);
    await signer.publicKeyPem();
    expect(kms.requests.filter((r) => r.path.endsWith('/publicKey')).length - before).toBe(1);
  });

  it('refuses a signature whose CRC32C does not match', async () => {
    kms.faults = { signatureCrc: true };
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client });
    const err = await signer.sign(Buffer.from('payload')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClearanceError);
    expect((err as ClearanceError).code).toBe('integrity');
    expect((err as ClearanceError).message).toMatch(/signature failed its CRC32C/);
  });

  it('refuses a signature when KMS did not verify the digest CRC32C', async () => {
    kms.faults = { skipDigestCheck: true };
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client });
    await expect(signer.sign(Buffer.from('payload'))).rejects.toMatchObject({
      code: 'integrity',
      message: expect.stringMatching(/did not verify the digest/),
    });
  });

  it('refuses a public key whose CRC32C does not match', async () => {
    kms.faults = { pemCrc: true };
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client });
    await expect(signer.publicKeyPem()).rejects.toMatchObject({ code: 'integrity' });
  });

  it('builds its own lazily imported client from clientOptions', async () => {
    kms.faults = {};
    const signer = kmsSigner({
      keyVersionName: KEY_VERSION,
      clientOptions: localOptions(kms.port, FIXED_TOKEN),
    });
    const payload = Buffer.from('lazy');
    const verified = await opensslVerify(
      await signer.publicKeyPem(),
      await signer.sign(payload),
      payload,
    );
    expect(verified.code).toBe(0);
  });

  it('reports a wrong token as a final failure (the server insists on the bearer token)', async () => {
    kms.faults = {};
    const other = new KeyManagementServiceClient(localOptions(kms.port, 'wrong-token-value'));
    try {
      const signer = kmsSigner({ keyVersionName: KEY_VERSION, client: other });
      await expect(signer.sign(Buffer.from('x'))).rejects.toMatchObject({ retryable: false });
    } finally {
      await other.close();
    }
  });
});
