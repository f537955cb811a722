import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../shared/config/config.js';
import { ClearanceError } from '../../../shared/errors.js';

describe('loadConfig', () => {
  it('applies the defaults in one place', () => {
    const c = loadConfig({});
    expect(c.projectId).toBe('demo-clearance');
    expect(c.topics).toEqual({
      alerts: 'clearance-alerts',
      reevaluate: 'clearance-reevaluate',
      verdicts: 'clearance-verdicts',
    });
    expect(c.signer.kind).toBe('local');
    expect(c.check).toMatchObject({ audiences: [], allowedCallers: [], cacheTtlMs: 5000 });
    expect(c.maxBodyBytes).toBe(1024 * 1024);
  });

  it('reads lists and numbers from the environment', () => {
    const c = loadConfig({
      GOOGLE_CLOUD_PROJECT: 'acme',
      CLEARANCE_CHECK_ALLOWED_CALLERS:
        ' deployer@acme.iam.gserviceaccount.com , ci@acme.iam.gserviceaccount.com ',
      CLEARANCE_CHECK_CACHE_TTL_MS: '2500',
      CLEARANCE_SIGNER: 'kms',
    });
    expect(c.projectId).toBe('acme');
    expect(c.check.allowedCallers).toEqual([
      'deployer@acme.iam.gserviceaccount.com',
      'ci@acme.iam.gserviceaccount.com',
    ]);
    expect(c.check.cacheTtlMs).toBe(2500);
    expect(c.signer.kind).toBe('kms');
  });

  it('refuses bad values with every problem named', () => {
    let err: unknown;
    try {
      loadConfig({ CLEARANCE_SIGNER: 'hsm', CLEARANCE_CHECK_CACHE_TTL_MS: 'soon' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ClearanceError);
    const e = err as ClearanceError;
    expect(e.code).toBe('invalid-config');
    expect(e.message).toContain('CLEARANCE_SIGNER');
    expect(e.message).toContain('CLEARANCE_CHECK_CACHE_TTL_MS');
  });

  it('gives each webhook registry its own secret, bound to the hosts it names', () => {
    const c = loadConfig({
      CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: 'distribution-secret-0123456789',
      CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: 'registry.acme.example, 127.0.0.1:*',
      CLEARANCE_WEBHOOK_GITHUB_SECRET: 'github-secret-0123456789',
      CLEARANCE_REPORT_TOKEN: 'report-token-0123456789',
      CLEARANCE_REPORT_AUDIENCES: 'https://r-p.cloudfunctions.net/clearance-ingest-report',
      CLEARANCE_REPORT_ALLOWED_CALLERS: 'ci@acme.iam.gserviceaccount.com',
    });
    expect(c.webhooks).toEqual({
      distribution: {
        kind: 'distribution',
        secret: 'distribution-secret-0123456789',
        hosts: ['registry.acme.example', '127.0.0.1:*'],
      },
      harbor: null,
      github: { kind: 'github', secret: 'github-secret-0123456789', hosts: ['ghcr.io'] },
    });
    expect(c.report).toMatchObject({
      audiences: ['https://r-p.cloudfunctions.net/clearance-ingest-report'],
      allowedCallers: ['ci@acme.iam.gserviceaccount.com'],
      bearerToken: 'report-token-0123456789',
    });
    // The check's lists are the check's own: nothing above reaches them.
    expect(c.check.audiences).toEqual([]);
  });

  it('refuses a webhook secret without hosts, Google hosts, shared secrets and the old shared token', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return 'ok';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(problems({ CLEARANCE_WEBHOOK_HARBOR_TOKEN: 'harbor-secret-0123456789' })).toMatch(
      /CLEARANCE_WEBHOOK_HARBOR_HOSTS: name the registry hosts/,
    );
    expect(
      problems({
        CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: 'distribution-secret-0123456789',
        CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: 'us-docker.pkg.dev',
      }),
    ).toMatch(/Google registry: its events come only from the gcr topic/);
    expect(
      problems({
        CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: 'same-secret-0123456789',
        CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: 'registry.acme.example',
        CLEARANCE_REPORT_TOKEN: 'same-secret-0123456789',
      }),
    ).toMatch(/each channel needs its own secret/);
    expect(problems({ CLEARANCE_REPORT_TOKEN: 'short' })).toMatch(/at least 16 characters/);
    expect(problems({ CLEARANCE_INGEST_TOKEN: 'legacy-token-0123456789' })).toMatch(
      /CLEARANCE_INGEST_TOKEN is gone/,
    );
  });
});
