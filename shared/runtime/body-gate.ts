// Guards functions-framework's server: body cap, authentication and our own parsing run before the framework reads a byte.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ClearanceError, errorMessage } from '../errors.js';
import { utf8OrNull } from '../json-bytes.js';
import { createLogger } from '../logging/logger.js';
import { installStructuredConsole } from './structured-console.js';

/**
 * What a function's gate enforces. functions-framework mounts body-parser (limit 1024 MB, every
 * content type) ahead of any user code and offers no option to change it, so the gate replaces
 * the server's request listener: it answers oversized and unauthenticated requests without
 * reading their bodies, reads the rest itself up to the cap, parses it, and hands the request on
 * fully read — body-parser skips a request whose body has been consumed (on-finished).
 */
export interface GateOptions {
  /** Function name, for log lines. */
  name: string;
  /**
   * `event`: a Pub/Sub push (CloudEvent) function. Its bad input is the handler's to dead-letter
   * with the exact bytes, so a body that is not a JSON object reaches it as `{}` (with the raw
   * bytes at hand) instead of crashing the framework's event middleware; GET answers a health
   * check there (the stack's readiness probe) and other methods 405.
   */
  kind: 'http' | 'event';
  /** Largest body accepted, in bytes (read before any parsing). */
  maxBodyBytes: () => number;
  /**
   * Runs on the headers before a byte of the body is read; throws a ClearanceError
   * (unauthenticated, forbidden, unavailable) to refuse. Absent: the function authenticates the
   * body itself (webhook HMACs, the dashboard's login form), still after the cap.
   */
  authenticate?: (req: IncomingMessage) => unknown;
  /**
   * An HTTP function that dead-letters its own bad input (webhooks, report uploads) gets a body
   * that is not valid JSON as its raw bytes, after authentication, instead of the gate's 400:
   * every rejected input is kept exactly as received.
   */
  handOnBadJson?: boolean;
}

/** The request being served: its exact bytes, for dead letters that keep the input as received. */
export interface GatedRequest {
  rawBody: Buffer;
}

const current = new AsyncLocalStorage<GatedRequest>();

/** The raw body of the request this code runs for, when it came through a gate. */
export function currentRawBody(): Buffer | undefined {
  return current.getStore()?.rawBody;
}

const gates = new WeakMap<object, GateOptions>();
const log = createLogger({ fields: { component: 'body-gate' } });

/** Declares the gate of a function object registered with functions-framework. */
export function gateFunction(userFunction: object, options: GateOptions): void {
  installServerHook();
  gates.set(userFunction, options);
}

type GetServer = (userFunction: object, options: { signatureType: string }) => Server;
let hooked = false;

/**
 * functions-framework builds its server through `getServer` in build/src/server.js, looked up on
 * the module's exports at call time by both its CLI (main.js) and its testing helper; wrapping
 * that export is the one seam it leaves. The server's single `request` listener (the express app)
 * is swapped for the gate, which calls it once the body is in hand.
 */
function installServerHook(): void {
  if (hooked) return;
  hooked = true;
  const require = createRequire(import.meta.url);
  const main = require.resolve('@google-cloud/functions-framework');
  const serverModule = require(join(dirname(main), 'server.js')) as { getServer: GetServer };
  const original = serverModule.getServer;
  serverModule.getServer = (userFunction, options) => {
    const server = original(userFunction, options);
    const gate = gates.get(userFunction);
    if (!gate) return server;
    if (startedByFrameworkCli(main)) installStructuredConsole();
    const [app] = server.listeners('request') as ((
      req: IncomingMessage,
      res: ServerResponse,
    ) => void)[];
    if (!app) return server;
    server.removeAllListeners('request');
    server.on('request', gatedListener(gate, app));
    return server;
  };
}

/**
 * Whether this process is functions-framework's own CLI (how Cloud Run starts a function). Only
 * then does the console become JSON: a benchmark or test that serves functions in its own process
 * keeps its console for its own figures.
 */
function startedByFrameworkCli(frameworkMain: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(join(dirname(frameworkMain), 'main.js'));
  } catch {
    return false;
  }
}

/** The parsed body as functions-framework's parsers would have produced it, from our own bytes. */
const JSON_TYPES = /^application\/(?:json|cloudevents\+json)$/;

function mediaType(headers: IncomingHttpHeaders): string {
  return String(headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

function hasBody(req: IncomingMessage): boolean {
  return (
    req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined
  );
}

export function parseBody(headers: IncomingHttpHeaders, raw: Buffer): unknown {
  const type = mediaType(headers);
  if (JSON_TYPES.test(type)) {
    if (raw.length === 0) return {};
    if (utf8OrNull(raw) === null)
      throw new ClearanceError('invalid-input', 'request body is not valid UTF-8 JSON');
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      // The parser's message quotes the body: it is never echoed or logged.
      throw new ClearanceError('invalid-input', 'request body is not valid JSON');
    }
  }
  if (type === 'text/plain') return raw.toString('utf8');
  if (type === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  return raw;
}

const STATUS: Record<string, number> = {
  'invalid-input': 400,
  unauthenticated: 401,
  forbidden: 403,
  'method-not-allowed': 405,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  unavailable: 503,
};

function refuse(res: ServerResponse, err: unknown, gate: GateOptions): void {
  const code = err instanceof ClearanceError ? err.code : 'internal';
  const status = STATUS[code] ?? 500;
  const message = status < 500 && err instanceof ClearanceError ? err.message : 'internal error';
  const requestId = randomUUID();
  if (status >= 500)
    log.error('request refused before the function ran', {
      function: gate.name,
      requestId,
      code,
      err,
    });
  else
    log.warn('request refused before the function ran', {
      function: gate.name,
      code,
      reason: errorMessage(err),
    });
  if (res.headersSent) return;
  const body = JSON.stringify({ error: { code, message, requestId } });
  // The unread rest of a refused body is discarded by node as it arrives (never buffered); closing
  // instead would reset the connection under a client still sending, which then never sees the answer.
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'x-request-id': requestId,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Reads at most `max` bytes; more is refused as soon as it arrives. */
function readCapped(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        chunks.length = 0;
        reject(new ClearanceError('payload-too-large', `request body is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ClearanceError('invalid-input', 'request body could not be read', { cause: err }));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export function gatedListener(
  gate: GateOptions,
  app: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const handOn = (req: IncomingMessage, res: ServerResponse, raw: Buffer, body: unknown) => {
    const parsed = req as IncomingMessage & { body?: unknown; rawBody?: Buffer };
    parsed.rawBody = raw;
    parsed.body = body;
    current.run({ rawBody: raw }, () => app(req, res));
  };
  const EMPTY = Buffer.alloc(0);
  const handOnEvent = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      const body = JSON.stringify({ ok: true, function: gate.name });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    if (req.method !== 'POST') {
      throw new ClearanceError('method-not-allowed', 'Pub/Sub pushes are POST requests');
    }
    const raw = hasBody(req) ? await readCapped(req, gate.maxBodyBytes()) : EMPTY;
    let body: unknown;
    try {
      body = parseBody(req.headers, raw);
    } catch {
      body = undefined;
    }
    const envelope =
      typeof body === 'object' && body !== null && !Array.isArray(body) && !Buffer.isBuffer(body);
    handOn(req, res, raw, envelope ? body : {});
  };
  return (req, res) => {
    let pre: unknown;
    try {
      const max = gate.maxBodyBytes();
      const declared = req.headers['content-length'];
      if (declared !== undefined && !(Number(declared) <= max)) {
        throw new ClearanceError('payload-too-large', `request body is larger than ${max} bytes`);
      }
      const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (encoding !== 'identity') {
        // A compressed body's cap would bound only the compressed bytes.
        throw new ClearanceError(
          'unsupported-media-type',
          `content-encoding ${encoding} is not accepted`,
        );
      }
      pre = gate.authenticate?.(req);
      // The hot path (a bodiless request by a caller already known): no promise, no await.
      if (gate.kind === 'http' && !hasBody(req) && !(pre instanceof Promise)) {
        return handOn(req, res, EMPTY, undefined);
      }
    } catch (err) {
      return refuse(res, err, gate);
    }
    void (async () => {
      await pre;
      if (gate.kind === 'event') return handOnEvent(req, res);
      if (!hasBody(req)) return handOn(req, res, EMPTY, undefined);
      const raw = await readCapped(req, gate.maxBodyBytes());
      let body: unknown;
      try {
        body = parseBody(req.headers, raw);
      } catch (err) {
        if (!gate.handOnBadJson) throw err;
        body = raw;
      }
      handOn(req, res, raw, body);
    })().catch((err: unknown) => refuse(res, err, gate));
  };
}
