// Registry credentials behind one small interface: anonymous bearer tokens for public registries, Google access tokens for gcr.io and Artifact Registry.

import { type Clock, systemClock } from '../clock.js';
import { ClearanceError, TransientError } from '../errors.js';
import { TokenResponse } from './schemas.js';

/** One challenge of a WWW-Authenticate header; `scheme` is lower case (bearer, basic). */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

export interface TokenRequest {
  /** Registry host as the caller named it (e.g. us-docker.pkg.dev, 127.0.0.1:5000). */
  registry: string;
  repository: string;
  /** Token scope, e.g. `repository:p/r/img:pull`. */
  scope: string;
  challenge: AuthChallenge;
}

/**
 * Gives the Authorization header value for a registry request that was challenged, or null
 * when it has no credentials for it (the request then fails as unauthenticated).
 */
export interface TokenSource {
  authorization(request: TokenRequest): Promise<string | null>;
  /** Forgets a cached token the registry has just refused, so the next call fetches a new one. */
  invalidate?(request: TokenRequest): void;
}

export type FetchLike = typeof fetch;

/** Parses `Bearer realm="…",service="…",scope="a,b"` (quoted values may hold commas). */
export function parseChallenge(header: string | null | undefined): AuthChallenge | null {
  if (!header) return null;
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (const p of m[2].matchAll(re)) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

function hostOf(url: URL): string {
  return url.host.toLowerCase();
}

function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '');
  return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || /^127\./.test(h);
}

interface BearerOptions {
  fetch?: FetchLike;
  clock?: Clock;
  timeoutMs?: number;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

/**
 * The Docker token flow shared by the anonymous and Google sources: GET the realm with
 * service and scope, optionally with credentials, and cache the token per (realm, service,
 * scope, credential kind) until shortly before it expires.
 */
function bearerFlow(
  opts: BearerOptions,
  kind: string,
): {
  fetchToken(request: TokenRequest, credentials: () => Promise<string | null>): Promise<string>;
  forget(request: TokenRequest): void;
} {
  const doFetch = opts.fetch ?? fetch;
  const clock = opts.clock ?? systemClock;
  const cache = new Map<string, CachedToken>();
  const keyOf = (r: TokenRequest) =>
    [kind, r.challenge.params.realm, r.challenge.params.service ?? '', r.scope].join('\n');
  return {
    forget: (request) => {
      cache.delete(keyOf(request));
    },
    async fetchToken(request, credentials) {
      const key = keyOf(request);
      const now = clock.now().getTime();
      const hit = cache.get(key);
      if (hit && hit.expiresAt > now) return hit.value;
      const realm = request.challenge.params.realm;
      let url: URL;
      try {
        url = new URL(realm ?? '');
      } catch {
        throw new ClearanceError(
          'forbidden',
          `registry ${request.registry} sent a bearer challenge without a valid realm`,
          {
            details: { registry: request.registry },
          },
        );
      }
      if (request.challenge.params.service)
        url.searchParams.set('service', request.challenge.params.service);
      if (request.scope) url.searchParams.set('scope', request.scope);
      // Credentials are fetched only on a cache miss.
      const authorization = await credentials();
      let res: Response;
      try {
        res = await doFetch(url, {
          headers: authorization ? { authorization } : {},
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
          redirect: 'error',
        });
      } catch (err) {
        throw new TransientError(`token service of ${request.registry} unreachable`, {
          cause: err,
          code: isTimeout(err) ? 'timeout' : 'unavailable',
          details: { registry: request.registry, realm: hostOf(url) },
        });
      }
      if (res.status === 429 || res.status >= 500) {
        await res.body?.cancel();
        throw new TransientError(`token service of ${request.registry} answered ${res.status}`, {
          details: { registry: request.registry, status: res.status },
        });
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new ClearanceError(
          'forbidden',
          `token service of ${request.registry} refused scope ${request.scope} (${res.status})`,
          {
            details: { registry: request.registry, status: res.status, scope: request.scope },
          },
        );
      }
      const text = await res.text();
      let parsed: TokenResponse;
      try {
        parsed = TokenResponse.parse(JSON.parse(text));
      } catch (err) {
        throw new ClearanceError(
          'forbidden',
          `token service of ${request.registry} sent no usable token`,
          {
            cause: err,
            details: { registry: request.registry },
          },
        );
      }
      const token = parsed.token ?? parsed.access_token ?? '';
      const lifetimeMs = (parsed.expires_in ?? 60) * 1000;
      const issued = parsed.issued_at ? Date.parse(parsed.issued_at) : Number.NaN;
      const start = Number.isFinite(issued) ? Math.min(issued, now) : now;
      // Renew a little early so a token does not expire between the check and the request.
      const margin = Math.min(30_000, lifetimeMs / 4);
      const value = `Bearer ${token}`;
      cache.set(key, { value, expiresAt: start + lifetimeMs - margin });
      return value;
    },
  };
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** Public registries: follows the bearer challenge without credentials; no answer to Basic. */
export function anonymousTokenSource(opts: BearerOptions = {}): TokenSource {
  const flow = bearerFlow(opts, 'anonymous');
  return {
    async authorization(request) {
      if (request.challenge.scheme !== 'bearer') return null;
      return flow.fetchToken(request, async () => null);
    },
    invalidate: (request) => flow.forget(request),
  };
}

/** gcr.io, *.gcr.io and Artifact Registry hosts (*.pkg.dev, e.g. us-docker.pkg.dev). */
export function isGoogleRegistryHost(host: string): boolean {
  const h = host.toLowerCase().replace(/:\d+$/, '');
  return h === 'gcr.io' || h.endsWith('.gcr.io') || h === 'pkg.dev' || h.endsWith('.pkg.dev');
}

export interface GoogleTokenSourceOptions extends BearerOptions {
  /** Which registries get the Google credentials; default isGoogleRegistryHost. */
  isGoogleHost?: (host: string) => boolean;
  /** For every other registry; default anonymousTokenSource with the same fetch and clock. */
  fallback?: TokenSource;
}

/**
 * Google registries take the access token as the password of user `oauth2accesstoken`:
 * directly on a Basic challenge, or against the bearer challenge's realm. The access token is
 * a credential, so it only goes to a realm that is itself a Google host over HTTPS (or
 * loopback, where tests stand in for Google).
 */
export function googleTokenSource(
  getAccessToken: () => Promise<string | null | undefined>,
  opts: GoogleTokenSourceOptions = {},
): TokenSource {
  const isGoogle = opts.isGoogleHost ?? isGoogleRegistryHost;
  const fallback = opts.fallback ?? anonymousTokenSource(opts);
  const flow = bearerFlow(opts, 'google');
  const basic = async (registry: string): Promise<string> => {
    let token: string | null | undefined;
    try {
      token = await getAccessToken();
    } catch (err) {
      throw new TransientError(`could not get a Google access token for ${registry}`, {
        cause: err,
      });
    }
    if (!token) throw new TransientError(`no Google access token for ${registry}`);
    return `Basic ${Buffer.from(`oauth2accesstoken:${token}`).toString('base64')}`;
  };
  return {
    async authorization(request) {
      if (!isGoogle(request.registry)) return fallback.authorization(request);
      switch (request.challenge.scheme) {
        case 'basic':
          return basic(request.registry);
        case 'bearer': {
          const realm = URL.canParse(request.challenge.params.realm ?? '')
            ? new URL(request.challenge.params.realm)
            : null;
          if (
            !realm ||
            !isGoogle(hostOf(realm)) ||
            (realm.protocol !== 'https:' && !isLoopback(hostOf(realm)))
          ) {
            throw new ClearanceError(
              'forbidden',
              `refusing to send Google credentials to the token realm of ${request.registry}`,
              {
                details: { registry: request.registry, realm: realm ? hostOf(realm) : null },
              },
            );
          }
          return flow.fetchToken(request, () => basic(request.registry));
        }
        default:
          return null;
      }
    },
    invalidate(request) {
      if (isGoogle(request.registry)) flow.forget(request);
      else fallback.invalidate?.(request);
    },
  };
}

/**
 * Production token source: Application Default Credentials through google-auth-library,
 * imported on first use so functions that never reach a registry do not pay for it.
 */
export function googleAuthTokenSource(opts: GoogleTokenSourceOptions = {}): TokenSource {
  let client: Promise<{ getAccessToken(): Promise<string | null | undefined> }> | undefined;
  return googleTokenSource(async () => {
    client ??= import('google-auth-library').then(
      ({ GoogleAuth }) =>
        new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }),
    );
    return (await client).getAccessToken();
  }, opts);
}
