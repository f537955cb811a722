// What a CI upload is and how far to trust it: signed provenance or VEX (verified), unsigned claims (kept, not obeyed), or a scanner report.
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../errors.js';
import type { VexStatement } from '../findings/finding.js';
import { parseOpenVex } from '../findings/openvex.js';
import { type ParsedReport, parseReport } from '../findings/reports.js';
import type { UnverifiedEvidence } from '../image-record.js';
import { parseJsonBytes } from '../json-bytes.js';
import type { EvidenceKind } from '../policy/policy.js';
import {
  IN_TOTO_PAYLOAD_TYPE,
  type ProvenanceResult,
  readProvenance,
} from '../provenance/provenance.js';
import type { EvidenceVerifier, SignedEvidence, VerifiedSigner } from './signed-evidence.js';
import { signedForm } from './signed-evidence.js';

/** How an upload's claim stands: verified by a policy signer, or not (with why). */
export type UploadTrust =
  | { verified: true; signer: VerifiedSigner }
  | { verified: false; reason: string; claimedIdentity: string | null };

export type Upload =
  | { kind: 'provenance'; trust: UploadTrust; provenance: ProvenanceResult }
  | { kind: 'vex'; trust: UploadTrust; statements: VexStatement[]; subjects: string[] }
  | { kind: 'report'; report: ParsedReport };

const isSlsaType = (t: unknown) =>
  typeof t === 'string' && t.startsWith('https://slsa.dev/provenance/');
const isOpenVexType = (t: unknown) =>
  typeof t === 'string' && t.startsWith('https://openvex.dev/ns');

function record(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : null;
}

const UNSIGNED: UploadTrust = {
  verified: false,
  reason: 'not signed: upload a Sigstore bundle or DSSE envelope signed by a policy signer',
  claimedIdentity: null,
};

/** The statement an unsigned upload carries: a bare in-toto Statement, or an envelope read without verifying it. */
function unsignedStatement(body: Record<string, unknown>): Record<string, unknown> | null {
  if ('_type' in body || 'predicateType' in body) return body;
  return null;
}

function fromStatement(
  statement: Record<string, unknown>,
  trust: UploadTrust,
  what: string,
): Upload | null {
  if (isSlsaType(statement.predicateType))
    return { kind: 'provenance', trust, provenance: readProvenance(statement) };
  if (isOpenVexType(statement.predicateType)) {
    const { vex, subjects } = parseOpenVex(statement.predicate);
    return { kind: 'vex', trust, statements: vex, subjects };
  }
  if (trust.verified)
    throw new InvalidInputError(
      `the signed ${what} carries predicate ${JSON.stringify(String(statement.predicateType).slice(0, 100))}: only SLSA provenance and OpenVEX are accepted signed`,
    );
  return null;
}

/** Which evidence a signed payload is, read before verifying so the right signers are asked. */
function kindOfPayload(payload: Buffer): EvidenceKind {
  try {
    const st = record(parseJsonBytes(payload, 'payload'));
    if (st && isOpenVexType(st.predicateType)) return 'vex';
    if (st && isOpenVexType(st['@context'])) return 'vex';
  } catch {
    // not JSON: verified (or not) as provenance, then refused when read
  }
  return 'provenance';
}

function payloadOf(input: Record<string, unknown>): Buffer {
  const env = record(input.dsseEnvelope) ?? input;
  return typeof env.payload === 'string' ? Buffer.from(env.payload, 'base64') : Buffer.alloc(0);
}

/**
 * Classifies an upload. Bundles and envelopes are verified against the policy's signers; a
 * verified payload is read as provenance or OpenVEX. Unsigned provenance and VEX are read too, so
 * they can be kept as unverified evidence. Everything else is a scanner report.
 */
export async function readUpload(body: unknown, verifier: EvidenceVerifier): Promise<Upload> {
  const o = record(body);
  if (o && signedForm(o) !== null) {
    const kind = kindOfPayload(payloadOf(o));
    const checked: SignedEvidence = await verifier.verify(o, kind);
    if (checked.payloadType !== IN_TOTO_PAYLOAD_TYPE)
      throw new InvalidInputError(
        `signed payload type ${JSON.stringify(checked.payloadType.slice(0, 100))} is not ${IN_TOTO_PAYLOAD_TYPE}`,
      );
    const statement = record(parseJsonBytes(checked.payload, 'the signed payload'));
    if (!statement) throw new InvalidInputError('the signed payload is not an in-toto Statement');
    const trust: UploadTrust = checked.verified
      ? { verified: true, signer: checked.signer }
      : { verified: false, reason: checked.reason, claimedIdentity: checked.claimedIdentity };
    const read = fromStatement(statement, trust, checked.form === 'bundle' ? 'bundle' : 'envelope');
    if (read) return read;
    // A bundle is read as provenance whatever it carries, so its errors are provenance errors (issue 14).
    if (checked.form === 'bundle')
      return { kind: 'provenance', trust, provenance: readProvenance(o) };
    // An unsigned-looking statement in an envelope nobody trusts that is a vuln report: read as a report.
    return { kind: 'report', report: parseReport(statement) };
  }
  if (o) {
    const st = unsignedStatement(o);
    if (st) {
      const read = fromStatement(st, UNSIGNED, 'statement');
      if (read) return read;
    }
    if (isOpenVexType(o['@context'])) {
      const { vex, subjects } = parseOpenVex(o);
      return { kind: 'vex', trust: UNSIGNED, statements: vex, subjects };
    }
  }
  return { kind: 'report', report: parseReport(body) };
}

/** VEX statements as stored: the verifying signer, or none, and the channel they came through. */
export function attributeVex(
  statements: readonly VexStatement[],
  trust: UploadTrust,
  source: string,
): VexStatement[] {
  return statements.map((s) => ({
    ...s,
    signer: trust.verified ? trust.signer.name : null,
    source,
  }));
}

/** The unverified-evidence entry kept on an image for an upload that did not verify. */
export function unverifiedEntry(
  kind: EvidenceKind,
  trust: Extract<UploadTrust, { verified: false }>,
  claim: string,
  uploader: string,
  receivedAt: Date,
): UnverifiedEvidence {
  return {
    kind,
    reason: trust.reason.slice(0, 500),
    claim: claim.slice(0, 500),
    claimedIdentity: trust.claimedIdentity?.slice(0, 500) ?? null,
    uploader,
    receivedAt: receivedAt.toISOString(),
  };
}

/** What a provenance upload claims, in a few words. */
export function provenanceClaim(p: ProvenanceResult): string {
  const parts = [
    p.provenance.builderId ? `builder ${p.provenance.builderId}` : 'no builder',
    p.provenance.sourceRepository ? `source ${p.provenance.sourceRepository}` : null,
  ].filter(Boolean);
  return parts.join(', ');
}

/** Stable id of an upload's content (idempotent re-uploads). */
export function contentId(raw: string): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 40);
}
