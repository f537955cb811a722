// Wraps an HTTP handler: request id, body cap, JSON errors without stack traces or secrets.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ClearanceError, errorMessage, isRetryable } from '../errors.js';
import { type Logger, traceFields } from '../logging/logger.js';
import { withDeadline } from '../runtime/deadline.js';
import { root as defaultRoot, type Root } from '../runtime/root.js';

/** The parts of functions-framework's (express) request the handlers use. */
export interface HttpRequestLike {
  method: string;
  path: string;
  url: string;
  headers: IncomingHttpHeaders;
  query: Record<string, unknown>;
  body?: unknown;
  rawBody?: Buffer;
}

export interface HttpResponseLike {
  status(code: number): HttpResponseLike;
  set(field: string, value: string): HttpResponseLike;
  json(body: unknown): void;
  send(body: unknown): void;
  headersSent: boolean;
}

export interface HttpResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface HttpContext {
  root: Root;
  logger: Logger;
  now: Date;
  requestId: string;
  /** Aborted when the request was answered at its deadline (`deadline: true`); never otherwise. */
  signal: AbortSignal;
}

const STATUS: Record<string, number> = {
  'invalid-input': 400,
  'invalid-policy': 400,
  'invalid-config': 500,
  'not-found': 404,
  unauthenticated: 401,
  forbidden: 403,
  'payload-too-large': 413,
  integrity: 502,
  unavailable: 503,
  timeout: 504,
  conflict: 409,
};

export function bodyBytes(req: HttpRequestLike): number {
  if (req.rawBody) return req.rawBody.length;
  const len = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(len) ? len : 0;
}

export function httpFunction(
  name: string,
  handle: (req: HttpRequestLike, ctx: HttpContext) => Promise<HttpResult>,
  options: {
    getRoot?: () => Root;
    maxBodyBytes?: number;
    /**
     * Answer 504 with Retry-After at the handler deadline (CLEARANCE_HANDLER_DEADLINE_MS) instead of
     * waiting on a backend for minutes: for senders that retry (registries, CI), whose own timeout
     * would otherwise expire first with no answer.
     */
    deadline?: boolean;
  } = {},
): (req: HttpRequestLike, res: HttpResponseLike) => Promise<void> {
  return async (req, res) => {
    const r = (options.getRoot ?? defaultRoot)();
    const requestId = randomUUID();
    const logger = r.logger.child({
      function: name,
      requestId,
      ...traceFields(req.headers, r.config.projectId),
    });
    const max = options.maxBodyBytes ?? r.config.maxBodyBytes;
    res.set('x-request-id', requestId);
    try {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > max || bodyBytes(req) > max) {
        throw new ClearanceError('payload-too-large', `request body is larger than ${max} bytes`);
      }
      const now = r.clock.now();
      const out = await withDeadline(
        (signal) => handle(req, { root: r, logger, now, requestId, signal }),
        options.deadline ? r.config.handlerDeadlineMs : 0,
      );
      for (const [k, v] of Object.entries(out.headers ?? {})) res.set(k, v);
      res.status(out.status).json(out.body);
    } catch (err) {
      const code =
        err instanceof ClearanceError ? err.code : isRetryable(err) ? 'unavailable' : 'internal';
      const status = STATUS[code] ?? 500;
      if (status >= 500) logger.error('request failed', { err, code });
      else logger.warn('request refused', { code, reason: errorMessage(err) });
      if (res.headersSent) return;
      if (code === 'timeout') res.set('retry-after', '10');
      // Client errors say what was wrong; server errors say only the request id, never internals.
      const message =
        status < 500 && err instanceof ClearanceError ? err.message : 'internal error';
      const problems =
        status < 500 && err instanceof ClearanceError
          ? (err.details?.issues ?? err.details?.problems)
          : undefined;
      res
        .status(status)
        .json({ error: { code, message, requestId, ...(problems ? { problems } : {}) } });
    }
  };
}
