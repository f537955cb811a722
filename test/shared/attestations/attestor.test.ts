import { describe, expect, it } from 'vitest';
import { decideAttestation } from '../../../shared/attestations/attestor.js';
import { image, POLICY_A, POLICY_B, verdict } from './images.js';

describe('decideAttestation', () => {
  it('attests when every enforce verdict allows, at their common policy', () => {
    expect(decideAttestation(image())).toEqual({ action: 'attest', policyHash: POLICY_A });
  });

  it('ignores dry-run verdicts either way', () => {
    const img = image({
      verdicts: {
        prod: verdict('prod', 'allow'),
        dev: verdict('dev', 'deny', { mode: 'dryrun' }),
      },
    });
    expect(decideAttestation(img)).toEqual({ action: 'attest', policyHash: POLICY_A });
    const onlyDryRun = image({ verdicts: { dev: verdict('dev', 'allow', { mode: 'dryrun' }) } });
    expect(decideAttestation(onlyDryRun).action).toBe('none');
  });

  it('revokes when any enforce environment denies, naming the environment and rule', () => {
    const img = image({
      verdicts: { prod: verdict('prod', 'deny'), staging: verdict('staging', 'allow') },
    });
    expect(decideAttestation(img)).toEqual({
      action: 'revoke',
      reason: `denied in prod by policy ${POLICY_A}: vulnerabilities.max-fixable: CVE-2024-0001 (CRITICAL) is fixable`,
    });
  });

  it('revokes a deleted image whatever its verdicts say', () => {
    expect(decideAttestation(image({ state: 'deleted' }))).toEqual({
      action: 'revoke',
      reason: 'image deleted',
    });
    expect(decideAttestation(image({ deletedAt: '2026-11-29T10:00:00.000Z' })).action).toBe(
      'revoke',
    );
  });

  it('does nothing while a gating verdict is pending or verdicts disagree on the policy', () => {
    const pending = image({
      verdicts: { prod: verdict('prod', 'allow'), staging: verdict('staging', 'pending') },
    });
    expect(decideAttestation(pending)).toEqual({
      action: 'none',
      why: 'a gating verdict is pending',
    });
    const mixed = image({
      verdicts: {
        prod: verdict('prod', 'allow'),
        staging: verdict('staging', 'allow', { policyHash: POLICY_B }),
      },
    });
    expect(decideAttestation(mixed).action).toBe('none');
  });

  it('narrows to the listed environments; a listed one without a verdict is pending', () => {
    const img = image({
      verdicts: { prod: verdict('prod', 'allow'), staging: verdict('staging', 'deny') },
    });
    expect(decideAttestation(img, ['prod'])).toEqual({ action: 'attest', policyHash: POLICY_A });
    expect(decideAttestation(img, ['prod', 'qa']).action).toBe('none');
  });
});
