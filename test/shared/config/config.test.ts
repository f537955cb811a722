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
});
