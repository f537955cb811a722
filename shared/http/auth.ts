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
  oauthClient?: () => Promise<IdTokenClient>;
}

/** The two steps of ID-token verification, kept apart so an outage and a bad token are told apart by step. */
export type IdTokenClient = Pick<OAuth2Client, 'verifyIdToken' | 'getFederatedSignonCertsAsync'>;

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
  let client: Promise<IdTokenClient> | undefined;
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
      const c = await oauth();
      try {
        // Fetching Google's signing certificates (cached by the client) is the only step that can
        // fail for want of a dependency; it runs on its own so its failure is an outage (5xx).
        await c.getFederatedSignonCertsAsync();
      } catch (err) {
        throw new ClearanceError('unavailable', 'could not fetch the ID-token signing keys', {
          cause: err,
        });
      }
      let payload: { email?: string; email_verified?: boolean; exp?: number } | undefined;
      try {
        // With the keys in hand, any failure is the token's: 401. The library's message quotes
        // parts of the token, so it is never matched on, only kept as the cause.
        payload = (
          await c.verifyIdToken({ idToken: token, audience: options.audiences })
        ).getPayload();
      } catch (err) {
        throw new ClearanceError('unauthenticated', 'invalid credentials', { cause: err });
      }
      // Only a verified email names a caller: an absent claim is not a verified one.
      const email = payload?.email_verified === true ? payload.email : undefined;
      const expiresAt = payload?.exp === undefined ? undefined : payload.exp * 1000;
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

/** One endpoint's callers: ID tokens for its own audiences from its own service accounts, or its own bearer token. */
export interface EndpointAuthConfig {
  audiences: string[];
  allowedCallers: string[];
  bearerToken?: string | undefined;
  certsUrl?: string | undefined;
}

/**
 * The authenticator an HTTP function builds from its own section of the config. Null when neither
 * credential is configured, so the caller can refuse everyone (fail closed) and say what to set.
 */
export function authenticatorFromConfig(c: EndpointAuthConfig): Authenticator | null {
  const google = c.audiences.length > 0 && c.allowedCallers.length > 0;
  if (!c.bearerToken && !google) return null;
  return createAuthenticator({
    bearerToken: c.bearerToken,
    audiences: google ? c.audiences : [],
    allowedCallers: c.allowedCallers,
    certsUrl: c.certsUrl,
  });
}
