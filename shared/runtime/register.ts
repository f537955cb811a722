// Registers handlers with functions-framework: one place, typed, no casts at the call sites.
import type { IncomingMessage } from 'node:http';
import * as ff from '@google-cloud/functions-framework';
import { ClearanceError } from '../errors.js';
import type { CloudEventLike } from '../events/pubsub-message.js';
import type { Authenticator } from '../http/auth.js';
import type { HttpRequestLike, HttpResponseLike } from '../http/http-function.js';
import { gateFunction } from './body-gate.js';
import { root } from './root.js';

export type HttpHandler = (
  req: HttpRequestLike,
  res: HttpResponseLike,
) => Promise<void> | undefined;
export type EventHandler = (event: CloudEventLike) => Promise<void>;

export interface HttpGate {
  /**
   * Authenticates on the headers alone, before the body is read (throw to refuse; return a
   * promise only when work is needed). Absent for functions whose credential covers the body.
   */
  authenticate?: (req: IncomingMessage) => unknown;
  /** The body cap; CLEARANCE_MAX_BODY_BYTES by default. */
  maxBodyBytes?: () => number;
  /** A body that is not valid JSON reaches the handler as its bytes (it dead-letters them). */
  handOnBadJson?: boolean;
}

/** An HTTP function: the framework's express request and response are what HttpRequestLike names. */
export function registerHttp(name: string, handler: HttpHandler, gate: HttpGate = {}): void {
  const fn = (req: ff.Request, res: ff.Response) => handler(req, res);
  gateFunction(fn, {
    name,
    kind: 'http',
    maxBodyBytes: gate.maxBodyBytes ?? (() => root().config.maxBodyBytes),
    ...(gate.authenticate ? { authenticate: gate.authenticate } : {}),
    ...(gate.handOnBadJson ? { handOnBadJson: true } : {}),
  });
  ff.http(name, fn);
}

/** Room for the push envelope around base64 message data of the largest accepted size. */
const ENVELOPE_BYTES = 64 * 1024;

/**
 * A CloudEvent (Pub/Sub push) function. Pub/Sub authenticates to the push endpoint (the Cloud Run
 * invoker role of the subscription's service account); the gate caps and parses the envelope.
 */
export function registerEvent(name: string, handler: EventHandler): void {
  const fn = (event: CloudEventLike) => handler(event);
  gateFunction(fn, {
    name,
    kind: 'event',
    maxBodyBytes: () => Math.ceil((root().config.maxBodyBytes * 4) / 3) + ENVELOPE_BYTES,
  });
  ff.cloudEvent<unknown>(name, fn);
}

/**
 * A gate authentication from an endpoint's authenticator: the paths in `open` (health checks)
 * pass; a missing authenticator refuses everyone (fail closed), as the handler itself would.
 */
export function headerAuth(
  authenticator: () => Authenticator | null | Promise<Authenticator | null>,
  open: readonly string[] = ['/healthz'],
): (req: IncomingMessage) => unknown {
  return (req) => {
    const path = (req.url ?? '/').split('?')[0]?.replace(/\/+$/, '') || '/';
    if (open.includes(path)) return undefined;
    const check = (a: Authenticator | null) => {
      if (!a) throw new ClearanceError('unauthenticated', 'authentication is not configured');
      return a.cachedCaller(req.headers) ?? a.authenticate(req.headers);
    };
    const a = authenticator();
    return a instanceof Promise ? a.then(check) : check(a);
  };
}
