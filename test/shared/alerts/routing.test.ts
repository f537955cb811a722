import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAlert } from '../../../shared/alerts/alert.js';
import { parseRoutingDocument, routeAlert } from '../../../shared/alerts/routing.js';
import { ClearanceError } from '../../../shared/errors.js';
import { compileGlob } from '../../../shared/policy/glob.js';
import { deniedAlert } from './samples.js';

const YAML_DOC = `
labelKeys: [owner, org.opencontainers.image.vendor]
teams:
  payments:
    channels:
      - kind: google-chat
        secret: projects/acme/secrets/payments-chat/versions/latest
        space: payments-chat
      - kind: slack
        secret: projects/acme/secrets/payments-slack/versions/latest
        space: payments-slack
  platform:
    channels:
      - kind: slack
        secret: env:PLATFORM_SLACK
        space: platform-slack
        digest: { intervalMinutes: 60 }
rules:
  - repositories: ["us-docker.pkg.dev/acme-prod/payments/**"]
    team: payments
  - repositories: ["us-docker.pkg.dev/acme-prod/**", "gcr.io/acme-legacy/**"]
    team: platform
fallback:
  channels:
    - kind: google-chat
      secret: file:/var/secrets/fallback-chat
      space: security-fallback
`;

function alertFor(repository: string, labels: Record<string, string> = {}) {
  const base = deniedAlert();
  return parseAlert({ ...base, labels, image: { ...base.image, repository } } as never);
}

describe('routing document', () => {
  const doc = parseRoutingDocument(YAML_DOC);

  it('parses YAML and JSON alike', () => {
    expect(parseRoutingDocument(JSON.stringify(doc))).toEqual(doc);
    expect(doc.teams.platform.channels[0].digest).toEqual({ intervalMinutes: 60 });
  });

  it('routes by the first matching repository glob', () => {
    const r = routeAlert(doc, alertFor('acme-prod/payments/api'));
    expect(r).toMatchObject({ team: 'payments', via: 'rule' });
    expect(r.channels.map((c) => c.space)).toEqual(['payments-chat', 'payments-slack']);
    expect(routeAlert(doc, alertFor('acme-prod/search/indexer'))).toMatchObject({
      team: 'platform',
      via: 'rule',
    });
  });

  it('lets an owner label name the team, over the rules', () => {
    const r = routeAlert(doc, alertFor('acme-prod/payments/api', { owner: 'platform' }));
    expect(r).toMatchObject({ team: 'platform', via: 'label' });
    const vendor = routeAlert(
      doc,
      alertFor('other/thing', { 'org.opencontainers.image.vendor': 'payments' }),
    );
    expect(vendor).toMatchObject({ team: 'payments', via: 'label' });
  });

  it('ignores a label naming an unknown team and falls through to the rules', () => {
    const r = routeAlert(doc, alertFor('acme-prod/payments/api', { owner: 'nobody' }));
    expect(r).toMatchObject({ team: 'payments', via: 'rule' });
  });

  it('sends what nothing claims to the fallback, and nowhere without one', () => {
    expect(routeAlert(doc, alertFor('someone/else'))).toMatchObject({
      via: 'fallback',
      channels: [{ space: 'security-fallback' }],
    });
    const noFallback = parseRoutingDocument({ ...doc, fallback: undefined });
    expect(routeAlert(noFallback, alertFor('someone/else'))).toEqual({
      team: null,
      via: 'none',
      channels: [],
    });
  });

  it('refuses a rule naming an unknown team', () => {
    expect(() =>
      parseRoutingDocument({ teams: {}, rules: [{ repositories: ['**'], team: 'ghost' }] }),
    ).toThrow(/rules\.0\.team: unknown team "ghost"/);
  });

  it('refuses a webhook URL pasted where a secret reference belongs, without echoing it', () => {
    const url = 'https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX';
    try {
      parseRoutingDocument({
        teams: { t: { channels: [{ kind: 'slack', secret: url, space: 's' }] } },
      });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ClearanceError);
      expect((e as ClearanceError).code).toBe('invalid-config');
      expect((e as Error).message).toMatch(/teams\.t\.channels\.0\.secret/);
      expect((e as Error).message).not.toContain('XXXXSECRETXXXX');
    }
  });

  it('refuses one space declared with two different webhooks', () => {
    expect(() =>
      parseRoutingDocument({
        teams: {
          a: { channels: [{ kind: 'slack', secret: 'env:A', space: 'shared' }] },
          b: { channels: [{ kind: 'slack', secret: 'env:B', space: 'shared' }] },
        },
      }),
    ).toThrow(/space "shared"/);
  });

  it('reports a YAML syntax error as invalid config', () => {
    expect(() => parseRoutingDocument('teams: [unclosed')).toThrow(/not valid YAML or JSON/);
  });
});

describe('the routing example in docs/alerts.md', () => {
  it('parses and routes as the text says', () => {
    const md = readFileSync(new URL('../../../docs/alerts.md', import.meta.url), 'utf8');
    const yaml = md.match(/```yaml\n([\s\S]*?)```/)?.[1];
    expect(yaml).toBeDefined();
    const doc = parseRoutingDocument(yaml as string);
    expect(routeAlert(doc, alertFor('acme-prod/payments/api')).team).toBe('payments');
    expect(routeAlert(doc, alertFor('acme-prod/search/api')).team).toBe('platform');
    expect(routeAlert(doc, alertFor('x/y', { owner: 'payments' })).via).toBe('label');
    expect(routeAlert(doc, alertFor('x/y')).channels.map((c) => c.space)).toEqual(['security']);
  });
});

describe('routing globs are the policy globs', () => {
  const docFor = (pattern: string) =>
    parseRoutingDocument({
      teams: { t: { channels: [{ kind: 'slack', secret: 'env:T', space: 't' }] } },
      rules: [{ repositories: [pattern], team: 't' }],
    });
  const routed = (pattern: string, repository: string) =>
    routeAlert(docFor(pattern), alertFor(repository)).via === 'rule';

  it.each([
    // picomatch disagreed with the policy on each of these
    ['us-docker.pkg.dev/acme/**', 'acme'],
    ['us-docker.pkg.dev/acme/**', 'acme/web'],
    ['us-docker.pkg.dev/**/web', 'web'],
    ['us-docker.pkg.dev/*/web', 'acme/web'],
    ['us-docker.pkg.dev/acme/w*', 'acme/web/x'],
  ])('%s on us-docker.pkg.dev/%s routes exactly when the policy glob matches', (pattern, repo) => {
    expect(routed(pattern, repo)).toBe(compileGlob(pattern).test(`us-docker.pkg.dev/${repo}`));
  });

  it('refuses braces, ? and character classes, which the policy would read literally', () => {
    for (const p of [
      'us-docker.pkg.dev/{a,b}/**',
      'us-docker.pkg.dev/a?',
      'us-docker.pkg.dev/[ab]',
    ]) {
      expect(() => docFor(p), p).toThrow(/only "\*" and "\*\*" are wildcards/);
    }
  });
});

describe('break-glass routing: the security channel and the owners', () => {
  const SECURITY = `${YAML_DOC}
security:
  channels:
    - kind: slack
      secret: env:SECURITY_SLACK
      space: security-breakglass
`;
  const withSecurity = parseRoutingDocument(SECURITY);
  const withoutSecurity = parseRoutingDocument(YAML_DOC);
  const breakglass = (over: Record<string, unknown> = {}) => {
    const { image: _image, ...rest } = deniedAlert();
    return parseAlert({
      ...rest,
      type: 'breakglass-used',
      environment: 'prod',
      actor: 'alice@acme.example',
      workload: { namespace: 'payments', kind: 'Deployment', name: 'api' },
      images: ['us-docker.pkg.dev/acme-prod/payments/api:2.0'],
      ...over,
    } as never);
  };

  it('a use of an image unknown by digest goes to the security channel and the owners of its repository', () => {
    const alert = breakglass();
    expect(alert.image).toBeUndefined();
    const r = routeAlert(withSecurity, alert);
    expect(r).toMatchObject({ team: 'payments', via: 'rule' });
    expect(r.channels.map((c) => c.space)).toEqual([
      'security-breakglass',
      'payments-chat',
      'payments-slack',
    ]);
  });

  it('a use whose owners are unknown goes to the security channel only', () => {
    const r = routeAlert(withSecurity, breakglass({ images: ['ghcr.io/stranger/tool:1'] }));
    expect(r).toMatchObject({ team: null, via: 'security' });
    expect(r.channels.map((c) => c.space)).toEqual(['security-breakglass']);
  });

  it('a use of a known image goes to the security channel and the labelled owners', () => {
    const base = deniedAlert();
    const r = routeAlert(
      withSecurity,
      breakglass({ image: base.image, labels: { owner: 'platform' }, images: ['x'] }),
    );
    expect(r.channels.map((c) => c.space)).toEqual(['security-breakglass', 'platform-slack']);
  });

  it('other alerts never reach the security channel; without one, break-glass goes to owners or fallback', () => {
    expect(
      routeAlert(withSecurity, alertFor('acme-prod/payments/api')).channels.map((c) => c.space),
    ).toEqual(['payments-chat', 'payments-slack']);
    expect(
      routeAlert(withoutSecurity, breakglass({ images: ['ghcr.io/stranger/tool:1'] })),
    ).toMatchObject({ via: 'fallback' });
  });
});
