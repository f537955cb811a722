// Signers behind one interface: a local ECDSA P-256 PEM key (local stack, tests) and a Cloud KMS key version (production).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32c } from '@aws-crypto/crc32c';
import { ClearanceError, isRetryable, TransientError } from '../errors.js';

type KmsClientOptions = ConstructorParameters<
  typeof import('@google-cloud/kms').KeyManagementServiceClient
>[0];

/**
 * Signs with ECDSA P-256 / SHA-256. `sign` hashes `data` itself (callers pass the exact bytes
 * a verifier will hash, e.g. the Binary Authorization payload or the DSSE PAE) and returns the
 * ASN.1 DER signature, the form `openssl dgst -verify`, Binary Authorization and DSSE expect.
 */
export interface Signer {
  /** What verifiers use to pick the key: the KMS key version URI or `local:sha256:<hex>`. */
  readonly keyId: string;
  sign(data: Buffer): Promise<Buffer>;
  publicKeyPem(): Promise<string>;
}

// ---------------------------------------------------------------------------------------------
// Local key

/**
 * Identifier of a local key: `local:sha256:` + hex SHA-256 of the public key's SPKI DER encoding.
 * It is what `openssl pkey -pubin -outform DER | sha256sum` prints, so anyone holding the PEM can
 * recompute it, and it changes whenever the key does.
 */
export function localKeyId(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return `local:sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** A signer over a PEM private key (PKCS#8 or SEC1); refuses keys that are not EC P-256. */
export function localSigner(options: { pem: string }): Signer {
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(options.pem);
  } catch (err) {
    throw new ClearanceError('invalid-config', 'local signing key is not a readable PEM key', {
      cause: err,
    });
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new ClearanceError('invalid-config', 'local signing key must be an EC P-256 key', {
      details: { type: key.asymmetricKeyType, curve },
    });
  }
  const publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  const keyId = localKeyId(publicPem);
  return {
    keyId,
    sign: async (data) => sign('sha256', data, { key, dsaEncoding: 'der' }),
    publicKeyPem: async () => publicPem,
  };
}

/**
 * Loads the local signing key at `path`, generating a P-256 key (PKCS#8 PEM, mode 0600) when the
 * file is absent. Creation uses exclusive open so two processes starting together agree on one key.
 */
export async function loadOrCreateLocalKey(path: string): Promise<Signer> {
  try {
    return localSigner({ pem: await readFile(path, 'utf8') });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process won the race: use its key.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return localSigner({ pem: await readFile(path, 'utf8') });
  }
  return localSigner({ pem });
}

// ---------------------------------------------------------------------------------------------
// Cloud KMS

/** An int64 as the client returns it: number, decimal string, or a Long-like object. */
export type Int64Like = number | string | bigint | { toString(): string } | null | undefined;

export interface KmsAsymmetricSignRequest {
  name: string;
  digest: { sha256: Buffer };
  digestCrc32c: { value: number };
}

export interface KmsAsymmetricSignResponse {
  signature?: Uint8Array | string | null;
  signatureCrc32c?: { value?: Int64Like } | null;
  verifiedDigestCrc32c?: boolean | null;
  name?: string | null;
}

export interface KmsPublicKeyResponse {
  pem?: string | null;
  pemCrc32c?: { value?: Int64Like } | null;
  algorithm?: string | number | null;
  name?: string | null;
}

/** The two calls of `KeyManagementServiceClient` the signer uses; tests may pass the real client. */
export interface KmsClient {
  asymmetricSign(
    request: KmsAsymmetricSignRequest,
  ): Promise<readonly [KmsAsymmetricSignResponse, ...unknown[]]>;
  getPublicKey(request: { name: string }): Promise<readonly [KmsPublicKeyResponse, ...unknown[]]>;
}

const KEY_VERSION_NAME =
  /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+\/cryptoKeyVersions\/[^/]+$/;

/** `EC_SIGN_P256_SHA256` in google.cloud.kms.v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm. */
const EC_SIGN_P256_SHA256 = { name: 'EC_SIGN_P256_SHA256', number: 12 } as const;

/** Normalises an int64 wrapper value (number, string, bigint or Long) to a bigint; null when absent. */
export function int64Value(value: Int64Like): bigint | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : null;
  const text = typeof value === 'string' ? value : value.toString();
  return /^-?\d+$/.test(text) ? BigInt(text) : null;
}

function toBuffer(value: Uint8Array | string | null | undefined): Buffer {
  if (value === null || value === undefined) return Buffer.alloc(0);
  return typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.from(value);
}

function wrapKmsError(what: string, keyVersionName: string, err: unknown): never {
  if (err instanceof ClearanceError) throw err;
  const details = { keyVersionName, grpcCode: (err as { code?: unknown })?.code };
  if (isRetryable(err)) throw new TransientError(`KMS ${what} failed`, { cause: err, details });
  throw new ClearanceError('invalid-config', `KMS ${what} failed`, { cause: err, details });
}

/**
 * A signer over a Cloud KMS asymmetric key version (EC_SIGN_P256_SHA256). KMS signs the SHA-256
 * digest we send; CRC32C integrity fields are checked both ways as Google's integrity guide asks:
 * the request carries the digest's CRC32C (KMS must report `verifiedDigestCrc32c`), and the
 * response's signature must match its `signatureCrc32c`. Any mismatch is refused with
 * `ClearanceError('integrity')`: a signature corrupted in transit must never be published.
 */
export function kmsSigner(options: {
  keyVersionName: string;
  client?: KmsClient;
  /** Passed to `new KeyManagementServiceClient(...)` when no client is given. */
  clientOptions?: KmsClientOptions;
}): Signer {
  const { keyVersionName } = options;
  if (!KEY_VERSION_NAME.test(keyVersionName)) {
    throw new ClearanceError(
      'invalid-config',
      'KMS key version must look like projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N',
      { details: { keyVersionName } },
    );
  }
  let clientPromise: Promise<KmsClient> | undefined;
  const client = (): Promise<KmsClient> => {
    clientPromise ??= options.client
      ? Promise.resolve(options.client)
      : import('@google-cloud/kms').then(
          (kms) =>
            new kms.KeyManagementServiceClient(options.clientOptions) as unknown as KmsClient,
        );
    return clientPromise;
  };

  let publicKey: Promise<string> | undefined;
  const fetchPublicKey = async (): Promise<string> => {
    let response: KmsPublicKeyResponse;
    try {
      [response] = await (await client()).getPublicKey({ name: keyVersionName });
    } catch (err) {
      wrapKmsError('getPublicKey', keyVersionName, err);
    }
    const pem = response.pem ?? '';
    const expected = int64Value(response.pemCrc32c?.value);
    if (expected === null || BigInt(crc32c(Buffer.from(pem, 'utf8'))) !== expected) {
      throw new ClearanceError('integrity', 'KMS public key failed its CRC32C check', {
        details: { keyVersionName },
      });
    }
    if (response.name && response.name !== keyVersionName) {
      throw new ClearanceError('integrity', 'KMS returned the public key of another key version', {
        details: { keyVersionName, returned: response.name },
      });
    }
    const algorithm = response.algorithm;
    if (
      algorithm !== undefined &&
      algorithm !== null &&
      algorithm !== EC_SIGN_P256_SHA256.name &&
      algorithm !== EC_SIGN_P256_SHA256.number
    ) {
      throw new ClearanceError('invalid-config', 'KMS key must be EC_SIGN_P256_SHA256', {
        details: { keyVersionName, algorithm },
      });
    }
    return pem;
  };

  return {
    keyId: `//cloudkms.googleapis.com/v1/${keyVersionName}`,
    publicKeyPem: () => {
      // Fetched once per process; a failed fetch is forgotten so the next call tries again.
      publicKey ??= fetchPublicKey().catch((err: unknown) => {
        publicKey = undefined;
        throw err;
      });
      return publicKey;
    },
    sign: async (data) => {
      const digest = createHash('sha256').update(data).digest();
      let response: KmsAsymmetricSignResponse;
      try {
        [response] = await (await client()).asymmetricSign({
          name: keyVersionName,
          digest: { sha256: digest },
          digestCrc32c: { value: crc32c(digest) },
        });
      } catch (err) {
        wrapKmsError('asymmetricSign', keyVersionName, err);
      }
      if (response.verifiedDigestCrc32c !== true) {
        throw new ClearanceError('integrity', 'KMS did not verify the digest CRC32C', {
          details: { keyVersionName },
        });
      }
      if (response.name !== keyVersionName) {
        throw new ClearanceError('integrity', 'KMS answered for another key version', {
          details: { keyVersionName, returned: response.name },
        });
      }
      const signature = toBuffer(response.signature);
      const expected = int64Value(response.signatureCrc32c?.value);
      if (signature.length === 0 || expected === null || BigInt(crc32c(signature)) !== expected) {
        throw new ClearanceError('integrity', 'KMS signature failed its CRC32C check', {
          details: { keyVersionName },
        });
      }
      return signature;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Choosing one (CLEARANCE_SIGNER=kms|local)

export type SignerConfig =
  | { kind: 'kms'; keyVersionName: string; clientOptions?: KmsClientOptions }
  /** Path of the PEM key; created on first use (the local stack keeps it under .clearance/). */
  | { kind: 'local'; path: string };

export async function createSigner(config: SignerConfig): Promise<Signer> {
  switch (config.kind) {
    case 'kms':
      return kmsSigner(config);
    case 'local':
      return loadOrCreateLocalKey(config.path);
    default: {
      const never: never = config;
      throw new ClearanceError('invalid-config', `unknown signer ${JSON.stringify(never)}`);
    }
  }
}
