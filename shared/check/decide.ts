// The deploy-time decision: reads a stored verdict and applies the admission rules, failing closed.
import type { Attestation, ImageRecord, Mode, Reason } from '../ledger/image-record.js';

/** The parts of the policy the deploy check needs. */
export interface AdmissionSettings {
  unknownImage: 'deny' | 'allow';
  requireAttestation: boolean;
  environments: Record<string, { mode: Mode; breakglass: boolean }>;
  policyHash: string | null;
}

export interface CheckAnswer {
  image: string;
  digest: string | null;
  environment: string;
  decision: 'allow' | 'deny';
  /** The stored verdict's decision (pending is reported as such, and denied in enforce mode). */
  verdict: 'allow' | 'deny' | 'pending' | 'unknown';
  mode: Mode;
  reasons: Reason[];
  attestation: Pick<Attestation, 'format' | 'keyId' | 'occurrence' | 'createdAt'> | null;
  decidedAt: string | null;
  policyHash: string | null;
}

const reason = (ruleId: string, message: string, remediation: string | null = null): Reason => ({
  ruleId,
  level: 'deny',
  message,
  remediation,
});

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
    return finish(
      {
        ...base,
        verdict: 'unknown',
        reasons: [reason('check.environment', `environment "${environment}" is not in the policy`)],
      },
      true,
    );
  }
  if (!record || !input.digest) {
    const deny = settings.unknownImage === 'deny';
    const r = reason(
      'check.unknown-image',
      input.digest
        ? `image ${input.digest} is not in the ledger`
        : `tag of ${input.image} is not in the ledger`,
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
        reasons: [reason('check.deleted', 'the image was deleted from the registry')],
      },
      true,
    );
  }
  const verdict = record.verdicts[environment];
  const active =
    record.attestations.find((a) => !a.revokedAt && a.format === 'binauthz') ??
    record.attestations.find((a) => !a.revokedAt) ??
    null;
  const attestation = active
    ? {
        format: active.format,
        keyId: active.keyId,
        occurrence: active.occurrence,
        createdAt: active.createdAt,
      }
    : null;
  if (!verdict) {
    return finish(
      {
        ...base,
        verdict: 'unknown',
        reasons: [reason('check.not-evaluated', `the image has no verdict for ${environment} yet`)],
      },
      true,
    );
  }
  const common = {
    ...base,
    verdict: verdict.decision,
    attestation,
    decidedAt: verdict.evaluatedAt,
    policyHash: verdict.policyHash,
    mode: verdict.mode,
  };
  if (verdict.decision === 'pending') {
    return finish(
      {
        ...common,
        reasons: [
          reason(
            'check.pending',
            'the vulnerability scan has not finished',
            'wait for the scan, then ask again',
          ),
          ...verdict.reasons,
        ],
      },
      true,
    );
  }
  if (verdict.decision === 'deny') return finish({ ...common, reasons: verdict.reasons }, true);
  if (settings.requireAttestation && !attestation && verdict.mode === 'enforce') {
    return finish(
      {
        ...common,
        reasons: [
          ...verdict.reasons,
          reason(
            'check.attestation-required',
            'the image has no valid attestation',
            'wait for the attestor, or re-evaluate the image',
          ),
        ],
      },
      true,
    );
  }
  return finish({ ...common, reasons: verdict.reasons }, false);
}
