import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  attestationOccurrence,
  binauthzPayload,
  imageResourceUri,
  verifyBinauthzSignature,
} from '../../../shared/attestations/binauthz.js';
import { localSigner } from '../../../shared/attestations/signer.js';
import { InvalidInputError } from '../../../shared/errors.js';
import { FIXTURES } from '../real-world-fixtures.js';
import { opensslVerify } from './openssl.js';

const DIGEST = 'sha256:8c733d1c02c464f484bccd5fda4bc560040b80e105e431f17e1b1c3fce9b7d27';

function p256Signer() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return localSigner({ pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
}

describe('binauthzPayload', () => {
  /*
   * gcloud's MakeSignaturePayload (googlecloudsdk/command_lib/container/binauthz/util.py) does
   *   json.dumps(payload, ensure_ascii=True, indent=2, separators=(',', ': '), sort_keys=True)
   * and appends one "\n". So: keys sorted (critical > identity, image, type), two-space indent,
   * ": " after keys, "," at line ends with no trailing space, one newline at the end.
   */
  it('writes the exact bytes gcloud writes (hand-written expectation)', () => {
    const expected =
      '{\n' +
      '  "critical": {\n' +
      '    "identity": {\n' +
      '      "docker-reference": "gcr.io/test/image/we/are/testing"\n' +
      '    },\n' +
      '    "image": {\n' +
      `      "docker-manifest-digest": "${DIGEST}"\n` +
      '    },\n' +
      '    "type": "Google cloud binauthz container signature"\n' +
      '  }\n' +
      '}\n';
    const payload = binauthzPayload('gcr.io', 'test/image/we/are/testing', DIGEST);
    expect(payload.toString('utf8')).toBe(expected);
    expect(payload.at(-1)).toBe(0x0a);
    expect(payload.at(-2)).toBe(0x7d);
  });

  it('matches byte for byte the payload grafeas/voucher expects from create-signature-payload', async () => {
    // Real fixture: voucher's expected serialisation, same as gcloud's (SOURCES.md).
    const real = await readFile(`${FIXTURES}/binauthz/binauthz-simple-signing-payload.json`);
    expect(binauthzPayload('gcr.io', 'test/image/we/are/testing', DIGEST).equals(real)).toBe(true);
  });

  it('carries the same fields as the kritis sample, whose hand-indented "type" is not gcloud output', async () => {
    // kritis' test literal indents "type" by 4 spaces: equal as JSON, deliberately not as bytes.
    const real = await readFile(
      `${FIXTURES}/binauthz/binauthz-simple-signing-payload-hello-app.json`,
    );
    const ours = binauthzPayload(
      'gcr.io',
      'google-samples/hello-app',
      'sha256:bedb3feb23e81d162e33976fd7b245adff00379f4755c0213e84405e5b1e0988',
    );
    expect(JSON.parse(ours.toString())).toEqual(JSON.parse(real.toString()));
    expect(ours.equals(real)).toBe(false);
  });

  it('keeps tag and digest out of docker-reference and keeps registry ports', () => {
    const payload = JSON.parse(
      binauthzPayload('localhost:5000', 'team/app', DIGEST).toString(),
    ) as { critical: { identity: { 'docker-reference': string } } };
    expect(payload.critical.identity['docker-reference']).toBe('localhost:5000/team/app');
  });

  it('rejects a placeholder where the repository belongs, with the reason (no fix-up)', async () => {
    // Real fixture from mchmarny/artifact-events: `$PROJECT` was left in by its author.
    const msg = JSON.parse(
      await readFile(`${FIXTURES}/gcr/gcr-pull-insert-digest-tag.decoded.json`, 'utf8'),
    ) as { message: { data: { digest: string } } };
    const [name, digest] = msg.message.data.digest.split('@');
    const slash = name.indexOf('/');
    const registry = name.slice(0, slash);
    const repository = name.slice(slash + 1);
    expect(repository).toBe('$PROJECT/repo/image');
    expect(() => binauthzPayload(registry, repository, digest)).toThrow(InvalidInputError);
    expect(() => binauthzPayload(registry, repository, digest)).toThrow(
      /repository: not a repository path.*\$PROJECT\/repo\/image/,
    );
  });

  it('rejects bad registries, upper-case paths and non-sha256 digests', () => {
    expect(() => binauthzPayload('$' + '{ZONE}-docker.pkg.dev', 'p/r/i', DIGEST)).toThrow(
      /registry/,
    );
    expect(() => binauthzPayload('gcr.io', 'Team/App', DIGEST)).toThrow(/repository/);
    expect(() => binauthzPayload('gcr.io', 'team/app', 'sha512:abcd')).toThrow(/digest/);
    expect(() => binauthzPayload('gcr.io', 'team/app:1.0', DIGEST)).toThrow(/repository/);
  });
});

describe('signature over the payload', () => {
  it('verifies with `openssl dgst -sha256 -verify pub.pem -signature sig.der payload.json`', async () => {
    const signer = p256Signer();
    const payload = binauthzPayload('us-docker.pkg.dev', 'proj/repo/img', DIGEST);
    const signature = await signer.sign(payload);
    const ok = await opensslVerify(await signer.publicKeyPem(), signature, payload);
    expect(ok.stdout.trim()).toBe('Verified OK');
    expect(ok.code).toBe(0);
    expect(verifyBinauthzSignature(payload, signature, await signer.publicKeyPem())).toBe(true);
  });

  it('fails openssl verification for another image', async () => {
    const signer = p256Signer();
    const signature = await signer.sign(binauthzPayload('gcr.io', 'a/b', DIGEST));
    const other = binauthzPayload('gcr.io', 'a/c', DIGEST);
    const bad = await opensslVerify(await signer.publicKeyPem(), signature, other);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('Verification failure');
  });
});

describe('attestationOccurrence', () => {
  it('builds the Grafeas ATTESTATION body with Buffers for bytes fields', () => {
    const payload = binauthzPayload('gcr.io', 'a/b', DIGEST);
    const resourceUri = imageResourceUri('gcr.io', 'a/b', DIGEST);
    expect(resourceUri).toBe(`https://gcr.io/a/b@${DIGEST}`);
    const occ = attestationOccurrence({
      noteName: 'projects/p/notes/clearance',
      resourceUri,
      payload,
      signature: Buffer.from([1, 2, 3]),
      keyId:
        '//cloudkms.googleapis.com/v1/projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
    });
    expect(occ).toEqual({
      resourceUri,
      noteName: 'projects/p/notes/clearance',
      attestation: {
        serializedPayload: payload,
        signatures: [
          {
            signature: Buffer.from([1, 2, 3]),
            publicKeyId:
              '//cloudkms.googleapis.com/v1/projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
          },
        ],
      },
    });
    expect(Buffer.isBuffer(occ.attestation.serializedPayload)).toBe(true);
  });
});
