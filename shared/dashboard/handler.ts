// The dashboard's HTTP handling: authentication (ID token, bearer or sign-in cookie), validated queries, strict headers, HTML out.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { ClearanceError, errorMessage, InvalidInputError, isRetryable } from '../errors.js';
import type { Authenticator } from '../http/auth.js';
import type { HttpRequestLike, HttpResponseLike } from '../http/http-function.js';
import type { Logger } from '../logging/logger.js';
import type { SafeHtml } from './html.js';
import { errorPage, imagePage, imagesPage, layout, loginPage, overviewPage } from './pages.js';
import { ImagesFilter, listImages, readImage, readOverview } from './queries.js';

export const SESSION_COOKIE = 'clearance_dashboard';
const MAX_BODY = 4096;
const SESSION_SECONDS = 3600;

export interface DashboardDeps {
  db: () => Promise<Firestore>;
  clock: Clock;
  logger: Logger;
  /** Null when nothing is configured: every request is refused (fail closed). */
  auth: Authenticator | null;
}

/** Empty form fields mean "no filter"; repeated parameters arrive as arrays and are refused. */
const blankToUndefined = (q: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(q).filter(([, v]) => v !== ''));
const NoQuery = z.strictObject({});
const ImageQuery = z.strictObject({ id: z.string().min(1).max(800) });
const LoginBody = z.strictObject({ token: z.string().min(1).max(4096) });

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `style-src 'nonce-${nonce}'`,
    "img-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function cookieToken(header: string | undefined): string | null {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === SESSION_COOKIE && v.length > 0) return decodeURIComponent(v.join('='));
  }
  return null;
}

const STATUS: Record<string, number> = {
  'invalid-input': 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  'payload-too-large': 413,
  'invalid-config': 503,
  unavailable: 503,
};

function parseQuery<T>(schema: z.ZodType<T>, raw: Record<string, unknown>): T {
  const r = schema.safeParse(blankToUndefined(raw));
  if (r.success) return r.data;
  throw new InvalidInputError(
    `bad query: ${r.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ')}`,
  );
}

export function buildDashboardHandler(
  deps: DashboardDeps,
): (req: HttpRequestLike, res: HttpResponseLike) => Promise<void> {
  return async (req, res) => {
    const nonce = randomBytes(16).toString('base64');
    const requestId = randomUUID();
    const send = (
      status: number,
      title: string,
      body: SafeHtml,
      headers: Record<string, string> = {},
    ) => {
      res.set('content-type', 'text/html; charset=utf-8');
      res.set('content-security-policy', contentSecurityPolicy(nonce));
      res.set('x-content-type-options', 'nosniff');
      res.set('referrer-policy', 'no-referrer');
      res.set('x-frame-options', 'DENY');
      res.set('cache-control', 'no-store');
      res.set('x-request-id', requestId);
      for (const [k, v] of Object.entries(headers)) res.set(k, v);
      res.status(status).send(layout(title, nonce, body));
    };
    const path = req.path.replace(/\/+$/, '') || '/';
    try {
      if (path === '/healthz') return void res.status(200).send('ok');
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_BODY || (req.rawBody?.length ?? 0) > MAX_BODY) {
        throw new ClearanceError(
          'payload-too-large',
          `request body is larger than ${MAX_BODY} bytes`,
        );
      }
      if (!deps.auth) {
        throw new ClearanceError(
          'invalid-config',
          'the dashboard has no authentication configured: set CLEARANCE_DASHBOARD_TOKEN, or CLEARANCE_DASHBOARD_AUDIENCES and CLEARANCE_DASHBOARD_ALLOWED_CALLERS',
        );
      }
      if (path === '/login') {
        if (req.method === 'GET') return send(200, 'Sign in', loginPage(null));
        if (req.method !== 'POST') throw new InvalidInputError('use GET or POST');
        const body = LoginBody.safeParse(req.body);
        if (!body.success) return send(400, 'Sign in', loginPage('Paste a token.'));
        try {
          await deps.auth.authenticate({ authorization: `Bearer ${body.data.token}` });
        } catch (err) {
          if (err instanceof ClearanceError && err.code === 'unavailable') throw err;
          return send(401, 'Sign in', loginPage('That token was refused.'));
        }
        const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
        res.set(
          'set-cookie',
          `${SESSION_COOKIE}=${encodeURIComponent(body.data.token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_SECONDS}${secure}`,
        );
        res.set('location', 'overview');
        res.set('cache-control', 'no-store');
        return void res.status(303).send('');
      }
      const fromCookie = req.headers.authorization ? null : cookieToken(req.headers.cookie);
      const headers = fromCookie ? { authorization: `Bearer ${fromCookie}` } : req.headers;
      try {
        deps.auth.cachedCaller(headers) ?? (await deps.auth.authenticate(headers));
      } catch (err) {
        if (err instanceof ClearanceError && err.code === 'unauthenticated') {
          return send(401, 'Sign in', loginPage(fromCookie ? 'Your session has expired.' : null));
        }
        throw err;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new InvalidInputError('the dashboard only answers GET');
      }
      const now = deps.clock.now();
      const db = await deps.db();
      switch (path) {
        case '/':
        case '/overview': {
          parseQuery(NoQuery, req.query);
          const o = await readOverview(db, now);
          return send(200, 'Overview', overviewPage(o, now), {
            'x-clearance-reads': String(o.reads),
          });
        }
        case '/images': {
          const f = parseQuery(ImagesFilter, req.query);
          const a = await listImages(db, f, now);
          return send(200, 'Images', imagesPage(f, a), { 'x-clearance-reads': String(a.reads) });
        }
        case '/image': {
          const { id } = parseQuery(ImageQuery, req.query);
          const d = await readImage(db, id);
          if (!d) throw new ClearanceError('not-found', `no image ${id} in the ledger`);
          return send(200, d.image.repository, imagePage(d), {
            'x-clearance-reads': String(d.reads),
          });
        }
        default:
          throw new ClearanceError('not-found', `no page ${path}`);
      }
    } catch (err) {
      const code =
        err instanceof ClearanceError ? err.code : isRetryable(err) ? 'unavailable' : 'internal';
      const status = STATUS[code] ?? 500;
      if (status >= 500) deps.logger.error('dashboard request failed', { err, code, requestId });
      else deps.logger.warn('dashboard request refused', { code, reason: errorMessage(err) });
      if (res.headersSent) return;
      const message =
        status < 500 || code === 'invalid-config'
          ? errorMessage(err)
          : `internal error (request ${requestId})`;
      send(status, String(status), errorPage(status, message));
    }
  };
}
