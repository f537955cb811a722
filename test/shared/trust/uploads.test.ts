import { describe, expect, it } from 'vitest';
import { TrustSigner } from '../../../shared/policy/policy.js';
import { createEvidenceVerifier } from '../../../shared/trust/signed-evidence.js';
import { attributeVex, readUpload } from '../../../shared/trust/uploads.js';
import { dsseEnvelope, keyPair } from '../../support/sigstore-testing.js';
import { fixture } from '../real-world-fixtures.js';

const release = keyPair();
const verifier = createEvidenceVerifier({
  signers: [TrustSigner.parse({ name: 'release', publicKey: release.publicKeyPem })],
  trustedRoot: null,
});
const provenance = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'us-docker.pkg.dev/acme/apps/api', digest: { sha256: 'a'.repeat(64) } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: { runDetails: { builder: { id: 'https://github.com/acme/builder' } } },
};
const openvex = fixture<Record<string, unknown>>('vex/openvex-v0.2.0-alpine-openssl.json');
const vexStatement = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'us-docker.pkg.dev/acme/apps/api', digest: { sha256: 'a'.repeat(64) } }],
  predicateType: 'https://openvex.dev/ns/v0.2.0',
  predicate: openvex,
};

describe('readUpload', () => {
  it('reads signed provenance as verified, with its signer', async () => {
    const u = await readUpload(dsseEnvelope(provenance, release.privateKey), verifier);
    expect(u).toMatchObject({
      kind: 'provenance',
      trust: { verified: true, signer: { name: 'release', method: 'key' } },
      provenance: { provenance: { builderId: 'https://github.com/acme/builder' } },
    });
  });

  it('reads a bare statement, or one signed by a stranger, as unverified provenance', async () => {
    expect(await readUpload(provenance, verifier)).toMatchObject({
      kind: 'provenance',
      trust: { verified: false, reason: expect.stringMatching(/^not signed/) },
    });
    const stranger = keyPair();
    expect(await readUpload(dsseEnvelope(provenance, stranger.privateKey), verifier)).toMatchObject(
      {
        kind: 'provenance',
        trust: { verified: false, reason: expect.stringMatching(/not signed by any of the 1 key/) },
      },
    );
  });

  it('reads OpenVEX signed in an in-toto statement as verified VEX, and a bare document as unverified', async () => {
    const signed = await readUpload(dsseEnvelope(vexStatement, release.privateKey), verifier);
    expect(signed).toMatchObject({ kind: 'vex', trust: { verified: true } });
    const bare = await readUpload(openvex, verifier);
    expect(bare).toMatchObject({ kind: 'vex', trust: { verified: false } });
    if (bare.kind !== 'vex' || signed.kind !== 'vex') throw new Error('unreachable');
    expect(attributeVex(bare.statements, bare.trust, 'report:ci')[0]).toMatchObject({
      signer: null,
      source: 'report:ci',
      author: 'The OpenVEX Project <openvex@openssf.org>',
    });
    expect(attributeVex(signed.statements, signed.trust, 'report:ci')[0]?.signer).toBe('release');
  });

  it('reads anything else as a scanner report', async () => {
    const u = await readUpload(fixture('scanners/trivy-debian-buster.json'), verifier);
    expect(u).toMatchObject({ kind: 'report', report: { format: 'trivy' } });
  });
});
