// Verifies signed evidence — Sigstore bundles (v0.1–v0.3) and bare DSSE envelopes — against the policy's signers with sigstore-js.

import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ClearanceError, InvalidInputError } from '../errors.js';
import { compileGlob } from '../policy/glob.js';
import type { EvidenceKind, TrustSigner } from '../policy/policy.js';

/** Largest envelope or bundle accepted, before decoding: real provenance is tens of KB. */
export const MAX_SIGNED_EVIDENCE_CHARS = 4 * 1024 * 1024;

/** A Sigstore bundle as JSON: told apart from a bare envelope by its media type. */
const BUNDLE_MEDIA_TYPE =
  /^application\/vnd\.dev\.sigstore\.bundle(\.v0\.3\+json|\+json;version=0\.[123])$/;

const BareEnvelope = z.object({
  payloadType: z.string().min(1).max(200),
  payload: z.string().min(1).max(MAX_SIGNED_EVIDENCE_CHARS),
  signatures: z
    .array(z.object({ keyid: z.string().max(2000).nullish(), sig: z.string().min(1).max(100_000) }))
    .min(1, 'an envelope without signatures cannot be verified')
    .max(20),
});

/** The signer a verification found, as recorded with the evidence. */
export interface VerifiedSigner {
  /** The policy signer's name. */
  name: string;
  method: 'key' | 'keyless';
  /** Keyless: the certificate subject (SAN); key: the signer name. */
  identity: string;
  /** Keyless: the OIDC issuer in the certificate. */
  issuer: string | null;
}

/** What a signed envelope said and whether anyone the policy trusts said it. */
export type SignedEvidence = {
  form: 'bundle' | 'dsse';
  /** The bundle's media type; null for a bare envelope. */
  mediaType: string | null;
  payloadType: string;
  /** The signed payload (an in-toto Statement for attestations), as signed. */
  payload: Buffer;
} & (
  | { verified: true; signer: VerifiedSigner }
  | {
      verified: false;
      /** Why it does not count: shown among the verdict's reasons. */
      reason: string;
      /** Keyless: who signed, if the certificate said (a claim, not trusted). */
      claimedIdentity: string | null;
    }
);

/** Whether a JSON value looks like a Sigstore bundle or a bare DSSE envelope (and so must be verified). */
export function signedForm(input: unknown): 'bundle' | 'dsse' | null {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return null;
  const o = input as Record<string, unknown>;
  if (
    typeof o.mediaType === 'string' &&
    o.mediaType.startsWith('application/vnd.dev.sigstore.bundle')
  )
    return 'bundle';
  if (typeof o.payloadType === 'string' && typeof o.payload === 'string') return 'dsse';
  return null;
}

/** A Sigstore trusted root (trusted_root.json, as `cosign trusted-root create` or TUF serve it), parsed. */
export type TrustedRootJson = Record<string, unknown>;

/** Reads the trusted root file named by the configuration; a missing or unreadable file is a configuration error. */
export async function loadTrustedRoot(path: string): Promise<TrustedRootJson> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ClearanceError('invalid-config', `cannot read the trusted root ${path}`, {
      cause: err,
    });
  }
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new Error('not an object');
    return json as TrustedRootJson;
  } catch (err) {
    throw new ClearanceError('invalid-config', `the trusted root ${path} is not a JSON object`, {
      cause: err,
    });
  }
}

export interface EvidenceVerifierOptions {
  /** The policy's signers, most trusted first. */
  signers: readonly TrustSigner[];
  /** Needed for keyless signers; without it a certificate-signed bundle is unverified. */
  trustedRoot: TrustedRootJson | null;
}

export interface EvidenceVerifier {
  /** Verifies a bundle or envelope for `kind`; InvalidInputError when it is neither. */
  verify(input: unknown, kind: EvidenceKind): Promise<SignedEvidence>;
}

type Sigstore = {
  verify: typeof import('@sigstore/verify');
  bundle: typeof import('@sigstore/bundle');
  specs: typeof import('@sigstore/protobuf-specs');
  crypto: typeof import('node:crypto');
};
let sigstore: Promise<Sigstore> | undefined;
/** sigstore-js is loaded on the first signed upload, so functions that never verify never load it. */
function loadSigstore(): Promise<Sigstore> {
  sigstore ??= (async () => ({
    verify: await import('@sigstore/verify'),
    bundle: await import('@sigstore/bundle'),
    specs: await import('@sigstore/protobuf-specs'),
    crypto: await import('node:crypto'),
  }))();
  return sigstore;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export function createEvidenceVerifier(options: EvidenceVerifierOptions): EvidenceVerifier {
  return {
    async verify(input, kind) {
      const s = await loadSigstore();
      const form = signedForm(input);
      if (form === null) throw new InvalidInputError('not a Sigstore bundle or a DSSE envelope');
      const bundles = form === 'bundle' ? [parseBundle(s, input)] : envelopeBundles(s, input);
      const first = bundles[0] as import('@sigstore/bundle').Bundle;
      if (first.content.$case !== 'dsseEnvelope')
        throw new InvalidInputError(
          'the bundle carries a message signature, not an attestation (sign with `cosign attest`)',
        );
      const env = first.content.dsseEnvelope;
      const base = {
        form,
        mediaType: form === 'bundle' ? first.mediaType : null,
        payloadType: env.payloadType,
        payload: Buffer.from(env.payload),
      } as const;
      const allowed = options.signers.filter((x) => (x.evidence as string[]).includes(kind));
      const material = first.verificationMaterial.content;
      if (material.$case === 'publicKey') {
        const reasons: string[] = [];
        for (const b of bundles) {
          for (const signer of allowed) {
            if (!signer.publicKey) continue;
            try {
              verifyWithKey(s, b, s.crypto.createPublicKey(signer.publicKey));
              return {
                ...base,
                verified: true,
                signer: { name: signer.name, method: 'key', identity: signer.name, issuer: null },
              };
            } catch (err) {
              reasons.push(describe(err));
            }
          }
        }
        const keys = allowed.filter((x) => x.publicKey).length;
        return {
          ...base,
          verified: false,
          claimedIdentity: null,
          reason:
            keys === 0
              ? `no signer in the policy may sign ${kind} with a key`
              : `not signed by any of the ${keys} key(s) the policy trusts for ${kind}`,
        };
      }
      return verifyKeyless(s, first, allowed, kind, options.trustedRoot, base);
    },
  };
}

function parseBundle(s: Sigstore, input: unknown): import('@sigstore/bundle').Bundle {
  const mediaType = (input as { mediaType: string }).mediaType;
  if (!BUNDLE_MEDIA_TYPE.test(mediaType))
    throw new InvalidInputError(
      `unsupported Sigstore bundle media type ${JSON.stringify(mediaType.slice(0, 100))} (v0.1, v0.2 or v0.3)`,
    );
  if (JSON.stringify(input).length > MAX_SIGNED_EVIDENCE_CHARS)
    throw new InvalidInputError(
      `the bundle is larger than ${MAX_SIGNED_EVIDENCE_CHARS} characters`,
    );
  try {
    return s.bundle.bundleFromJSON(input);
  } catch (err) {
    throw new InvalidInputError(`invalid Sigstore bundle: ${describe(err)}`, { cause: err });
  }
}

/** A bare envelope as one public-key bundle per signature, so any one trusted signature counts. */
function envelopeBundles(s: Sigstore, input: unknown): import('@sigstore/bundle').Bundle[] {
  const parsed = BareEnvelope.safeParse(input);
  if (!parsed.success)
    throw new InvalidInputError(
      `invalid DSSE envelope: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const e = parsed.data;
  const payload = Buffer.from(e.payload, 'base64');
  return e.signatures.map((sig) =>
    s.bundle.toDSSEBundle({
      artifact: payload,
      artifactType: e.payloadType,
      signature: Buffer.from(sig.sig, 'base64'),
      keyHint: sig.keyid ?? '',
    }),
  );
}

/**
 * A key named in the policy is trusted on its own: its signature is what counts, so transparency
 * log entries and timestamps the bundle may carry are neither required nor consulted.
 */
function verifyWithKey(s: Sigstore, bundle: import('@sigstore/bundle').Bundle, key: KeyObject) {
  const entity = { ...s.verify.toSignedEntity(bundle), tlogEntries: [], timestamps: [] };
  const trust = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: () => ({ publicKey: key, validFor: () => true }),
  };
  new s.verify.Verifier(trust, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  }).verify(entity);
}

type Base = Pick<SignedEvidence, 'form' | 'mediaType' | 'payloadType' | 'payload'>;

/**
 * Keyless: the certificate must chain to a Fulcio CA of the trusted root at a time a transparency
 * log of that root vouches for (one verified tlog entry and timestamp), carry an SCT when the root
 * names CT logs, and name an issuer and subject a policy signer accepts.
 */
function verifyKeyless(
  s: Sigstore,
  bundle: import('@sigstore/bundle').Bundle,
  allowed: readonly TrustSigner[],
  kind: EvidenceKind,
  trustedRoot: TrustedRootJson | null,
  base: Base,
): SignedEvidence {
  const keyless = allowed.filter((x) => x.keyless);
  const unverified = (reason: string, claimedIdentity: string | null): SignedEvidence => ({
    ...base,
    verified: false,
    reason,
    claimedIdentity,
  });
  if (keyless.length === 0)
    return unverified(`no keyless signer in the policy may sign ${kind}`, null);
  if (!trustedRoot)
    return unverified('keyless signatures need a trusted root (CLEARANCE_TRUSTED_ROOT_FILE)', null);
  let root: import('@sigstore/protobuf-specs').TrustedRoot;
  try {
    root = s.specs.TrustedRoot.fromJSON(trustedRoot);
  } catch (err) {
    throw new ClearanceError('invalid-config', 'the trusted root does not parse', { cause: err });
  }
  let identity: { subjectAlternativeName?: string; extensions?: { issuer?: string } } | undefined;
  try {
    const verifier = new s.verify.Verifier(s.verify.toTrustMaterial(root), {
      tlogThreshold: 1,
      ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0,
      timestampThreshold: 1,
    });
    identity = verifier.verify(s.verify.toSignedEntity(bundle)).identity;
  } catch (err) {
    return unverified(`signature does not verify: ${describe(err)}`, null);
  }
  const subject = identity?.subjectAlternativeName ?? null;
  const issuer = identity?.extensions?.issuer ?? null;
  const claimed = subject ? `${subject} (issuer ${issuer ?? 'none'})` : null;
  if (!subject || !issuer) return unverified('the certificate names no subject or issuer', claimed);
  const signer = keyless.find(
    (x) => x.keyless?.issuer === issuer && compileGlob(x.keyless.subject).test(subject),
  );
  if (!signer)
    return unverified(`signed by ${claimed}, which no policy signer trusts for ${kind}`, claimed);
  return {
    ...base,
    verified: true,
    signer: { name: signer.name, method: 'keyless', identity: subject, issuer },
  };
}
