// The deploy-time decision: reads a stored verdict and applies the admission rules, failing closed.
import { z } from 'zod';
import type { Attestation, ImageRecord } from '../image-record.js';
import type { Policy } from '../policy/policy.js';
import { DRYRUN_PREFIX, Mode, type Reason } from '../verdict.js';

/**
 * The parts of the policy the deploy check needs, stored at `policies/admission` when a policy is
 * applied, so the check reads one small document and never loads the policy engine (yaml).
 */
export const AdmissionSettings = z.object({
  unknownImage: z.enum(['deny', 'allow']).default('deny'),
  requireAttestation: z.boolean().default(true),
  requireDigest: z.boolean().default(false),
  stalePolicy: z.enum(['warn', 'pending']).default('warn'),
  environments: z
    .record(z.string(), z.object({ mode: Mode, breakglass: z.boolean().default(false) }))
    .default({}),
  policyHash: z.string().nullable().default(null),
});
export type AdmissionSettings = z.infer<typeof AdmissionSettings>;

/** What the check answers when no policy was ever applied: nothing is admitted. */
export const NO_POLICY: AdmissionSettings = Object.freeze({
  unknownImage: 'deny',
  requireAttestation: true,
  requireDigest: false,
  stalePolicy: 'warn',
  environments: {},
  policyHash: null,
});

/** Derives the admission settings from a parsed policy (called by storePolicy at apply time). */
export function admissionSettingsOf(policy: Policy, policyHash: string): AdmissionSettings {
  const environments: AdmissionSettings['environments'] = {};
  for (const [name, env] of Object.entries(policy.environments)) {
    environments[name] = { mode: env.mode, breakglass: env.breakglass };
  }
  return {
    unknownImage: policy.admission.unknownImage,
    requireAttestation: policy.admission.requireAttestation,
    requireDigest: policy.admission.requireDigest,
    stalePolicy: policy.admission.stalePolicy,
    environments,
    policyHash,
  };
}

export const CHECK_VERDICTS = ['allow', 'deny', 'pending', 'unknown'] as const;

export interface CheckAnswer {
  image: string;
  /** The digest that was judged (a tag is resolved through the ledger's tag index). */
  digest: string | null;
  environment: string;
  decision: 'allow' | 'deny';
  /** The stored verdict's decision (pending is reported as such, and denied in enforce mode). */
  verdict: (typeof CHECK_VERDICTS)[number];
  mode: Mode;
  reasons: Reason[];
  attestation: Pick<Attestation, 'format' | 'keyId' | 'occurrence' | 'createdAt'> | null;
  decidedAt: string | null;
  policyHash: string | null;
}

/** Rule ids the check itself adds; they appear in reasons next to the policy's own. */
export const CHECK_RULES = {
  unavailable: 'check.unavailable',
  invalidReference: 'check.invalid-reference',
  noPolicy: 'check.no-policy',
  environment: 'check.environment',
  unknownImage: 'check.unknown-image',
  deleted: 'check.deleted',
  notEvaluated: 'check.not-evaluated',
  pending: 'check.pending',
  attestationRequired: 'check.attestation-required',
  digestRequired: 'check.digest-required',
  stalePolicy: 'check.stale-policy',
} as const;

export const reason = (
  ruleId: string,
  message: string,
  remediation: string | null = null,
): Reason => ({ ruleId, level: 'deny', message, remediation });

/** In dry-run every would-be denial becomes a warning and the answer is allow. */
function finish(base: Omit<CheckAnswer, 'decision'>, deny: boolean): CheckAnswer {
  if (!deny) return { ...base, decision: 'allow' };
  if (base.mode === 'dryrun') {
    return {
      ...base,
      decision: 'allow',
      reasons: base.reasons.map((r) => ({ ...r, level: 'warn' as const })),
    };
  }
  return { ...base, decision: 'deny' };
}

function activeAttestation(record: ImageRecord, policyHash: string): CheckAnswer['attestation'] {
  const live = record.attestations.filter((a) => !a.revokedAt);
  // Prefer the Binary Authorization attestation made under the verdict's policy.
  const pick =
    live.find((a) => a.format === 'binauthz' && a.policyHash === policyHash) ??
    live.find((a) => a.format === 'binauthz') ??
    live[0];
  return pick
    ? {
        format: pick.format,
        keyId: pick.keyId,
        occurrence: pick.occurrence,
        createdAt: pick.createdAt,
      }
    : null;
}

/**
 * Judges one image for one environment from its ledger record. The environment's mode comes from
 * the current policy: a verdict evaluated in dry-run is not an allow once the environment enforces.
 */
export function decide(input: {
  image: string;
  digest: string | null;
  environment: string;
  record: ImageRecord | null;
  settings: AdmissionSettings;
}): CheckAnswer {
  const { record, settings, environment } = input;
  const env = settings.environments[environment];
  const mode: Mode = env?.mode ?? 'enforce';
  const base = {
    image: input.image,
    digest: input.digest,
    environment,
    mode,
    attestation: null,
    decidedAt: null,
    policyHash: settings.policyHash,
  };
  if (!env) {
    const r =
      settings.policyHash === null
        ? reason(
            CHECK_RULES.noPolicy,
            'no policy has been applied',
            'apply one with `clearance policy apply`',
          )
        : reason(
            CHECK_RULES.environment,
            `environment "${environment}" is not in the policy`,
            `ask for one of: ${Object.keys(settings.environments).join(', ') || '(none)'}`,
          );
    return finish({ ...base, verdict: 'unknown', reasons: [r] }, true);
  }
  if (settings.requireDigest && !/@sha256:[0-9a-f]{64}$/.test(input.image)) {
    return finish(
      {
        ...base,
        verdict: 'unknown',
        reasons: [
          reason(
            CHECK_RULES.digestRequired,
            `${input.image} is a tag; this policy admits images by digest only (a tag can move after the check)`,
            input.digest
              ? `deploy ${input.image.replace(/:[^:/@]+$/, '')}@${input.digest}`
              : 'deploy the image by its digest (IMAGE@sha256:…)',
          ),
        ],
      },
      true,
    );
  }
  if (!record || !input.digest) {
    const deny = settings.unknownImage === 'deny';
    const r = reason(
      CHECK_RULES.unknownImage,
      input.digest
        ? `image ${input.digest} is not in the ledger`
        : `the tag of ${input.image} is not in the ledger`,
      'push the image through the central pipeline so it is scanned and evaluated',
    );
    return finish(
      { ...base, verdict: 'unknown', reasons: deny ? [r] : [{ ...r, level: 'warn' }] },
      deny,
    );
  }
  if (record.state === 'deleted') {
    return finish(
      {
        ...base,
        verdict: 'deny',
        reasons: [reason(CHECK_RULES.deleted, 'the image was deleted from the registry')],
      },
      true,
    );
  }
  const verdict = record.verdicts[environment];
  if (!verdict) {
    return finish(
      {
        ...base,
        verdict: 'unknown',
        reasons: [
          reason(
            CHECK_RULES.notEvaluated,
            `the image has no verdict for ${environment} yet`,
            'wait for the evaluation (it follows the push and the scan), then ask again',
          ),
        ],
      },
      true,
    );
  }
  let reasons = verdict.reasons;
  if (verdict.mode === 'dryrun' && mode === 'enforce') {
    // Evaluated before the environment began enforcing: its dry-run warnings are denials now.
    reasons = reasons.map((r) =>
      r.level === 'warn' && r.message.startsWith(DRYRUN_PREFIX)
        ? { ...r, level: 'deny', message: r.message.slice(DRYRUN_PREFIX.length) }
        : r,
    );
  }
  // A verdict from before the current policy: re-evaluation has not reached this image yet.
  const stale = settings.policyHash !== null && verdict.policyHash !== settings.policyHash;
  if (stale && mode === 'enforce') {
    const message = `judged under policy ${verdict.policyHash}, which policy ${settings.policyHash} has replaced; re-evaluation has not reached the image yet`;
    if (settings.stalePolicy === 'pending') {
      return finish(
        {
          ...base,
          verdict: 'pending',
          attestation: activeAttestation(record, verdict.policyHash),
          decidedAt: verdict.evaluatedAt,
          policyHash: verdict.policyHash,
          reasons: [
            reason(CHECK_RULES.stalePolicy, message, 'wait for the re-evaluation, then ask again'),
            ...reasons,
          ],
        },
        true,
      );
    }
    reasons = [
      ...reasons,
      {
        ruleId: CHECK_RULES.stalePolicy,
        level: 'warn',
        message,
        remediation: 'set admission.stalePolicy: pending to hold such images until re-evaluated',
      },
    ];
  }
  const common = {
    ...base,
    verdict: verdict.decision,
    attestation: activeAttestation(record, verdict.policyHash),
    decidedAt: verdict.evaluatedAt,
    policyHash: verdict.policyHash,
  };
  if (verdict.decision === 'pending') {
    return finish(
      {
        ...common,
        reasons: [
          reason(
            CHECK_RULES.pending,
            'the vulnerability scan has not finished',
            'wait for the scan, then ask again',
          ),
          ...reasons,
        ],
      },
      true,
    );
  }
  const denied = verdict.decision === 'deny' || reasons.some((r) => r.level === 'deny');
  if (denied) return finish({ ...common, reasons }, true);
  // An allow without an attestation is never enough where attestation is required.
  if (settings.requireAttestation && !common.attestation) {
    return finish(
      {
        ...common,
        reasons: [
          ...reasons,
          reason(
            CHECK_RULES.attestationRequired,
            'the image has no valid attestation',
            'wait for the attestor to sign the allowed image, or re-evaluate it',
          ),
        ],
      },
      true,
    );
  }
  return finish({ ...common, reasons }, false);
}
