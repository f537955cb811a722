import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { WebhookSource } from '../../../shared/config/config.js';
import { ClearanceError } from '../../../shared/errors.js';
import { assertHostAllowed, authenticateWebhook } from '../../../shared/trust/webhook-sources.js';

const distribution: WebhookSource = {
  kind: 'distribution',
  secret: 'distribution-secret-0123456789',
  hosts: ['registry.acme.example', '127.0.0.1:*'],
};
const github: WebhookSource = {
  kind: 'github',
  secret: 'github-secret-0123456789',
  hosts: ['ghcr.io'],
};

function codeOf(f: () => void): string {
  try {
    f();
    return 'ok';
  } catch (err) {
    return err instanceof ClearanceError ? err.code : `unexpected ${String(err)}`;
  }
}

describe('authenticateWebhook', () => {
  it('accepts the registry’s own token, bare or as a bearer token, and nothing else', () => {
    const ok = (authorization: string) =>
      codeOf(() => authenticateWebhook('distribution', distribution, { authorization }, undefined));
    expect(ok(`Bearer ${distribution.secret}`)).toBe('ok');
    expect(ok(distribution.secret)).toBe('ok');
    expect(ok(`Bearer ${github.secret}`)).toBe('unauthenticated');
    expect(ok('')).toBe('unauthenticated');
  });

  it('refuses every request for a registry kind that has no secret configured', () => {
    expect(
      codeOf(() =>
        authenticateWebhook(
          'harbor',
          null,
          { authorization: `Bearer ${distribution.secret}` },
          undefined,
        ),
      ),
    ).toBe('unauthenticated');
  });

  it('checks GitHub’s HMAC over the raw body and refuses a bearer token in its place', () => {
    const body = Buffer.from('{"action":"published"}');
    const sig = `sha256=${createHmac('sha256', github.secret).update(body).digest('hex')}`;
    expect(
      codeOf(() => authenticateWebhook('github', github, { 'x-hub-signature-256': sig }, body)),
    ).toBe('ok');
    expect(
      codeOf(() =>
        authenticateWebhook('github', github, { 'x-hub-signature-256': sig }, Buffer.from('{}')),
      ),
    ).toBe('unauthenticated');
    expect(
      codeOf(() =>
        authenticateWebhook('github', github, { authorization: `Bearer ${github.secret}` }, body),
      ),
    ).toBe('unauthenticated');
  });
});

describe('assertHostAllowed', () => {
  it('lets a webhook speak for its own hosts only', () => {
    expect(codeOf(() => assertHostAllowed(distribution, 'registry.acme.example'))).toBe('ok');
    expect(codeOf(() => assertHostAllowed(distribution, '127.0.0.1:5000'))).toBe('ok');
    expect(codeOf(() => assertHostAllowed(distribution, 'registry.other.example'))).toBe(
      'forbidden',
    );
    expect(codeOf(() => assertHostAllowed(distribution, '127.0.0.2:5000'))).toBe('forbidden');
    expect(codeOf(() => assertHostAllowed(distribution, 'ghcr.io'))).toBe('forbidden');
  });

  it('never accepts a Google registry from a webhook, whatever its host list says', () => {
    const lax: WebhookSource = { ...distribution, hosts: ['us-docker.pkg.dev', 'gcr.io'] };
    for (const h of ['us-docker.pkg.dev', 'gcr.io', 'eu.gcr.io', 'europe-west1-docker.pkg.dev'])
      expect(() => assertHostAllowed(lax, h)).toThrow(/only from the gcr topic/);
  });
});
