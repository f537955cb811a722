import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  dsseSign,
  dsseVerify,
  IN_TOTO_PAYLOAD_TYPE,
  pae,
  parseDsseEnvelope,
  verificationSummaryStatement,
} from '../../../shared/attestations/dsse.js';
import { localSigner } from '../../../shared/attestations/signer.js';
import { InvalidInputError } from '../../../shared/errors.js';
import { fixturePath } from '../real-world-fixtures.js';
import { opensslVerify } from './openssl.js';

const DIGEST = 'sha256:8c733d1c02c464f484bccd5fda4bc560040b80e105e431f17e1b1c3fce9b7d27';
const POLICY = 'sha256:1f2e3d4c5b6a79880f1e2d3c4b5a69788f1e2d3c4b5a69788f1e2d3c4b5a6978';

function p256Signer() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return localSigner({ pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
}

describe('pae', () => {
  it('matches the DSSE spec test vector', () => {
    expect(pae('http://example.com/HelloWorld', 'hello world').toString('utf8')).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('counts bytes, not characters', () => {
    // "é" is two bytes in UTF-8.
    expect(pae('t', 'é').equals(Buffer.from('DSSEv1 1 t 2 é', 'utf8'))).toBe(true);
    expect(pae('', Buffer.alloc(0)).toString()).toBe('DSSEv1 0  0 ');
  });
});

describe('dsseSign / dsseVerify', () => {
  it('signs PAE(type, payload) and verifies with the public key, also through node:crypto and openssl', async () => {
    const signer = p256Signer();
    const env = await dsseSign(signer, IN_TOTO_PAYLOAD_TYPE, '{"a":1}');
    expect(env).toMatchObject({
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      payload: Buffer.from('{"a":1}').toString('base64'),
      signatures: [{ keyid: signer.keyId }],
    });
    const pem = await signer.publicKeyPem();
    expect(dsseVerify(env, pem)).toBe(true);
    expect(dsseVerify(JSON.stringify(env), pem)).toBe(true);

    const message = pae(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{"a":1}'));
    const sig = Buffer.from(env.signatures[0].sig, 'base64');
    expect(verify('sha256', message, { key: createPublicKey(pem), dsaEncoding: 'der' }, sig)).toBe(
      true,
    );
    const byOpenssl = await opensslVerify(pem, sig, message);
    expect(byOpenssl.stdout.trim()).toBe('Verified OK');
  });

  it('refuses a changed payload, a changed type and another key', async () => {
    const signer = p256Signer();
    const env = await dsseSign(signer, IN_TOTO_PAYLOAD_TYPE, '{"a":1}');
    const pem = await signer.publicKeyPem();
    expect(dsseVerify({ ...env, payload: Buffer.from('{"a":2}').toString('base64') }, pem)).toBe(
      false,
    );
    expect(dsseVerify({ ...env, payloadType: 'application/json' }, pem)).toBe(false);
    expect(dsseVerify(env, await p256Signer().publicKeyPem())).toBe(false);
  });

  it('rejects malformed envelopes with the zod path', () => {
    expect(() => parseDsseEnvelope({ payloadType: 'x', payload: 'eA==', signatures: [] })).toThrow(
      InvalidInputError,
    );
    expect(() => parseDsseEnvelope({ payload: 'eA==', signatures: [{ sig: 'AA==' }] })).toThrow(
      /payloadType/,
    );
    expect(() => parseDsseEnvelope('{not json')).toThrow(/not JSON/);
  });

  it('reads a real DSSE envelope (slsa-github-generator) in the same shape', async () => {
    const real = await readFile(
      fixturePath('slsa/dsse-envelope-slsa-v0.2-github-actions.json'),
      'utf8',
    );
    const env = parseDsseEnvelope(real);
    expect(env.payloadType).toBe(IN_TOTO_PAYLOAD_TYPE);
    expect(env.signatures.length).toBeGreaterThan(0);
    // Signed with a Sigstore key we do not hold: must not verify with ours.
    expect(dsseVerify(env, await p256Signer().publicKeyPem())).toBe(false);
  });
});

describe('verificationSummaryStatement', () => {
  it('builds an in-toto Statement v1 with a SLSA VSA v1 predicate about the image digest', () => {
    const st = verificationSummaryStatement({
      imageName: 'us-docker.pkg.dev/p/r/img',
      digest: DIGEST,
      verifierId: 'https://github.com/example/clearance',
      timeVerified: '2026-11-29T10:00:00.000Z',
      policyHash: POLICY,
      result: 'PASSED',
      levels: ['SLSA_BUILD_LEVEL_1'],
      policyUri: 'https://example.com/policies/prod',
    });
    expect(st).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'us-docker.pkg.dev/p/r/img', digest: { sha256: DIGEST.slice(7) } }],
      predicateType: 'https://slsa.dev/verification_summary/v1',
      predicate: {
        verifier: { id: 'https://github.com/example/clearance' },
        timeVerified: '2026-11-29T10:00:00.000Z',
        resourceUri: `https://us-docker.pkg.dev/p/r/img@${DIGEST}`,
        policy: { uri: 'https://example.com/policies/prod', digest: { sha256: POLICY.slice(7) } },
        verificationResult: 'PASSED',
        verifiedLevels: ['SLSA_BUILD_LEVEL_1'],
      },
    });
  });

  it('takes a bare hex policy hash as sha256 and omits an absent policy uri', () => {
    const st = verificationSummaryStatement({
      imageName: 'gcr.io/a/b',
      digest: DIGEST,
      verifierId: 'v',
      timeVerified: '2026-11-29T10:00:00.000Z',
      policyHash: 'abc123',
      result: 'FAILED',
      levels: ['FAILED'],
    });
    expect(st.predicate.policy).toEqual({ digest: { sha256: 'abc123' } });
  });

  it('rejects a digest that is not sha256', () => {
    expect(() =>
      verificationSummaryStatement({
        imageName: 'gcr.io/a/b',
        digest: 'sha256:xyz',
        verifierId: 'v',
        timeVerified: 't',
        policyHash: POLICY,
        result: 'PASSED',
        levels: [],
      }),
    ).toThrow(/digest/);
  });
});
