import { createHash, createPrivateKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@aws-crypto/crc32c';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createSigner,
  int64Value,
  type KmsAsymmetricSignRequest,
  type KmsAsymmetricSignResponse,
  type KmsClient,
  type KmsPublicKeyResponse,
  kmsSigner,
  loadOrCreateLocalKey,
  localKeyId,
  localSigner,
} from '../../../shared/attestations/signer.js';
import { ClearanceError } from '../../../shared/errors.js';
import { runOpenssl, signDigest } from './openssl.js';

const KEY_VERSION = 'projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1';

describe('local signer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clearance-key-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a P-256 key with mode 0600 when absent, and reuses it afterwards', async () => {
    const path = join(dir, 'nested', 'signing-key.pem');
    const first = await loadOrCreateLocalKey(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const key = createPrivateKey(await readFile(path, 'utf8'));
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const second = await loadOrCreateLocalKey(path);
    expect(second.keyId).toBe(first.keyId);
    expect(await second.publicKeyPem()).toBe(await first.publicKeyPem());
  });

  it('agrees on one key when two callers create it at once', async () => {
    const path = join(dir, 'k.pem');
    const signers = await Promise.all([loadOrCreateLocalKey(path), loadOrCreateLocalKey(path)]);
    expect(signers[0].keyId).toBe(signers[1].keyId);
    expect(signers[0].keyId).toBe(localSigner({ pem: await readFile(path, 'utf8') }).keyId);
  });

  it('names the key local:sha256:<hex of SPKI DER>, as openssl computes it', async () => {
    const path = join(dir, 'k.pem');
    const signer = await loadOrCreateLocalKey(path);
    const der = join(dir, 'pub.der');
    const out = await runOpenssl(
      ['pkey', '-in', path, '-pubout', '-outform', 'DER', '-out', der],
      dir,
    );
    expect(out.code).toBe(0);
    const hex = createHash('sha256')
      .update(await readFile(der))
      .digest('hex');
    expect(signer.keyId).toBe(`local:sha256:${hex}`);
    expect(localKeyId(await signer.publicKeyPem())).toBe(signer.keyId);
  });

  it('refuses keys that are not EC P-256', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    for (const k of [rsa, p384]) {
      expect(() =>
        localSigner({ pem: k.export({ type: 'pkcs8', format: 'pem' }).toString() }),
      ).toThrow(/EC P-256/);
    }
    expect(() => localSigner({ pem: 'not a key' })).toThrow(/not a readable PEM/);
  });

  it('reads SEC1 "EC PRIVATE KEY" PEMs as written by openssl ecparam', async () => {
    const path = join(dir, 'sec1.pem');
    const out = await runOpenssl(
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path],
      dir,
    );
    expect(out.code).toBe(0);
    expect(await readFile(path, 'utf8')).toContain('BEGIN EC PRIVATE KEY');
    const signer = await loadOrCreateLocalKey(path);
    expect(signer.keyId).toMatch(/^local:sha256:[a-f0-9]{64}$/);
  });

  it('is what createSigner builds for kind "local"', async () => {
    const path = join(dir, 'cfg.pem');
    const signer = await createSigner({ kind: 'local', path });
    expect(signer.keyId).toBe((await loadOrCreateLocalKey(path)).keyId);
    const kms = await createSigner({ kind: 'kms', keyVersionName: KEY_VERSION });
    expect(kms.keyId).toBe(`//cloudkms.googleapis.com/v1/${KEY_VERSION}`);
  });

  it('surfaces an unreadable existing key file instead of replacing it', async () => {
    const path = join(dir, 'bad.pem');
    await writeFile(path, 'garbage');
    await expect(loadOrCreateLocalKey(path)).rejects.toThrow(/not a readable PEM/);
    expect(await readFile(path, 'utf8')).toBe('garbage');
  });
});

describe('int64Value', () => {
  it('normalises numbers, strings, bigints and Long-like objects', () => {
    expect(int64Value(42)).toBe(42n);
    expect(int64Value('4294967295')).toBe(4294967295n);
    expect(int64Value(7n)).toBe(7n);
    expect(int64Value({ toString: () => '123' })).toBe(123n);
    expect(int64Value(null)).toBeNull();
    expect(int64Value(undefined)).toBeNull();
    expect(int64Value('12a')).toBeNull();
    expect(int64Value(1.5)).toBeNull();
  });
});

/** A scripted stand-in for KeyManagementServiceClient; the real client is exercised in kms.int.test.ts. */
function fakeKms(
  tweak: {
    sign?: (r: KmsAsymmetricSignResponse) => KmsAsymmetricSignResponse;
    key?: (r: KmsPublicKeyResponse) => KmsPublicKeyResponse;
  } = {},
) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const calls = { sign: [] as KmsAsymmetricSignRequest[], publicKey: 0 };
  const client = {
    async asymmetricSign(request: KmsAsymmetricSignRequest) {
      calls.sign.push(request);
      // KMS signs the digest as given (a pre-hashed ECDSA signature).
      const signature = await signDigest(privateKeyPem, request.digest.sha256);
      const response: KmsAsymmetricSignResponse = {
        signature,
        signatureCrc32c: { value: String(crc32c(signature)) },
        verifiedDigestCrc32c: true,
        name: request.name,
      };
      return [tweak.sign ? tweak.sign(response) : response] as const;
    },
    async getPublicKey(request: { name: string }) {
      calls.publicKey += 1;
      const response: KmsPublicKeyResponse = {
        pem,
        pemCrc32c: { value: { toString: () => String(crc32c(Buffer.from(pem))) } },
        algorithm: 'EC_SIGN_P256_SHA256',
        name: request.name,
      };
      return [tweak.key ? tweak.key(response) : response] as const;
    },
  } satisfies KmsClient;
  return { client, calls, pem };
}

describe('kmsSigner (scripted client)', () => {
  it('sends the SHA-256 digest with its CRC32C and returns a signature that verifies', async () => {
    const kms = fakeKms();
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client: kms.client });
    expect(signer.keyId).toBe(`//cloudkms.googleapis.com/v1/${KEY_VERSION}`);
    const data = Buffer.from('payload');
    const sig = await signer.sign(data);
    const digest = createHash('sha256').update(data).digest();
    expect(kms.calls.sign[0].digest.sha256.equals(digest)).toBe(true);
    expect(kms.calls.sign[0].digestCrc32c.value).toBe(crc32c(digest));
    expect(verify('sha256', data, { key: kms.pem, dsaEncoding: 'der' }, sig)).toBe(true);
  });

  it('fetches the public key once', async () => {
    const kms = fakeKms();
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client: kms.client });
    const pems = await Promise.all([signer.publicKeyPem(), signer.publicKeyPem()]);
    await signer.publicKeyPem();
    expect(pems[0]).toBe(kms.pem);
    expect(kms.calls.publicKey).toBe(1);
  });

  const refusals: [string, Parameters<typeof fakeKms>[0]][] = [
    ['digest CRC not verified', { sign: (r) => ({ ...r, verifiedDigestCrc32c: false }) }],
    ['another key version', { sign: (r) => ({ ...r, name: `${KEY_VERSION}0` }) }],
    ['signature CRC mismatch', { sign: (r) => ({ ...r, signatureCrc32c: { value: '1' } }) }],
    ['signature CRC missing', { sign: (r) => ({ ...r, signatureCrc32c: null }) }],
  ];
  for (const [name, tweak] of refusals) {
    it(`refuses a signature with ${name}`, async () => {
      const signer = kmsSigner({ keyVersionName: KEY_VERSION, client: fakeKms(tweak).client });
      const err = await signer.sign(Buffer.from('x')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClearanceError);
      expect((err as ClearanceError).code).toBe('integrity');
      expect((err as ClearanceError).retryable).toBe(false);
    });
  }

  it('refuses a public key whose CRC32C does not match, and fetches again next time', async () => {
    let corrupt = true;
    const kms = fakeKms({
      key: (r) => (corrupt ? { ...r, pemCrc32c: { value: 0 } } : r),
    });
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client: kms.client });
    await expect(signer.publicKeyPem()).rejects.toMatchObject({ code: 'integrity' });
    corrupt = false;
    expect(await signer.publicKeyPem()).toBe(kms.pem);
    expect(kms.calls.publicKey).toBe(2);
  });

  it('refuses a key of another algorithm', async () => {
    const kms = fakeKms({ key: (r) => ({ ...r, algorithm: 'RSA_SIGN_PSS_2048_SHA256' }) });
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client: kms.client });
    await expect(signer.publicKeyPem()).rejects.toMatchObject({ code: 'invalid-config' });
  });

  it('rejects a key version name of the wrong shape', () => {
    expect(() => kmsSigner({ keyVersionName: 'projects/p/keys/k' })).toThrow(/cryptoKeyVersions/);
  });

  it('turns transient client failures into retryable errors', async () => {
    const client = {
      asymmetricSign: async () => {
        throw Object.assign(new Error('unavailable'), { code: 14 });
      },
      getPublicKey: async () => {
        throw Object.assign(new Error('denied'), { code: 7 });
      },
    } satisfies KmsClient;
    const signer = kmsSigner({ keyVersionName: KEY_VERSION, client });
    await expect(signer.sign(Buffer.from('x'))).rejects.toMatchObject({ retryable: true });
    await expect(signer.publicKeyPem()).rejects.toMatchObject({ retryable: false });
  });
});
