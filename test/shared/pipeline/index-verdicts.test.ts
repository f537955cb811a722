import { describe, expect, it } from 'vitest';
import { ImageRecord } from '../../../shared/image-record.js';
import { aggregateIndexVerdicts, isIndex } from '../../../shared/pipeline/index-verdicts.js';
import { parsePolicy } from '../../../shared/policy/policy.js';
import type { Verdict } from '../../../shared/verdict.js';

const now = new Date('2026-11-29T10:00:00Z');
const d = (c: string) => `sha256:${c.repeat(64)}`;
const policy = parsePolicy(
  'apiVersion: clearance/v1\nenvironments: { prod: { mode: enforce }, dev: { mode: dryrun } }\n',
);
const rec = (digest: string, extra: Partial<ImageRecord> = {}) =>
  ImageRecord.parse({
    id: digest,
    registry: 'r.example',
    repository: 'app',
    digest,
    state: 'pushed',
    updatedAt: now.toISOString(),
    ...extra,
  });
const index = rec(d('0'), {
  mediaType: 'application/vnd.oci.image.index.v1+json',
  platforms: [
    { digest: d('a'), os: 'linux', architecture: 'amd64', variant: null },
    { digest: d('b'), os: 'linux', architecture: 'arm64', variant: 'v8' },
  ],
});
const v = (env: string, decision: Verdict['decision'], message = 'x'): Verdict => ({
  environment: env,
  decision,
  mode: env === 'dev' ? 'dryrun' : 'enforce',
  reasons:
    decision === 'deny'
      ? [{ ruleId: 'vulnerabilities.fixable-severity', level: 'deny', message, remediation: null }]
      : [],
  policyHash: 'h',
  evaluatedAt: now.toISOString(),
});

describe('index verdicts', () => {
  it('recognises an index by its platforms and media type', () => {
    expect(isIndex(index)).toBe(true);
    expect(isIndex(rec(d('a')))).toBe(false);
  });

  it('denies an index that lists no image (only attestations), in enforced environments', () => {
    const empty = rec(d('9'), {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      platforms: [],
    });
    expect(isIndex(empty)).toBe(true);
    const out = aggregateIndexVerdicts(empty, new Map(), policy, 'h', now);
    expect(out.prod?.decision).toBe('deny');
    expect(out.prod?.reasons.map((r) => r.ruleId)).toEqual(['index.no-images']);
    expect(out.dev).toMatchObject({ decision: 'allow', reasons: [{ level: 'warn' }] });
  });

  it('is allowed only when every platform is allowed', () => {
    const children = new Map([
      [d('a'), rec(d('a'), { verdicts: { prod: v('prod', 'allow'), dev: v('dev', 'allow') } })],
      [d('b'), rec(d('b'), { verdicts: { prod: v('prod', 'allow'), dev: v('dev', 'allow') } })],
    ]);
    expect(aggregateIndexVerdicts(index, children, policy, 'h', now).prod?.decision).toBe('allow');
  });

  it('is denied when one platform is denied, naming the platform', () => {
    const children = new Map([
      [d('a'), rec(d('a'), { verdicts: { prod: v('prod', 'allow') } })],
      [d('b'), rec(d('b'), { verdicts: { prod: v('prod', 'deny', '1 fixable HIGH') } })],
    ]);
    const out = aggregateIndexVerdicts(index, children, policy, 'h', now);
    expect(out.prod?.decision).toBe('deny');
    expect(out.prod?.reasons.map((r) => r.message)).toContain('[linux/arm64/v8] 1 fixable HIGH');
    expect(out.dev?.decision).toBe('allow');
  });

  it('stays pending while a platform is missing or judged under another policy', () => {
    const missing = new Map([[d('a'), rec(d('a'), { verdicts: { prod: v('prod', 'allow') } })]]);
    expect(aggregateIndexVerdicts(index, missing, policy, 'h', now).prod?.decision).toBe('pending');
    const old = new Map([
      [d('a'), rec(d('a'), { verdicts: { prod: v('prod', 'allow') } })],
      [d('b'), rec(d('b'), { verdicts: { prod: { ...v('prod', 'allow'), policyHash: 'older' } } })],
    ]);
    expect(aggregateIndexVerdicts(index, old, policy, 'h', now).prod?.decision).toBe('pending');
  });
});
