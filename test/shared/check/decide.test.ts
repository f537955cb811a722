import { describe, expect, it } from 'vitest';
import { CHECK_RULES, decide } from '../../../shared/check/decide.js';
import {
  attestation,
  DIGEST,
  denyReason,
  HASH,
  REF,
  record,
  settings,
  verdict,
} from './records.js';

const judge = (over: Partial<Parameters<typeof decide>[0]> = {}) =>
  decide({
    image: REF,
    digest: DIGEST,
    environment: 'prod',
    record: record(),
    settings: settings(),
    ...over,
  });

describe('decide', () => {
  it('allows an allowed, attested image and reports the verdict, attestation and policy', () => {
    const a = judge();
    expect(a).toMatchObject({
      decision: 'allow',
      verdict: 'allow',
      mode: 'enforce',
      digest: DIGEST,
      policyHash: HASH,
      decidedAt: '2026-11-29T09:00:00.000Z',
      attestation: { format: 'binauthz', occurrence: 'projects/p/occurrences/att-1' },
    });
  });

  it('denies with the policy reasons and their remediation', () => {
    const a = judge({
      record: record({ verdicts: { prod: verdict({ decision: 'deny', reasons: [denyReason] }) } }),
    });
    expect(a.decision).toBe('deny');
    expect(a.reasons).toEqual([denyReason]);
  });

  it('never allows an image with zero attestations where attestation is required', () => {
    const a = judge({ record: record({ attestations: [] }) });
    expect(a.decision).toBe('deny');
    expect(a.reasons.map((r) => r.ruleId)).toContain(CHECK_RULES.attestationRequired);
  });

  it('treats revoked attestations as none', () => {
    const a = judge({
      record: record({ attestations: [attestation({ revokedAt: '2026-11-29T09:30:00Z' })] }),
    });
    expect(a.decision).toBe('deny');
    expect(a.attestation).toBeNull();
  });

  it('allows without attestation when the policy does not require one', () => {
    const a = judge({
      record: record({ attestations: [] }),
      settings: settings({ requireAttestation: false }),
    });
    expect(a.decision).toBe('allow');
  });

  it('denies an image unknown to the ledger (fail closed) unless the policy allows unknown images', () => {
    const unknown = judge({ record: null });
    expect(unknown).toMatchObject({ decision: 'deny', verdict: 'unknown' });
    expect(unknown.reasons[0]?.ruleId).toBe(CHECK_RULES.unknownImage);
    const allowed = judge({ record: null, settings: settings({ unknownImage: 'allow' }) });
    expect(allowed.decision).toBe('allow');
    expect(allowed.reasons[0]?.level).toBe('warn');
  });

  it('denies an unresolved tag', () => {
    const a = judge({ image: 'us-docker.pkg.dev/p/r/app:1.0', digest: null, record: null });
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]?.message).toContain('tag');
  });

  it('denies a pending verdict in enforce mode, naming the scan', () => {
    const a = judge({ record: record({ verdicts: { prod: verdict({ decision: 'pending' }) } }) });
    expect(a).toMatchObject({ decision: 'deny', verdict: 'pending' });
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.pending);
  });

  it('denies an image without a verdict for the environment', () => {
    const a = judge({ record: record({ verdicts: {} }) });
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.notEvaluated);
    expect(a.decision).toBe('deny');
  });

  it('denies a deleted image', () => {
    const a = judge({ record: record({ state: 'deleted' }) });
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.deleted);
  });

  it('denies an environment the policy does not declare, and everything before any policy', () => {
    expect(judge({ environment: 'staging' }).reasons[0]?.ruleId).toBe(CHECK_RULES.environment);
    const none = judge({ settings: settings({ environments: {}, policyHash: null }) });
    expect(none.decision).toBe('deny');
    expect(none.reasons[0]?.ruleId).toBe(CHECK_RULES.noPolicy);
  });

  it('in a dry-run environment allows what it would deny, with every reason as a warning', () => {
    const a = judge({
      environment: 'dev',
      record: record({
        attestations: [],
        verdicts: { dev: verdict({ environment: 'dev', decision: 'deny', reasons: [denyReason] }) },
      }),
    });
    expect(a.decision).toBe('allow');
    expect(a.mode).toBe('dryrun');
    expect(a.reasons.length).toBeGreaterThan(0);
    expect(a.reasons.every((r) => r.level === 'warn')).toBe(true);
  });

  it('denies a dry-run verdict once its environment enforces (re-evaluation still running)', () => {
    const a = judge({
      record: record({
        verdicts: {
          prod: verdict({
            mode: 'dryrun',
            decision: 'allow',
            reasons: [
              {
                ...denyReason,
                level: 'warn',
                message: `dry-run, would deny: ${denyReason.message}`,
              },
            ],
          }),
        },
      }),
    });
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]).toMatchObject({ level: 'deny', message: denyReason.message });
  });

  describe('a verdict made under a replaced policy', () => {
    const NEW = `sha256:${'d'.repeat(64)}`;
    const replaced = (over: Parameters<typeof settings>[0] = {}) =>
      settings({ policyHash: NEW, ...over });

    it('is answered with a warning naming the stale policy hash (default)', () => {
      const a = judge({ settings: replaced() });
      expect(a.decision).toBe('allow');
      const stale = a.reasons.find((r) => r.ruleId === CHECK_RULES.stalePolicy);
      expect(stale).toMatchObject({ level: 'warn' });
      expect(stale?.message).toContain(HASH);
      expect(stale?.message).toContain(NEW);
    });

    it('is pending, so denied where enforced, when the policy says stalePolicy: pending', () => {
      const a = judge({ settings: replaced({ stalePolicy: 'pending' }) });
      expect(a).toMatchObject({ decision: 'deny', verdict: 'pending', policyHash: HASH });
      expect(a.reasons[0]).toMatchObject({ ruleId: CHECK_RULES.stalePolicy, level: 'deny' });
      // Dry-run environments only warn, as ever.
      const dev = judge({
        environment: 'dev',
        record: record({ verdicts: { dev: verdict({ environment: 'dev', mode: 'dryrun' }) } }),
        settings: replaced({ stalePolicy: 'pending' }),
      });
      expect(dev.decision).toBe('allow');
    });

    it('is not stale when the hashes agree', () => {
      expect(judge().reasons.some((r) => r.ruleId === CHECK_RULES.stalePolicy)).toBe(false);
    });
  });

  describe('admission.requireDigest', () => {
    const byTag = REF.replace(/@sha256:[0-9a-f]{64}$/, ':1.0');

    it('refuses a reference by tag, naming the digest to deploy instead', () => {
      const a = judge({ image: byTag, settings: settings({ requireDigest: true }) });
      expect(a.decision).toBe('deny');
      expect(a.reasons[0]).toMatchObject({ ruleId: CHECK_RULES.digestRequired });
      expect(a.reasons[0]?.remediation).toContain(`@${DIGEST}`);
    });

    it('admits the same image by digest, and tags when it is off', () => {
      expect(judge({ settings: settings({ requireDigest: true }) }).decision).toBe('allow');
      expect(judge({ image: byTag }).decision).toBe('allow');
    });
  });
});
