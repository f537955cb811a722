import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../shared/errors.js';
import {
  type TrustSigner,
  TrustSigner as TrustSignerSchema,
} from '../../../shared/policy/policy.js';
import { readProvenance } from '../../../shared/provenance/provenance.js';
import {
  createEvidenceVerifier,
  type SignedEvidence,
  signedForm,
} from '../../../shared/trust/signed-evidence.js';
import {
  createTestSigstore,
  dsseEnvelope,
  GITHUB_ISSUER,
  keylessBundleV03,
  keyPair,
  resignSlsaGeneratorBundle,
  type TestSigstore,
} from '../../support/sigstore-testing.js';
import { fixture } from '../real-world-fixtures.js';

const GENERATOR_BUNDLE = 'sigstore/slsa-github-generator-v2.0.0-delegator.build.slsa';
const GENERATOR_SAN =
  'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/delegator_generic_slsa3.yml@refs/tags/v2.0.0';

const statement = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'us-docker.pkg.dev/acme/apps/api', digest: { sha256: 'a'.repeat(64) } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {
    buildDefinition: { buildType: 'https://example/build', externalParameters: {} },
    runDetails: { builder: { id: 'https://github.com/acme/builder' } },
  },
};

const signer = (s: unknown): TrustSigner => TrustSignerSchema.parse(s);

function expectVerified(r: SignedEvidence): asserts r is SignedEvidence & { verified: true } {
  if (!r.verified) throw new Error(`expected verified, got: ${r.reason}`);
}

let sigstore: TestSigstore;
beforeAll(async () => {
  sigstore = await createTestSigstore();
}, 30_000);

describe('signed evidence: keys', () => {
  const release = keyPair();
  const other = keyPair();
  const keySigner = signer({ name: 'release', publicKey: release.publicKeyPem });

  it('verifies a bare DSSE envelope signed by a policy key and returns the signed statement', async () => {
    const v = createEvidenceVerifier({ signers: [keySigner], trustedRoot: null });
    const r = await v.verify(dsseEnvelope(statement, release.privateKey), 'provenance');
    expectVerified(r);
    expect(r.signer).toEqual({ name: 'release', method: 'key', identity: 'release', issuer: null });
    expect(JSON.parse(r.payload.toString('utf8'))).toEqual(statement);
    expect(r.form).toBe('dsse');
  });

  it('does not verify an envelope signed by another key, or one whose payload was changed', async () => {
    const v = createEvidenceVerifier({ signers: [keySigner], trustedRoot: null });
    const foreign = await v.verify(dsseEnvelope(statement, other.privateKey), 'provenance');
    expect(foreign.verified).toBe(false);
    const env = dsseEnvelope(statement, release.privateKey);
    const tampered = {
      ...env,
      payload: Buffer.from(
        JSON.stringify({
          ...statement,
          predicate: { ...statement.predicate, runDetails: { builder: { id: 'evil' } } },
        }),
      ).toString('base64'),
    };
    const r = await v.verify(tampered, 'provenance');
    expect(r.verified).toBe(false);
    if (!r.verified) expect(r.reason).toMatch(/not signed by any of the 1 key/);
  });

  it('counts a key only for the evidence the policy lets it sign', async () => {
    const v = createEvidenceVerifier({
      signers: [
        signer({ name: 'release', publicKey: release.publicKeyPem, evidence: ['provenance'] }),
      ],
      trustedRoot: null,
    });
    expect(
      (await v.verify(dsseEnvelope(statement, release.privateKey), 'provenance')).verified,
    ).toBe(true);
    const vex = await v.verify(dsseEnvelope(statement, release.privateKey), 'vex');
    expect(vex.verified).toBe(false);
    if (!vex.verified) expect(vex.reason).toBe('no signer in the policy may sign vex with a key');
  });

  it('accepts any one trusted signature of a multi-signature envelope', async () => {
    const v = createEvidenceVerifier({ signers: [keySigner], trustedRoot: null });
    const a = dsseEnvelope(statement, other.privateKey);
    const b = dsseEnvelope(statement, release.privateKey);
    const r = await v.verify(
      { ...a, signatures: [...a.signatures, ...b.signatures] },
      'provenance',
    );
    expect(r.verified).toBe(true);
  });

  it('refuses input that is neither a bundle nor an envelope, and malformed bundles', async () => {
    const v = createEvidenceVerifier({ signers: [keySigner], trustedRoot: null });
    await expect(v.verify(statement, 'provenance')).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      v.verify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json' }, 'provenance'),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      v.verify({ mediaType: 'application/vnd.dev.sigstore.bundle+json;version=9.9' }, 'provenance'),
    ).rejects.toThrow(/unsupported Sigstore bundle media type/);
    await expect(
      v.verify({ payloadType: 'x', payload: 'e30=', signatures: [] }, 'provenance'),
    ).rejects.toThrow(/without signatures/);
  });
});

describe('signed evidence: keyless under a generated trusted root', () => {
  const acme = signer({
    name: 'acme-ci',
    keyless: { issuer: GITHUB_ISSUER, subject: 'https://github.com/acme/**' },
  });

  it('verifies a v0.3 bundle (GitHub attestations / cosign --new-bundle-format) from an allowed identity', async () => {
    const bundle = await keylessBundleV03(
      sigstore,
      statement,
      'https://github.com/acme/api/.github/workflows/release.yml@refs/heads/main',
    );
    expect(signedForm(bundle)).toBe('bundle');
    const v = createEvidenceVerifier({ signers: [acme], trustedRoot: sigstore.trustedRoot });
    const r = await v.verify(bundle, 'vex');
    expectVerified(r);
    expect(r.signer).toEqual({
      name: 'acme-ci',
      method: 'keyless',
      identity: 'https://github.com/acme/api/.github/workflows/release.yml@refs/heads/main',
      issuer: GITHUB_ISSUER,
    });
  });

  it('keeps, unverified, a bundle from an identity or issuer the policy does not name', async () => {
    const v = createEvidenceVerifier({ signers: [acme], trustedRoot: sigstore.trustedRoot });
    const stranger = await keylessBundleV03(
      sigstore,
      statement,
      'https://github.com/mallory/api/.github/workflows/release.yml@refs/heads/main',
    );
    const r = await v.verify(stranger, 'provenance');
    expect(r.verified).toBe(false);
    if (!r.verified) {
      expect(r.claimedIdentity).toContain('https://github.com/mallory/api');
      expect(r.reason).toMatch(/which no policy signer trusts for provenance/);
    }
    const otherIssuer = await keylessBundleV03(
      sigstore,
      statement,
      'https://github.com/acme/api/x',
      {
        issuer: 'https://accounts.google.com',
      },
    );
    expect((await v.verify(otherIssuer, 'provenance')).verified).toBe(false);
  });

  it('does not verify a bundle whose certificate comes from another CA, or with a forged log entry', async () => {
    const elsewhere = await createTestSigstore();
    const foreign = await keylessBundleV03(elsewhere, statement, 'https://github.com/acme/api/x');
    const v = createEvidenceVerifier({ signers: [acme], trustedRoot: sigstore.trustedRoot });
    const r = await v.verify(foreign, 'provenance');
    expect(r.verified).toBe(false);
    if (!r.verified) expect(r.reason).toMatch(/signature does not verify/);

    const genuine = await keylessBundleV03(sigstore, statement, 'https://github.com/acme/api/x');
    const entry = genuine.verificationMaterial.tlogEntries[0] as Record<string, unknown>;
    const forged = {
      ...genuine,
      verificationMaterial: {
        ...genuine.verificationMaterial,
        tlogEntries: [{ ...entry, integratedTime: String(Number(entry.integratedTime) - 3600) }],
      },
    };
    expect((await v.verify(forged, 'provenance')).verified).toBe(false);
  });

  it('does not verify a bundle signed before or after its certificate was valid', async () => {
    const v = createEvidenceVerifier({ signers: [acme], trustedRoot: sigstore.trustedRoot });
    const late = await keylessBundleV03(sigstore, statement, 'https://github.com/acme/api/x', {
      integratedTime: Math.floor(Date.now() / 1000) + 3 * 86_400,
    });
    expect((await v.verify(late, 'provenance')).verified).toBe(false);
  });

  it('leaves keyless bundles unverified when no trusted root is configured', async () => {
    const bundle = await keylessBundleV03(sigstore, statement, 'https://github.com/acme/api/x');
    const r = await createEvidenceVerifier({ signers: [acme], trustedRoot: null }).verify(
      bundle,
      'provenance',
    );
    expect(r.verified).toBe(false);
    if (!r.verified) expect(r.reason).toMatch(/CLEARANCE_TRUSTED_ROOT_FILE/);
  });

  it('reads a bundle with exactly the structure slsa-github-generator v2 writes, re-signed by the generated root', async () => {
    const original = fixture<Record<string, unknown>>(GENERATOR_BUNDLE);
    const generator = signer({
      name: 'slsa-github-generator',
      keyless: {
        issuer: GITHUB_ISSUER,
        subject:
          'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/*@refs/tags/v2.*',
      },
      evidence: ['provenance'],
    });
    const v = createEvidenceVerifier({ signers: [generator], trustedRoot: sigstore.trustedRoot });

    // As published, it is signed by the public-good Sigstore: not under this root.
    const asPublished = await v.verify(original, 'provenance');
    expect(asPublished.verified).toBe(false);
    expect(asPublished.mediaType).toBe('application/vnd.dev.sigstore.bundle+json;version=0.2');

    const resigned = await resignSlsaGeneratorBundle(sigstore, original, GENERATOR_SAN);
    expect(structure(resigned)).toEqual(structure(original));
    const r = await v.verify(resigned, 'provenance');
    expectVerified(r);
    expect(r.signer.identity).toBe(GENERATOR_SAN);
    const read = readProvenance(JSON.parse(r.payload.toString('utf8')));
    expect(read.provenance.builderId).toBe(
      'https://github.com/slsa-framework/example-trw/.github/workflows/builder_high-perms_slsa3.yml@refs/tags/v2.0.0',
    );
    expect(read.subjects[0]?.digest).toBe(
      'sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
    );
  });
});

/** Every field path of a JSON document, sorted (values ignored). */
function structure(doc: unknown): string[] {
  const out = new Set<string>();
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) {
      out.add(`${path}[]`);
      for (const x of v) walk(x, `${path}[]`);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
    } else out.add(path);
  };
  walk(doc, '');
  return [...out].sort();
}
