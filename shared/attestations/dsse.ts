// DSSE envelopes and the in-toto SLSA verification summary they carry, for cosign / policy-controller / Kyverno users.
import { createPublicKey, verify } from 'node:crypto';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { IN_TOTO_PAYLOAD_TYPE } from '../provenance/provenance.js';
import type { Signer } from './signer.js';

export { IN_TOTO_PAYLOAD_TYPE };

export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const SLSA_VERIFICATION_SUMMARY_V1 = 'https://slsa.dev/verification_summary/v1';

export const DsseSignature = z.object({
  keyid: z.string().default(''),
  sig: z.string().min(1),
});
export type DsseSignature = z.infer<typeof DsseSignature>;

export const DsseEnvelope = z.object({
  payloadType: z.string().min(1),
  /** Base64 of the payload bytes. */
  payload: z.string(),
  signatures: z.array(DsseSignature).min(1),
});
export type DsseEnvelope = z.infer<typeof DsseEnvelope>;

/**
 * Pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in
 * bytes as ASCII decimal. This, not the payload, is what gets signed.
 */
export function pae(payloadType: string, body: Buffer | string): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'ascii'),
    type,
    Buffer.from(` ${bytes.length} `, 'ascii'),
    bytes,
  ]);
}

export async function dsseSign(
  signer: Signer,
  payloadType: string,
  payload: Buffer | string,
): Promise<DsseEnvelope> {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const sig = await signer.sign(pae(payloadType, bytes));
  return {
    payloadType,
    payload: bytes.toString('base64'),
    signatures: [{ keyid: signer.keyId, sig: sig.toString('base64') }],
  };
}

/** Parses an envelope from outside (JSON text or object); bad shapes are InvalidInputError. */
export function parseDsseEnvelope(input: unknown): DsseEnvelope {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new InvalidInputError('DSSE envelope is not JSON', { cause: err });
    }
  }
  const parsed = DsseEnvelope.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new InvalidInputError(
      `invalid DSSE envelope: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { details: { issues } },
    );
  }
  return parsed.data;
}

/**
 * True when at least one signature verifies over PAE(payloadType, payload) with the key. DSSE
 * accepts standard and URL-safe base64; Node's decoder reads both.
 */
export function dsseVerify(envelope: unknown, publicKeyPem: string): boolean {
  const env = parseDsseEnvelope(envelope);
  const key = createPublicKey(publicKeyPem);
  const message = pae(env.payloadType, Buffer.from(env.payload, 'base64'));
  return env.signatures.some((s) =>
    verify('sha256', message, { key, dsaEncoding: 'der' }, Buffer.from(s.sig, 'base64')),
  );
}

export const VERIFICATION_RESULTS = ['PASSED', 'FAILED'] as const;
export type VerificationResult = (typeof VERIFICATION_RESULTS)[number];

export const VerificationSummaryInput = z.object({
  /** REGISTRY/REPO, without tag or digest. */
  imageName: z.string().min(1),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>'),
  verifierId: z.string().min(1),
  timeVerified: z.string().min(1),
  /** `sha256:<hex>`, `<alg>:<hex>` or bare 64-hex (taken as sha256). */
  policyHash: z.string().regex(/^(?:[a-z0-9]+:)?[a-f0-9]+$/, 'must be [alg:]hex'),
  result: z.enum(VERIFICATION_RESULTS),
  levels: z.array(z.string().min(1)),
  policyUri: z.string().optional(),
  /** Defaults to `https://REGISTRY/REPO@sha256:…`, the URI Container Analysis uses. */
  resourceUri: z.string().optional(),
});
export type VerificationSummaryInput = z.input<typeof VerificationSummaryInput>;

export interface InTotoStatement<P> {
  _type: typeof IN_TOTO_STATEMENT_V1;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: P;
}

export interface VerificationSummaryPredicate {
  verifier: { id: string };
  timeVerified: string;
  resourceUri: string;
  policy: { uri?: string; digest: Record<string, string> };
  verificationResult: VerificationResult;
  verifiedLevels: string[];
}

function policyDigest(policyHash: string): Record<string, string> {
  const i = policyHash.indexOf(':');
  return i < 0 ? { sha256: policyHash } : { [policyHash.slice(0, i)]: policyHash.slice(i + 1) };
}

/** An in-toto Statement v1 about the image digest with a SLSA verification summary (VSA v1) predicate. */
export function verificationSummaryStatement(
  input: VerificationSummaryInput,
): InTotoStatement<VerificationSummaryPredicate> {
  const parsed = VerificationSummaryInput.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new InvalidInputError(
      `invalid verification summary: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { details: { issues } },
    );
  }
  const v = parsed.data;
  const policy: VerificationSummaryPredicate['policy'] = { digest: policyDigest(v.policyHash) };
  if (v.policyUri !== undefined) policy.uri = v.policyUri;
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name: v.imageName, digest: { sha256: v.digest.slice('sha256:'.length) } }],
    predicateType: SLSA_VERIFICATION_SUMMARY_V1,
    predicate: {
      verifier: { id: v.verifierId },
      timeVerified: v.timeVerified,
      resourceUri: v.resourceUri ?? `https://${v.imageName}@${v.digest}`,
      policy,
      verificationResult: v.result,
      verifiedLevels: v.levels,
    },
  };
}
