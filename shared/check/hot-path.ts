// checkImage's cache-hit path: a cached GET /v1/check by a known caller, answered synchronously from memoised bytes.
import { createHash, randomUUID } from 'node:crypto';
import type { HttpRequestLike, HttpResponseLike } from '../http/http-function.js';
import type { DepsFactory } from '../runtime/deps.js';
import type { Root } from '../runtime/root.js';
import { type CheckDeps, checkAuthenticator } from './check-deps.js';
import type { CheckAnswer } from './decide.js';
import { ENV_NAME, MAX_REF } from './routes.js';

/** `?image=…&env=…` of a raw request URL, memoised: deploys ask the same few URLs over and over. */
const queries = new Map<string, { image: unknown; env: unknown }>();
const MAX_QUERIES = 1_000;

function checkQuery(req: HttpRequestLike): { image: unknown; env: unknown } {
  let q = queries.get(req.url);
  if (!q) {
    const { image, env } = req.query;
    q = { image, env };
    if (queries.size >= MAX_QUERIES) queries.clear();
    queries.set(req.url, q);
  }
  return q;
}

/** What the hot path writes with, when the response is node's own (functions-framework's is). */
interface RawResponse {
  writeHead?: (status: number, headers: string[]) => unknown;
  end?: (body: string) => unknown;
}

/** Serialised bytes of memoised answers; an answer object lives as long as the service's memo holds it. */
const serialized = new WeakMap<CheckAnswer, { body: string; etag: string; length: string }>();

/**
 * The hot path: a GET /v1/check by a known caller whose answer is cached is answered here,
 * synchronously, without the generic wrapper's per-request logger and promises. Anything else
 * (a miss, another route, a new ID token, a body) takes the full path: false.
 */
export function answerFromCache(
  req: HttpRequestLike,
  res: HttpResponseLike,
  root: Root,
  deps: DepsFactory<CheckDeps>,
): boolean {
  if (req.method !== 'GET' || req.path !== '/v1/check') return false;
  const length = req.headers['content-length'];
  if (length !== undefined && length !== '0') return false;
  const d = deps.ready(root);
  if (!d || !checkAuthenticator(root).cachedCaller(req.headers)) return false;
  // Only plain, valid queries: anything odd gets the full path and its error messages.
  const { image, env } = checkQuery(req);
  if (typeof image !== 'string' || image.length === 0 || image.length > MAX_REF) return false;
  if (env !== undefined && (typeof env !== 'string' || !ENV_NAME.test(env))) return false;
  const answer = d.service.cached(image, env ?? root.config.check.defaultEnvironment);
  if (!answer) return false;
  let wire = serialized.get(answer);
  if (!wire) {
    const body = JSON.stringify(answer);
    const etag = `W/"${createHash('sha1').update(body).digest('base64url')}"`;
    wire = { body, etag, length: String(Buffer.byteLength(body)) };
    serialized.set(answer, wire);
  }
  // The memoised answer is sent as memoised bytes: no JSON or ETag work per hit. Written straight
  // to node's response (headers and body in one write) unless the caller revalidates an ETag,
  // which Express answers with a 304.
  const raw = res as HttpResponseLike & RawResponse;
  if (req.headers['if-none-match'] === undefined && raw.writeHead && raw.end) {
    raw.writeHead(200, [
      'x-request-id',
      randomUUID(),
      'content-type',
      'application/json; charset=utf-8',
      'etag',
      wire.etag,
      'content-length',
      wire.length,
    ]);
    raw.end(wire.body);
    return true;
  }
  res.set('x-request-id', randomUUID());
  res.set('content-type', 'application/json; charset=utf-8');
  res.set('etag', wire.etag);
  res.status(200).send(wire.body);
  return true;
}
