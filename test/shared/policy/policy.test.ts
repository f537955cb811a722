import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ClearanceError } from '../../../shared/errors.js';
import {
  canonicalJson,
  effectiveRules,
  exceedsThreshold,
  expiryInstant,
  MAX_POLICY_CHARS,
  type PolicyProblem,
  parsePolicy,
  policyHash,
  validatePolicy,
} from '../../../shared/policy/policy.js';

const DOC_EXAMPLE = (() => {
  const md = readFileSync(new URL('../../../docs/policy.md', import.meta.url), 'utf8');
  const m = /```yaml\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error('docs/policy.md has no yaml example');
  return m[1];
})();

function problemsOf(fn: () => unknown): PolicyProblem[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClearanceError);
    const e = err as ClearanceError;
    expect(e.code).toBe('invalid-policy');
    expect(e.retryable).toBe(false);
    return (e.details?.problems ?? []) as PolicyProblem[];
  }
  throw new Error('expected the policy to be refused');
}

describe('parsePolicy', () => {
  it('accepts the documented example and applies defaults', () => {
    const p = parsePolicy(DOC_EXAMPLE);
    expect(Object.keys(p.environments).sort()).toEqual(['dev', 'prod']);
    expect(p.environments.prod).toMatchObject({ mode: 'enforce', breakglass: true });
    expect(p.environments.dev.mode).toBe('dryrun');
    const v = p.rules.vulnerabilities;
    expect(v?.maximumFixableSeverity).toBe('MEDIUM');
    // YAML 1.2 keeps an unquoted date a string: no Date object, no timezone surprise.
    expect(v?.allowedCves[0]).toMatchObject({ id: 'CVE-2005-2541', expires: '2027-03-31' });
    expect(p.rules.exemptImages).toEqual(['gke.gcr.io/**']);
    expect(p.admission).toEqual({
      unknownImage: 'deny',
      requireAttestation: true,
      requireDigest: false,
      stalePolicy: 'warn',
    });
  });

  it('fills defaults for a minimal policy', () => {
    const p = parsePolicy(
      'apiVersion: clearance/v1\nenvironments: {prod: {}}\nrules: {vulnerabilities: {}}',
    );
    expect(p.environments.prod).toEqual({ mode: 'enforce', breakglass: false });
    expect(p.rules.vulnerabilities).toEqual({
      // true names Artifact Analysis: a CI report alone never satisfies the default.
      requireScan: ['artifact-analysis'],
      maximumFixableSeverity: 'ALLOW_ALL',
      maximumUnfixableSeverity: 'ALLOW_ALL',
      allowedCves: [],
      blockedCves: [],
      vex: { apply: true, matchRepository: false },
      exceptionWarningDays: 7,
      unknownFixableSeverity: 'HIGH',
      fixGraceWarningDays: 2,
    });
    expect(p.rules.trustedRepositories).toBeUndefined();
    expect(p.trust).toEqual({ signers: [] });
  });

  it('reads requireScan as the scanners that count', () => {
    const scanners = (v: string) =>
      parsePolicy(
        `apiVersion: clearance/v1\nenvironments: {prod: {}}\nrules: {vulnerabilities: {requireScan: ${v}}}`,
      ).rules.vulnerabilities?.requireScan;
    expect(scanners('true')).toEqual(['artifact-analysis']);
    expect(scanners('false')).toEqual([]);
    expect(scanners('[trivy, artifact-analysis, trivy]')).toEqual(['artifact-analysis', 'trivy']);
    expect(problemsOf(() => scanners('[snyk]'))[0]?.path).toMatch(/requireScan/);
  });

  it('reads trust signers: a key or a keyless identity, what each may sign, in trust order', () => {
    const key =
      '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4EOeDgKXkOaTWck76luDKmuixqpe\nOiXrxa7fPeqHOHC9lx1/haWorom5XDTC9v2Z8dFOFBeexas9NOhURhwbhg==\n-----END PUBLIC KEY-----\n';
    const p = validatePolicy({
      apiVersion: 'clearance/v1',
      environments: { prod: {} },
      trust: {
        signers: [
          { name: 'security', publicKey: key, evidence: ['vex'] },
          {
            name: 'ci',
            keyless: {
              issuer: 'https://token.actions.githubusercontent.com',
              subject: 'https://github.com/acme/**',
            },
          },
        ],
      },
    });
    expect(p.trust.signers.map((s) => [s.name, s.evidence])).toEqual([
      ['security', ['vex']],
      ['ci', ['provenance', 'vex']],
    ]);
    const bad = problemsOf(() =>
      validatePolicy({
        apiVersion: 'clearance/v1',
        environments: { prod: {} },
        trust: {
          signers: [
            {
              name: 'both',
              publicKey: key,
              keyless: { issuer: 'https://a.example', subject: 'x' },
            },
            { name: 'neither' },
            { name: 'garbled', publicKey: 'not a key' },
          ],
        },
      }),
    ).map((x) => x.message);
    expect(bad).toEqual(
      expect.arrayContaining([
        'give exactly one of publicKey or keyless',
        expect.stringMatching(/expected a PEM public key/),
      ]),
    );
  });

  it('lists every problem with its path and line, never a partial policy', () => {
    const text = [
      'apiVersion: clearance/v2', // line 1
      'environments:',
      '  Prod: {mode: enforce}', // line 3: bad env name
      '  dev: {mode: sometimes}', // line 4
      'rules:',
      '  trustedRepositories: ["gcr.io/a**"]', // line 6
      '  vulnerabilities:',
      '    maximumFixableSeverty: HIGH', // line 8: typo
      '    maximumUnfixableSeverity: SEVERE', // line 9
      '    allowedCves:',
      '      - id: CVE-2005-2541',
      '        owner: ""', // line 12
      '        expires: 2026-02-30', // line 13
    ].join('\n');
    const problems = problemsOf(() => parsePolicy(text));
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        'apiVersion',
        'environments.Prod',
        'environments.dev.mode',
        'rules.trustedRepositories[0]',
        'rules.vulnerabilities.maximumFixableSeverty',
        'rules.vulnerabilities.maximumUnfixableSeverity',
        'rules.vulnerabilities.allowedCves[0].reason',
        'rules.vulnerabilities.allowedCves[0].owner',
        'rules.vulnerabilities.allowedCves[0].expires',
      ].sort(),
    );
    expect(byPath.apiVersion.line).toBe(1);
    expect(byPath['environments.dev.mode'].line).toBe(4);
    expect(byPath['rules.trustedRepositories[0]'].message).toContain('whole path segment');
    expect(byPath['rules.trustedRepositories[0]'].line).toBe(6);
    expect(byPath['rules.vulnerabilities.maximumFixableSeverty']).toMatchObject({
      message: 'unknown field "maximumFixableSeverty"',
      line: 8,
    });
    expect(byPath['rules.vulnerabilities.maximumUnfixableSeverity'].line).toBe(9);
    expect(byPath['rules.vulnerabilities.allowedCves[0].owner'].line).toBe(12);
    expect(byPath['rules.vulnerabilities.allowedCves[0].expires']).toMatchObject({
      message: expect.stringContaining('expected a date'),
      line: 13,
    });
    // A missing field points at its parent object.
    expect(byPath['rules.vulnerabilities.allowedCves[0].reason'].line).toBe(11);
  });

  it('reports YAML syntax errors with their line, all of them', () => {
    const problems = problemsOf(() =>
      parsePolicy('apiVersion: clearance/v1\nenvironments:\n  prod: {mode: enforce\nrules: [\n'),
    );
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) {
      expect(p.message).toMatch(/^YAML syntax: /);
      expect(p.line).toBeGreaterThanOrEqual(3);
    }
  });

  it('refuses duplicate keys instead of letting the last one win', () => {
    const problems = problemsOf(() =>
      parsePolicy('apiVersion: clearance/v1\nenvironments: {prod: {}}\nrules: {}\nrules: {}\n'),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 4 });
    expect(problems[0].message).toContain('unique');
  });

  it('reports JSON syntax errors and duplicate keys with their line, and locates schema problems', () => {
    const syntax = problemsOf(() =>
      parsePolicy(
        '{\n  "apiVersion": "clearance/v1",\n  "environments": {}\n  "rules": {}}',
        'json',
      ),
    );
    expect(syntax).toHaveLength(1);
    expect(syntax[0].message).toMatch(/^JSON syntax: /);
    expect(syntax[0].line).toBe(4);

    const dup = problemsOf(() =>
      parsePolicy(
        '{"apiVersion": "clearance/v1",\n "environments": {"prod": {}},\n "apiVersion": "x"}',
        'json',
      ),
    );
    expect(dup).toHaveLength(1);
    expect(dup[0]).toMatchObject({ line: 3, message: expect.stringContaining('unique') });

    const schema = problemsOf(() =>
      parsePolicy(
        '{"apiVersion": "clearance/v1",\n "environments": {"prod": {"mode": "on"}}}',
        'json',
      ),
    );
    expect(schema).toEqual([expect.objectContaining({ path: 'environments.prod.mode', line: 2 })]);
  });

  it('refuses an empty document and a policy without environments', () => {
    expect(problemsOf(() => parsePolicy('')).map((p) => p.path)).toEqual(['']);
    expect(
      problemsOf(() => parsePolicy('apiVersion: clearance/v1\nenvironments: {}')).map(
        (p) => p.message,
      ),
    ).toEqual(['declare at least one environment']);
  });

  it('refuses an oversized document before parsing it', () => {
    const huge = `apiVersion: clearance/v1\n# ${'x'.repeat(MAX_POLICY_CHARS)}\nenvironments: {prod: {}}`;
    expect(problemsOf(() => parsePolicy(huge))[0].message).toMatch(/the limit is 1048576/);
  });

  it('refuses a stream of several YAML documents', () => {
    const problems = problemsOf(() =>
      parsePolicy(
        'apiVersion: clearance/v1\nenvironments: {prod: {}}\n---\napiVersion: clearance/v1\n',
      ),
    );
    expect(problems[0]).toMatchObject({
      line: 3,
      message: expect.stringMatching(/^YAML syntax: /),
    });
  });

  it('bounds YAML alias expansion', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    expect(problemsOf(() => parsePolicy(bomb))[0].message).toMatch(/alias/i);
  });
});

describe('policyHash', () => {
  const base = parsePolicy(DOC_EXAMPLE);

  it('is sha256 of the canonical form', () => {
    expect(policyHash(base)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('is the same for YAML and JSON, any key order, any list order of globs and CVEs', () => {
    const asJson = JSON.stringify(JSON.parse(JSON.stringify(base)), null, 2);
    const reordered = (value: unknown): unknown => {
      if (Array.isArray(value)) return [...value].reverse().map(reordered);
      if (value && typeof value === 'object') {
        return Object.fromEntries(
          Object.entries(value)
            .reverse()
            .map(([k, v]) => [k, reordered(v)]),
        );
      }
      return value;
    };
    const yamlReordered = stringify(reordered(parsePolicy(DOC_EXAMPLE)));
    expect(policyHash(parsePolicy(asJson, 'json'))).toBe(policyHash(base));
    expect(policyHash(parsePolicy(yamlReordered))).toBe(policyHash(base));
  });

  it('treats defaults written out and left implicit as the same policy', () => {
    const implicit = parsePolicy('apiVersion: clearance/v1\nenvironments: {prod: {}}');
    const explicit = parsePolicy(
      'apiVersion: clearance/v1\nenvironments: {prod: {mode: enforce, breakglass: false}}\nrules: {exemptImages: []}\nadmission: {unknownImage: deny}',
    );
    expect(policyHash(explicit)).toBe(policyHash(implicit));
  });

  it('changes when the content changes', () => {
    const changed = parsePolicy(DOC_EXAMPLE.replace('maxStaleDays: 14', 'maxStaleDays: 15'));
    expect(policyHash(changed)).not.toBe(policyHash(base));
  });

  it('canonicalJson sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"z":1}]},"b":1}',
    );
  });
});

describe('effectiveRules', () => {
  const p = parsePolicy(DOC_EXAMPLE);

  it('merges an environment override field by field over the base section', () => {
    const dev = effectiveRules(p, 'dev');
    expect(dev.vulnerabilities?.maximumFixableSeverity).toBe('HIGH');
    expect(dev.vulnerabilities?.maximumUnfixableSeverity).toBe('HIGH');
    expect(dev.vulnerabilities?.allowedCves.map((e) => e.id)).toEqual(['CVE-2005-2541']);
    expect(dev.image).toBeUndefined();
    const prod = effectiveRules(p, 'prod');
    expect(prod.vulnerabilities?.maximumFixableSeverity).toBe('MEDIUM');
    expect(prod.image).toEqual({ nonRoot: true, maxAgeDays: 90 });
  });

  it('applies section defaults when an override adds a section the base lacks', () => {
    const q = parsePolicy(
      'apiVersion: clearance/v1\nenvironments:\n  prod: {rules: {provenance: {trustedBuilders: [b]}, trustedRepositories: null}}\nrules: {trustedRepositories: [x/**]}',
    );
    expect(effectiveRules(q, 'prod').provenance).toEqual({
      trustedBuilders: ['b'],
      missing: 'deny',
    });
    expect(effectiveRules(q, 'prod').trustedRepositories).toBeUndefined();
  });

  it('throws not-found for an environment the policy does not have', () => {
    expect(() => effectiveRules(p, 'staging')).toThrow(/no environment "staging"/);
  });
});

describe('exceedsThreshold', () => {
  it.each([
    ['HIGH', 'MEDIUM', true],
    ['MEDIUM', 'MEDIUM', false],
    ['LOW', 'MEDIUM', false],
    ['UNSPECIFIED', 'MINIMAL', false],
    ['UNSPECIFIED', 'BLOCK_ALL', true],
    ['CRITICAL', 'CRITICAL', false],
    ['CRITICAL', 'ALLOW_ALL', false],
  ] as const)('%s over %s → %s', (severity, threshold, expected) => {
    expect(exceedsThreshold(severity, threshold)).toBe(expected);
  });
});

describe('parsed policies are immutable', () => {
  it('refuses changes, so caches keyed on the policy object cannot go stale', () => {
    const p = parsePolicy(DOC_EXAMPLE);
    expect(() => {
      (p.environments.prod as { mode: string }).mode = 'dryrun';
    }).toThrow(TypeError);
    expect(() => {
      (p.rules.trustedRepositories as string[]).push('**');
    }).toThrow(TypeError);
  });
});

describe('expiryInstant', () => {
  it('keeps a date-only exception valid through the whole day, UTC', () => {
    expect(expiryInstant('2026-12-01')).toBe(Date.parse('2026-12-02T00:00:00Z'));
    expect(expiryInstant('2026-12-01T12:00:00+01:00')).toBe(Date.parse('2026-12-01T11:00:00Z'));
  });
});
