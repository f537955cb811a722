// A private Sigstore for tests: a generated Fulcio-like CA and leaf certificates (openssl), a Rekor key, SETs, checkpoints and a trusted root.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dsse, json } from '@sigstore/core';
import { runOpenssl } from '../shared/attestations/openssl.js';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const REKOR_URL = 'https://rekor.clearance.test';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
}

export function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const der = (certPem: string) =>
  Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await runOpenssl(args, cwd);
  if (out.code !== 0) throw new Error(`openssl ${args[0]} failed: ${out.stderr}`);
}

export interface TestSigstore {
  caCertDer: Buffer;
  rekor: KeyPair;
  logId: Buffer;
  /** trusted_root.json for this CA and log. */
  trustedRoot: Record<string, unknown>;
  /** A Fulcio-like leaf certificate for `subject` from `issuer` (both OIDC issuer extensions set). */
  leaf(subject: string, issuer?: string): Promise<{ certDer: Buffer; key: KeyPair }>;
  /** A tlog entry (SET and a one-leaf inclusion proof with a signed checkpoint) for a canonical body. */
  tlogEntry(
    body: Record<string, unknown>,
    kind: { kind: string; version: string },
    integratedTime: number,
  ): Record<string, unknown>;
}

/** Generates a CA (self-signed, P-384 like Fulcio's) and a Rekor key; certificates are issued on demand. */
export async function createTestSigstore(): Promise<TestSigstore> {
  const dir = await mkdtemp(join(tmpdir(), 'clearance-sigstore-'));
  try {
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await writeFile(join(dir, 'ca.key'), pem(ca.privateKey), { mode: 0o600 });
    await openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-subj',
        '/O=clearance.test/CN=clearance-test-fulcio',
        '-days',
        '3650',
        '-sha384',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-addext',
        'extendedKeyUsage=codeSigning',
        '-out',
        'ca.pem',
      ],
      dir,
    );
    const caPem = await readFile(join(dir, 'ca.pem'), 'utf8');
    const caKeyPem = pem(ca.privateKey);
    const rekor = keyPair();
    const rekorDer = rekor.publicKey.export({ type: 'spki', format: 'der' });
    const logId = createHash('sha256').update(rekorDer).digest();
    const trustedRoot = {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: REKOR_URL,
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: rekorDer.toString('base64'),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start: '2020-01-01T00:00:00Z' },
          },
          logId: { keyId: logId.toString('base64') },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'clearance.test', commonName: 'clearance-test-fulcio' },
          uri: 'https://fulcio.clearance.test',
          certChain: { certificates: [{ rawBytes: der(caPem).toString('base64') }] },
          validFor: { start: '2020-01-01T00:00:00Z' },
        },
      ],
      ctlogs: [],
      timestampAuthorities: [],
    };
    let serial = 1;
    return {
      caCertDer: der(caPem),
      rekor,
      logId,
      trustedRoot,
      async leaf(subject, issuer = GITHUB_ISSUER) {
        const work = await mkdtemp(join(tmpdir(), 'clearance-leaf-'));
        try {
          const key = keyPair();
          await writeFile(join(work, 'ca.key'), caKeyPem, { mode: 0o600 });
          await writeFile(join(work, 'ca.pem'), caPem);
          await writeFile(join(work, 'leaf.key'), pem(key.privateKey), { mode: 0o600 });
          const san =
            subject.includes('@') && !subject.includes('://')
              ? `email:${subject}`
              : `URI:${subject}`;
          // 1.1 holds the issuer as raw bytes (Fulcio v1), 1.8 as a DER UTF8String (v2).
          await writeFile(
            join(work, 'ext.cnf'),
            [
              `subjectAltName=critical,${san}`,
              'keyUsage=critical,digitalSignature',
              'extendedKeyUsage=codeSigning',
              'subjectKeyIdentifier=hash',
              'authorityKeyIdentifier=keyid',
              `1.3.6.1.4.1.57264.1.1=DER:${Buffer.from(issuer).toString('hex')}`,
              `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuer}`,
              '',
            ].join('\n'),
          );
          await openssl(
            ['req', '-new', '-key', 'leaf.key', '-subj', '/O=sigstore.dev', '-out', 'leaf.csr'],
            work,
          );
          await openssl(
            [
              'x509',
              '-req',
              '-in',
              'leaf.csr',
              '-CA',
              'ca.pem',
              '-CAkey',
              'ca.key',
              '-set_serial',
              String(serial++),
              '-days',
              '1',
              '-sha384',
              '-extfile',
              'ext.cnf',
              '-out',
              'leaf.pem',
            ],
            work,
          );
          return { certDer: der(await readFile(join(work, 'leaf.pem'), 'utf8')), key };
        } finally {
          await rm(work, { recursive: true, force: true });
        }
      },
      tlogEntry(body, kind, integratedTime) {
        const canonicalized = Buffer.from(json.canonicalize(body), 'utf8');
        const logIndex = 0;
        const setPayload = Buffer.from(
          json.canonicalize({
            body: canonicalized.toString('base64'),
            integratedTime,
            logIndex,
            logID: logId.toString('hex'),
          }),
          'utf8',
        );
        const set = sign('sha256', setPayload, rekor.privateKey);
        // A one-leaf tree: the root is the leaf hash and the proof has no hashes.
        const root = createHash('sha256')
          .update(Buffer.concat([Buffer.from([0]), canonicalized]))
          .digest();
        const origin = 'rekor.clearance.test - 1';
        const note = `${origin}\n1\n${root.toString('base64')}\n`;
        const noteSig = sign('sha256', Buffer.from(note, 'utf8'), rekor.privateKey);
        const envelope = `${note}\n\u2014 rekor.clearance.test ${Buffer.concat([logId.subarray(0, 4), noteSig]).toString('base64')}\n`;
        return {
          logIndex: String(logIndex),
          logId: { keyId: logId.toString('base64') },
          kindVersion: kind,
          integratedTime: String(integratedTime),
          inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
          inclusionProof: {
            logIndex: String(logIndex),
            rootHash: root.toString('base64'),
            treeSize: '1',
            hashes: [],
            checkpoint: { envelope },
          },
          canonicalizedBody: canonicalized.toString('base64'),
        };
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const IN_TOTO = 'application/vnd.in-toto+json';

/** ECDSA over the DSSE pre-authentication encoding, as cosign and Fulcio-backed signers do. */
export function signEnvelope(payloadType: string, payload: Buffer, key: KeyObject): Buffer {
  return sign('sha256', dsse.preAuthEncoding(payloadType, payload), key);
}

/** A bare DSSE envelope (cosign `attest --key`, `--tlog-upload=false` style). */
export function dsseEnvelope(statement: unknown, key: KeyObject, keyid = '') {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  return {
    payloadType: IN_TOTO,
    payload: payload.toString('base64'),
    signatures: [{ keyid, sig: signEnvelope(IN_TOTO, payload, key).toString('base64') }],
  };
}

const sha256hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * A v0.3 bundle as GitHub artifact attestations and `cosign attest --new-bundle-format` write it:
 * one certificate, a dsse 0.0.1 tlog entry with inclusion proof.
 */
export async function keylessBundleV03(
  sigstore: TestSigstore,
  statement: unknown,
  subject: string,
  options: { issuer?: string; integratedTime?: number } = {},
) {
  const { certDer, key } = await sigstore.leaf(subject, options.issuer);
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = signEnvelope(IN_TOTO, payload, key.privateKey);
  const envelope = {
    payloadType: IN_TOTO,
    payload: payload.toString('base64'),
    signatures: [{ sig: sig.toString('base64'), keyid: '' }],
  };
  const certPem = `-----BEGIN CERTIFICATE-----\n${certDer.toString('base64')}\n-----END CERTIFICATE-----\n`;
  const body = {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256hex(JSON.stringify(envelope)) },
      payloadHash: { algorithm: 'sha256', value: sha256hex(payload) },
      signatures: [
        { signature: sig.toString('base64'), verifier: Buffer.from(certPem).toString('base64') },
      ],
    },
  };
  return {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      certificate: { rawBytes: certDer.toString('base64') },
      tlogEntries: [
        sigstore.tlogEntry(
          body,
          { kind: 'dsse', version: '0.0.1' },
          options.integratedTime ?? Math.floor(Date.now() / 1000),
        ),
      ],
    },
    dsseEnvelope: envelope,
  };
}

/**
 * Re-signs a bundle written by slsa-github-generator v2 (v0.2, certificate chain, intoto 0.0.2 tlog
 * entry with promise and proof, empty RFC 3161 list) with this test Sigstore, keeping its structure,
 * payload and every field the generator writes; only keys, signatures and log values change.
 */
export async function resignSlsaGeneratorBundle(
  sigstore: TestSigstore,
  original: Record<string, unknown>,
  subject: string,
  options: { issuer?: string; integratedTime?: number } = {},
) {
  const o = original as {
    mediaType: string;
    verificationMaterial: { timestampVerificationData?: unknown };
    dsseEnvelope: { payload: string; payloadType: string };
  };
  const { certDer, key } = await sigstore.leaf(subject, options.issuer);
  const payload = Buffer.from(o.dsseEnvelope.payload, 'base64');
  const sig = signEnvelope(o.dsseEnvelope.payloadType, payload, key.privateKey);
  const certPem = `-----BEGIN CERTIFICATE-----\n${certDer.toString('base64')}\n-----END CERTIFICATE-----\n`;
  const envelope = {
    payloadType: o.dsseEnvelope.payloadType,
    signatures: [
      {
        publicKey: Buffer.from(certPem).toString('base64'),
        sig: Buffer.from(sig.toString('base64')).toString('base64'),
      },
    ],
  };
  const body = {
    apiVersion: '0.0.2',
    kind: 'intoto',
    spec: {
      content: {
        envelope,
        hash: { algorithm: 'sha256', value: sha256hex(JSON.stringify(envelope)) },
        payloadHash: { algorithm: 'sha256', value: sha256hex(payload) },
      },
    },
  };
  return {
    mediaType: o.mediaType,
    verificationMaterial: {
      x509CertificateChain: { certificates: [{ rawBytes: certDer.toString('base64') }] },
      tlogEntries: [
        sigstore.tlogEntry(
          body,
          { kind: 'intoto', version: '0.0.2' },
          options.integratedTime ?? Math.floor(Date.now() / 1000),
        ),
      ],
      timestampVerificationData: o.verificationMaterial.timestampVerificationData,
    },
    dsseEnvelope: {
      payload: o.dsseEnvelope.payload,
      payloadType: o.dsseEnvelope.payloadType,
      signatures: [{ sig: sig.toString('base64'), keyid: '' }],
    },
  };
}

export { createPrivateKey, createPublicKey };
