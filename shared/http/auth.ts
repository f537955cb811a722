// Authenticates deploy-time and ingest callers: a Google ID token from an allowed service account, or a configured bearer token.
import * as crypto from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { OAuth2Client } from 'google-auth-library';
import { ClearanceError } from '../errors.js';

export interface Caller {
  kind: 'bearer' | 'google';
  /** Service-account email for Google callers; 'bearer-token' otherwise. */
  id: string;
}

export interface Authenticator {
  authenticate(headers: IncomingHttpHeaders): Promise<Caller>;
  /**
   * Synchronously, the caller of the configured bearer token or of an ID token verified before
   * (until it expires), or null: then call authenticate.
   */
  cachedCaller(headers: IncomingHttpHeaders): Caller | null;
}

export interface AuthOptions {
  bearerToken?: string | undefined;
  audiences: string[];
  allowedCallers: string[];
  /** Overrides Google's certificate URL (tests serve their own keys). */
  certsUrl?: string | undefined;
  /** Milliseconds since the epoch; ID-token expiry is checked against it (tests pass their own). */
  now?: () => number;
  /** Built lazily on the first ID token, so bearer-only callers never load google-auth-library. */
  oauthClient?: () => Promise<Pick<OAuth2Client, 'verifyIdToken'>>;
}

/** One-shot hashing (Node ≥ 20.12) costs a fraction of a Hash object, and the check's hot path hashes every request's token. */
const digest: (s: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (s) => crypto.hash('sha256', s, 'buffer')
    : (s) => crypto.createHash('sha256').update(s).digest();

/** Compares in constant time whatever the lengths, so timing reveals nothing about the token. */
export function tokenEquals(given: string, expected: string): boolean {
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

/** A token matcher with the expected digest computed once (the check's hot path). */
export function tokenMatcher(expected: string): (given: string) => boolean {
  const want = digest(expected);
  return (given) => crypto.timingSafeEqual(digest(given), want);
}

function bearerOf(headers: IncomingHttpHeaders): string | null {
  const h = headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? (m[1] as string) : null;
}

const looksLikeJwt = (t: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(t);

export function createAuthenticator(options: AuthOptions): Authenticator {
  const bearerMatches = options.bearerToken ? tokenMatcher(options.bearerToken) : () => false;
  let client: Promise<Pick<OAuth2Client, 'verifyIdToken'>> | undefined;
  const oauth = () => {
    client ??=
      options.oauthClient?.() ??
      (async () => {
        const { OAuth2Client } = await import('google-auth-library');
        return new OAuth2Client(
          options.certsUrl
            ? { endpoints: { oauth2FederatedSignonPemCertsUrl: options.certsUrl } }
            : {},
        );
      })();
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
  const BEARER: Caller = Object.freeze({ kind: 'bearer', id: 'bearer-token' });
  const now = options.now ?? Date.now;
  // Verified ID tokens, so a caller's repeated requests skip the RS256 verification until expiry.
  const verified = new Map<string, { caller: Caller; expires: number }>();
  const MAX_VERIFIED = 1_000;
  const VERIFIED_MAX_AGE_MS = 5 * 60_000;
  return {
    cachedCaller(headers) {
      const token = bearerOf(headers);
      if (!token) return null;
      if (bearerMatches(token)) return BEARER;
      const v = verified.get(token);
      if (!v) return null;
      if (v.expires > now()) return v.caller;
      verified.delete(token);
      return null;
    },
    async authenticate(headers) {
      const token = bearerOf(headers);
      if (!token) throw new ClearanceError('unauthenticated', 'missing bearer credentials');
      if (bearerMatches(token)) return BEARER;
      if (!looksLikeJwt(token) || options.audiences.length === 0) {
        throw new ClearanceError('unauthenticated', 'invalid credentials');
      }
      let email: string | undefined;
      let expiresAt: number | undefined;
      try {
        const ticket = await (await oauth()).verifyIdToken({
          idToken: token,
          audience: options.audiences,
        });
        const payload = ticket.getPayload();
        if (payload?.email_verified !== false) email = payload?.email;
        expiresAt = payload?.exp === undefined ? undefined : payload.exp * 1000;
      } catch (err) {
        // Certificates that cannot be fetched are an outage, not a bad token: fail closed with a 5xx.
        if (
          err instanceof Error &&
          /certs|ECONNREFUSED|fetch|network|ENOTFOUND/i.test(err.message)
        ) {
          throw new ClearanceError('unavailable', 'could not verify the ID token', { cause: err });
        }
        throw new ClearanceError('unauthenticated', 'invalid credentials', { cause: err });
      }
      if (!email || !options.allowedCallers.includes(email)) {
        throw new ClearanceError('forbidden', 'caller is not allowed');
      }
      const caller: Caller = Object.freeze({ kind: 'google', id: email });
      if (verified.size >= MAX_VERIFIED) verified.clear();
      verified.set(token, {
        caller,
        expires: Math.min(expiresAt ?? 0, now() + VERIFIED_MAX_AGE_MS),
      });
      return caller;
    },
  };
}

/**
 * The authenticator a function builds from its config: Google ID tokens against the check's
 * audiences and allowed callers, or `bearerToken`. Null when neither is configured, so the caller
 * can refuse everyone (fail closed) with a message saying what to configure.
 */
export function authenticatorFromConfig(
  check: { audiences: string[]; allowedCallers: string[]; certsUrl?: string | undefined },
  bearerToken: string | undefined,
): Authenticator | null {
  const google = check.audiences.length > 0 && check.allowedCallers.length > 0;
  if (!bearerToken && !google) return null;
  return createAuthenticator({
    bearerToken,
    audiences: check.audiences,
    allowedCallers: check.allowedCallers,
    certsUrl: check.certsUrl,
  });
}
