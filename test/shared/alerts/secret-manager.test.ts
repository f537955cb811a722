import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretManagerSource, secretSource } from '../../../shared/alerts/secrets.js';
import { fixedClock } from '../../../shared/clock.js';
import { ClearanceError, TransientError } from '../../../shared/errors.js';
import { redact } from '../../../shared/logging/logger.js';
import { type SecretManagerServer, startSecretManagerServer } from './secret-manager-server.js';

const NAME = 'projects/acme/secrets/payments-slack/versions/latest';
const URL_VALUE = 'https://hooks.example.com/services/T0AAA/B0BBB/sm-slack-secret-4f1c9e';

function authClient(): OAuth2Client {
  const c = new OAuth2Client();
  c.setCredentials({ access_token: 'fixed-test-token', expiry_date: Date.now() + 3_600_000 });
  return c;
}

describe('Secret Manager source, through the real SecretManagerServiceClient (REST fallback)', () => {
  let sm: SecretManagerServer;
  beforeAll(async () => {
    sm = await startSecretManagerServer({ [NAME]: `${URL_VALUE}\n` });
  });
  afterAll(async () => {
    await sm.close();
  });

  function source(clock = fixedClock('2026-11-29T10:00:00Z'), ttlMs = 60_000) {
    return secretManagerSource({
      clock,
      ttlMs,
      clientOptions: {
        fallback: true,
        apiEndpoint: '127.0.0.1',
        port: sm.port,
        protocol: 'http',
        authClient: authClient(),
      } as never,
    });
  }

  it('reads the payload, trims it, checks its CRC32C and sends the bearer token', async () => {
    sm.requests.length = 0;
    await expect(source().resolve(NAME)).resolves.toBe(URL_VALUE);
    expect(sm.requests).toEqual([
      { method: 'GET', path: `/v1/${NAME}:access`, authorization: 'Bearer fixed-test-token' },
    ]);
  });

  it('registers the value and its secret parts with the log scrubber', async () => {
    await source().resolve(NAME);
    expect(redact(`posting to ${URL_VALUE} failed`)).toBe('posting to [redacted] failed');
    expect(redact('token sm-slack-secret-4f1c9e leaked')).not.toContain('sm-slack-secret-4f1c9e');
  });

  it('caches for the TTL, then reads again (a rotated URL is picked up)', async () => {
    const clock = fixedClock('2026-11-29T10:00:00Z');
    const s = source(clock, 60_000);
    sm.requests.length = 0;
    await s.resolve(NAME);
    await s.resolve(NAME);
    clock.advance(59_999);
    await s.resolve(NAME);
    expect(sm.requests).toHaveLength(1);
    sm.secrets.set(NAME, `${URL_VALUE}-rotated`);
    clock.advance(2);
    await expect(s.resolve(NAME)).resolves.toBe(`${URL_VALUE}-rotated`);
    expect(sm.requests).toHaveLength(2);
    sm.secrets.set(NAME, URL_VALUE);
  });

  it('shares one request between concurrent lookups', async () => {
    const s = source();
    sm.requests.length = 0;
    await Promise.all([s.resolve(NAME), s.resolve(NAME), s.resolve(NAME)]);
    expect(sm.requests).toHaveLength(1);
  });

  it('treats a CRC32C mismatch as transient', async () => {
    sm.corrupt.add(NAME);
    try {
      await expect(source().resolve(NAME)).rejects.toBeInstanceOf(TransientError);
    } finally {
      sm.corrupt.delete(NAME);
    }
  });

  it('treats a missing secret as a configuration error, not a retry', async () => {
    const err = await source()
      .resolve('projects/acme/secrets/nope/versions/latest')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClearanceError);
    expect((err as ClearanceError).code).toBe('invalid-config');
    expect((err as ClearanceError).retryable).toBe(false);
  });

  it('dispatches env: and file: references locally', async () => {
    const s = secretSource({
      env: undefined,
      secretManager: source(),
    });
    process.env.CLEARANCE_TEST_LOCAL_HOOK = 'https://local.example/hook?token=local-env-secret';
    try {
      await expect(s.resolve('env:CLEARANCE_TEST_LOCAL_HOOK')).resolves.toContain('local-env');
      await expect(s.resolve(NAME)).resolves.toBe(URL_VALUE);
      await expect(s.resolve('env:CLEARANCE_TEST_UNSET_HOOK')).rejects.toThrow(/is not set/);
      await expect(s.resolve('file:/nonexistent/hook')).rejects.toThrow(/cannot be read/);
      expect(redact('x local-env-secret y')).toBe('x [redacted] y');
    } finally {
      delete process.env.CLEARANCE_TEST_LOCAL_HOOK;
    }
  });
});
