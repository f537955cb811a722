import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClearanceError } from '../../../shared/errors.js';
import { createAuthenticator, tokenEquals } from '../../../shared/http/auth.js';
import { type IdTokenIssuer, startIdTokenIssuer } from '../../support/id-tokens.js';

const AUDIENCE = 'https://check.example.run.app';
const DEPLOYER = 'deployer@p.iam.gserviceaccount.com';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof ClearanceError ? err.code : `unexpected: ${String(err)}`;
  }
}

describe('createAuthenticator', () => {
  let issuer: IdTokenIssuer;
  beforeAll(async () => {
    issuer = await startIdTokenIssuer();
  });
  afterAll(() => issuer.close());

  const auth = () =>
    createAuthenticator({
      bearerToken: 'configured-bearer-token-0123456789',
      audiences: [AUDIENCE],
      allowedCallers: [DEPLOYER],
      certsUrl: issuer.certsUrl,
    });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('accepts an ID token for an allowed audience and service account', async () => {
    const caller = await auth().authenticate(
      bearer(issuer.mint({ aud: AUDIENCE, email: DEPLOYER })),
    );
    expect(caller).toEqual({ kind: 'google', id: DEPLOYER });
  });

  it('refuses a caller that is not allowed with forbidden (403)', async () => {
    const t = issuer.mint({ aud: AUDIENCE, email: 'someone@p.iam.gserviceaccount.com' });
    expect(await codeOf(auth().authenticate(bearer(t)))).toBe('forbidden');
  });

  it('refuses an unverified email with forbidden', async () => {
    const t = issuer.mint({ aud: AUDIENCE, email: DEPLOYER, email_verified: false });
    expect(await codeOf(auth().authenticate(bearer(t)))).toBe('forbidden');
  });

  it('refuses a token without the email_verified claim (absent is not verified)', async () => {
    const t = issuer.mint({ aud: AUDIENCE, email: DEPLOYER, email_verified: undefined });
    expect(await codeOf(auth().authenticate(bearer(t)))).toBe('forbidden');
    const asString = issuer.mint({ aud: AUDIENCE, email: DEPLOYER, email_verified: 'true' });
    expect(await codeOf(auth().authenticate(bearer(asString)))).toBe('forbidden');
  });

  it('answers 401, not 503, for a bad token whose text mentions certs, fetch or the network', async () => {
    // The library's error messages quote the token's parts: an attacker chooses that text.
    const a = auth();
    const header = Buffer.from(
      JSON.stringify({ alg: 'RS256', kid: 'certs ECONNREFUSED fetch network ENOTFOUND' }),
    ).toString('base64url');
    const claims = Buffer.from(
      JSON.stringify({ aud: 'https://certs.fetch.network/ECONNREFUSED', email: DEPLOYER }),
    ).toString('base64url');
    for (const t of [`${header}.${claims}.c2ln`, `${header}.bm90LWpzb24.c2ln`]) {
      expect(await codeOf(a.authenticate(bearer(t)))).toBe('unauthenticated');
    }
  });

  it('refuses a wrong audience, an expired token and a foreign signature as unauthenticated (401)', async () => {
    const a = auth();
    const wrongAud = issuer.mint({ aud: 'https://other.example', email: DEPLOYER });
    const expired = issuer.mint({
      aud: AUDIENCE,
      email: DEPLOYER,
      iat: Math.floor(Date.now() / 1000) - 7200,
      exp: Math.floor(Date.now() / 1000) - 3600,
    });
    const foreign = issuer.mintWithForeignKey({ aud: AUDIENCE, email: DEPLOYER });
    for (const t of [wrongAud, expired, foreign]) {
      expect(await codeOf(a.authenticate(bearer(t)))).toBe('unauthenticated');
    }
  });

  it('accepts the configured bearer token and refuses others and missing credentials', async () => {
    const a = auth();
    expect(await a.authenticate(bearer('configured-bearer-token-0123456789'))).toEqual({
      kind: 'bearer',
      id: 'bearer-token',
    });
    expect(await codeOf(a.authenticate(bearer('configured-bearer-token-012345678')))).toBe(
      'unauthenticated',
    );
    expect(await codeOf(a.authenticate({}))).toBe('unauthenticated');
    expect(await codeOf(a.authenticate({ authorization: 'Basic dXNlcjpwYXNz' }))).toBe(
      'unauthenticated',
    );
  });

  it('answers unavailable (5xx, fail closed) when the signing certificates cannot be fetched', async () => {
    const a = createAuthenticator({
      audiences: [AUDIENCE],
      allowedCallers: [DEPLOYER],
      certsUrl: 'http://127.0.0.1:9/certs',
    });
    const t = issuer.mint({ aud: AUDIENCE, email: DEPLOYER });
    expect(await codeOf(a.authenticate(bearer(t)))).toBe('unavailable');
  });

  it('remembers a verified ID token until it expires, and never a refused one', async () => {
    let now = Date.now();
    const a = createAuthenticator({
      audiences: [AUDIENCE],
      allowedCallers: [DEPLOYER],
      certsUrl: issuer.certsUrl,
      now: () => now,
    });
    const exp = Math.floor(now / 1000) + 120;
    const good = bearer(issuer.mint({ aud: AUDIENCE, email: DEPLOYER, exp }));
    expect(a.cachedCaller(good)).toBeNull();
    await a.authenticate(good);
    expect(a.cachedCaller(good)).toEqual({ kind: 'google', id: DEPLOYER });
    now += 121_000;
    expect(a.cachedCaller(good)).toBeNull();
    const stranger = bearer(issuer.mint({ aud: AUDIENCE, email: 'x@p.iam.gserviceaccount.com' }));
    expect(await codeOf(a.authenticate(stranger))).toBe('forbidden');
    expect(a.cachedCaller(stranger)).toBeNull();
  });

  it('compares tokens whatever their lengths', () => {
    expect(tokenEquals('abc', 'abc')).toBe(true);
    expect(tokenEquals('abc', 'abcd')).toBe(false);
    expect(tokenEquals('', 'abc')).toBe(false);
  });
});
