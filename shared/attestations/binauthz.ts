// Binary Authorization attestations: the signed payload, byte for byte as gcloud writes it, and the Grafeas occurrence body.
import { createPublicKey, verify } from 'node:crypto';
import { InvalidInputError } from '../errors.js';

export const BINAUTHZ_SIGNATURE_TYPE = 'Google cloud binauthz container signature';

/** Host with optional port, as in the distribution reference grammar (domain-component[.…][:port]). */
const REGISTRY =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;
/** path-component ('/' path-component)*, lower case, separators `.`, `_`, `__`, `-+`. */
const REPOSITORY =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
/** Binary Authorization only accepts sha256 manifest digests. */
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Checks an image name before anything is signed for it. Placeholders left in payloads
 * (`$PROJECT`, `${ZONE}`) fail here with the reason instead of being signed or "fixed up".
 */
export function assertImage(registry: string, repository: string, digest: string): void {
  const issues: { path: string; message: string }[] = [];
  if (!REGISTRY.test(registry)) {
    issues.push({ path: 'registry', message: `not a registry host: ${JSON.stringify(registry)}` });
  }
  if (!REPOSITORY.test(repository)) {
    issues.push({
      path: 'repository',
      message: `not a repository path (lower-case components separated by "/"): ${JSON.stringify(repository)}`,
    });
  }
  if (!DIGEST.test(digest)) {
    issues.push({
      path: 'digest',
      message: `not a sha256 manifest digest: ${JSON.stringify(digest)}`,
    });
  }
  if (issues.length > 0) {
    throw new InvalidInputError(
      `cannot attest ${registry}/${repository}@${digest}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { details: { issues } },
    );
  }
}

/** `https://REGISTRY/REPO@sha256:…`, the resource URI Container Analysis keys occurrences on. */
export function imageResourceUri(registry: string, repository: string, digest: string): string {
  assertImage(registry, repository, digest);
  return `https://${registry}/${repository}@${digest}`;
}

/** Python's `json.dumps(ensure_ascii=True)`: every character above U+007F becomes `\uXXXX`. */
function escapeNonAscii(json: string): string {
  return json.replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * The payload `gcloud container binauthz create-signature-payload` writes. gcloud builds it with
 * `json.dumps(d, ensure_ascii=True, indent=2, separators=(',', ': '), sort_keys=True)` and appends
 * one "\n"; `JSON.stringify(sorted, null, 2)` yields the same bytes for these string-only objects
 * (same indentation, `": "` after keys, `,` at line ends, no trailing spaces).
 */
export function binauthzPayload(registry: string, repository: string, digest: string): Buffer {
  assertImage(registry, repository, digest);
  const payload = {
    critical: {
      identity: { 'docker-reference': `${registry}/${repository}` },
      image: { 'docker-manifest-digest': digest },
      type: BINAUTHZ_SIGNATURE_TYPE,
    },
  };
  return Buffer.from(`${escapeNonAscii(JSON.stringify(sortKeys(payload), null, 2))}\n`, 'utf8');
}

/** Grafeas `Occurrence` body for an ATTESTATION on the attestor's note; bytes fields as Buffers. */
export interface AttestationOccurrence {
  resourceUri: string;
  noteName: string;
  attestation: {
    serializedPayload: Buffer;
    signatures: { signature: Buffer; publicKeyId: string }[];
  };
}

export function attestationOccurrence(input: {
  noteName: string;
  resourceUri: string;
  payload: Buffer;
  signature: Buffer;
  keyId: string;
}): AttestationOccurrence {
  return {
    resourceUri: input.resourceUri,
    noteName: input.noteName,
    attestation: {
      serializedPayload: input.payload,
      signatures: [{ signature: input.signature, publicKeyId: input.keyId }],
    },
  };
}

/** Verifies a DER ECDSA P-256 SHA-256 signature over a payload, as Binary Authorization does. */
export function verifyBinauthzSignature(
  payload: Buffer,
  signature: Buffer,
  publicKeyPem: string,
): boolean {
  return verify(
    'sha256',
    payload,
    { key: createPublicKey(publicKeyPem), dsaEncoding: 'der' },
    signature,
  );
}
