// checkImage: the deploy-time check over HTTP — REST /v1/check, Kubernetes /admission, Gatekeeper /gatekeeper.

import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AlertInput } from '../../shared/alerts/alert.js';
import {
  admissionResponse,
  type BreakglassState,
  GatekeeperRequest,
  gatekeeperResponse,
  parseAdmissionReview,
} from '../../shared/check/admission.js';
import {
  type BreakglassEvent,
  type BreakglassRecorder,
  firestoreBreakglassRecorder,
} from '../../shared/check/breakglass.js';
import { CheckService, type VerdictStore } from '../../shared/check/check-service.js';
import { CHECK_RULES, type CheckAnswer } from '../../shared/check/decide.js';
import { firestoreVerdictStore } from '../../shared/check/firestore-store.js';
import { ClearanceError, errorMessage } from '../../shared/errors.js';
import { parseInput } from '../../shared/findings/parse-input.js';
import { type Authenticator, type Caller, createAuthenticator } from '../../shared/http/auth.js';
import {
  type HttpContext,
  type HttpRequestLike,
  type HttpResponseLike,
  type HttpResult,
  httpFunction,
} from '../../shared/http/http-function.js';
import { imageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { headerAuth, registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';

export interface CheckDeps {
  service: CheckService;
  breakglass: BreakglassRecorder;
}

export interface CheckImageOptions {
  getRoot?: () => Root;
  /** Replaces the Firestore reads (tests: a store that fails or hangs). */
  store?: (root: Root) => Promise<VerdictStore>;
  /** Replaces the break-glass recorder (tests: one that fails). */
  breakglass?: (root: Root) => BreakglassRecorder;
}

const MAX_IMAGES = 100;
const MAX_REF = 600;
const ENV_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const Env = z.string().regex(ENV_NAME, 'an environment name such as prod');
const CheckQuery = z.object({ image: z.string().min(1).max(MAX_REF), env: Env.optional() });
const CheckBody = z.union([
  z.object({ image: z.string().min(1).max(600), env: Env.optional() }).strict(),
  z
    .object({
      images: z.array(z.string().min(1).max(600)).min(1).max(MAX_IMAGES),
      env: Env.optional(),
    })
    .strict(),
]);
const EnvQuery = z.object({ env: Env.optional() }).passthrough();

/** Dependencies once built, so a warm request does not wait on a promise for them. */
const ready = new WeakMap<Root, CheckDeps>();

function deps(root: Root, o: CheckImageOptions): Promise<CheckDeps> {
  return root.lazy('check-image', async () => {
    const c = root.config.check;
    const store = o.store ? await o.store(root) : firestoreVerdictStore(await root.firestore());
    const service = new CheckService({
      store,
      clock: root.clock,
      parseRef: parseImageRef,
      imageId: imageDocId,
      ttlMs: c.cacheTtlMs,
      timeoutMs: c.timeoutMs,
    });
    const breakglass =
      o.breakglass?.(root) ??
      firestoreBreakglassRecorder(
        () => root.firestore(),
        {
          async publish(alert: AlertInput) {
            // Loaded only when a break-glass is used: most instances never pay for Pub/Sub.
            const [{ publishAlert }, pubsub] = await Promise.all([
              import('../../shared/alerts/alert.js'),
              root.pubsub(),
            ]);
            return publishAlert(pubsub.topic(root.config.topics.alerts), alert);
          },
        },
        async () => {
          const { FirestoreLedger } = await import('../../shared/ledger/ledger-store.js');
          return new FirestoreLedger(await root.firestore(), {
            eventTtlDays: root.config.eventTtlDays,
          });
        },
      );
    const built = { service, breakglass };
    ready.set(root, built);
    return built;
  });
}

/** Built before anything else, so an unauthenticated request never loads the Firestore client. */
function authenticator(root: Root): Authenticator {
  let a = authenticators.get(root);
  if (!a) {
    const c = root.config.check;
    a = createAuthenticator({
      bearerToken: c.bearerToken,
      audiences: c.audiences,
      allowedCallers: c.allowedCallers,
      certsUrl: c.certsUrl,
    });
    authenticators.set(root, a);
  }
  return a;
}
const authenticators = new WeakMap<Root, Authenticator>();

/** A bad reference is the caller's mistake (400) at the REST boundary; inside an admission it denies. */
function checkedRef(d: CheckDeps, image: string): string {
  d.service.reference(image);
  return image;
}

/** GET is answered synchronously on a cache hit (no promise on the hot path). */
function restCheck(
  req: HttpRequestLike,
  d: CheckDeps,
  defaultEnv: string,
): HttpResult | Promise<HttpResult> {
  if (req.method !== 'GET') return restCheckPost(req, d, defaultEnv);
  const q = parseInput(CheckQuery, req.query, 'check query (?image=…&env=…)');
  const env = q.env ?? defaultEnv;
  const fast = d.service.cached(q.image, env);
  if (fast) return { status: 200, body: fast };
  return d.service
    .check(checkedRef(d, q.image), env)
    .then((answer) => ({ status: 200, body: answer }));
}

async function restCheckPost(
  req: HttpRequestLike,
  d: CheckDeps,
  defaultEnv: string,
): Promise<HttpResult> {
  if (req.method !== 'POST') throw new ClearanceError('invalid-input', 'use GET or POST');
  const body = parseInput(CheckBody, req.body, 'check request');
  const env = body.env ?? defaultEnv;
  if ('image' in body)
    return { status: 200, body: await d.service.check(checkedRef(d, body.image), env) };
  const results = await d.service.checkAll(
    body.images.map((i) => checkedRef(d, i)),
    env,
  );
  return {
    status: 200,
    body: {
      environment: env,
      decision: results.every((r) => r.decision === 'allow') ? 'allow' : 'deny',
      results,
    },
  };
}

function refParts(answer: CheckAnswer): BreakglassEvent['denied'][number]['ref'] {
  if (!answer.digest) return null;
  try {
    const ref = parseImageRef(answer.image);
    return { registry: ref.registry, repository: ref.repository, digest: answer.digest };
  } catch {
    return null;
  }
}

function inLedger(answer: CheckAnswer): boolean {
  return (
    answer.digest !== null &&
    !answer.reasons.some(
      (r) =>
        r.ruleId === CHECK_RULES.unknownImage ||
        r.ruleId === CHECK_RULES.unavailable ||
        r.ruleId === CHECK_RULES.invalidReference,
    )
  );
}

async function admission(
  req: HttpRequestLike,
  d: CheckDeps,
  env: string,
  caller: Caller,
  ctx: HttpContext,
): Promise<HttpResult> {
  if (req.method !== 'POST') throw new ClearanceError('invalid-input', 'use POST');
  const workload = parseAdmissionReview(req.body);
  const images = workload.images.map((i) => i.image);
  const answers = await d.service.checkAll(images, env);
  const judged = images.map((image, i) => ({ image, answer: answers[i] as CheckAnswer }));
  const denied = judged.filter((j) => j.answer.decision === 'deny');
  let state: BreakglassState = 'none';
  if (denied.length > 0 && workload.breakglass) {
    const settings = await d.service.admissionSettings().catch(() => null);
    if (!settings?.environments[env]?.breakglass) state = 'not-permitted';
    else if (workload.dryRun) state = 'dry-run';
    else {
      try {
        await d.breakglass.record({
          uid: workload.uid,
          environment: env,
          actor: workload.user ?? caller.id,
          caller: caller.id,
          workload: { kind: workload.kind, namespace: workload.namespace, name: workload.name },
          denied: denied.map((j) => ({
            image: j.image,
            answer: j.answer,
            ref: refParts(j.answer),
            imageId: inLedger(j.answer) ? safeImageId(j.answer) : null,
          })),
          justification: workload.breakglassReason,
          at: ctx.now,
        });
        state = 'used';
        ctx.logger.warn('break-glass used', {
          uid: workload.uid,
          environment: env,
          namespace: workload.namespace,
          name: workload.name,
          images: denied.map((j) => j.image),
        });
      } catch (err) {
        state = 'failed';
        ctx.logger.error('break-glass could not be recorded; denying', {
          err,
          reason: errorMessage(err),
        });
      }
    }
  }
  const outcome = admissionResponse(workload, judged, state, env);
  ctx.logger.info('admission', {
    uid: workload.uid,
    kind: workload.kind,
    namespace: workload.namespace,
    allowed: outcome.allowed,
    breakglass: state,
    images: images.length,
  });
  return { status: 200, body: outcome.response };
}

function safeImageId(answer: CheckAnswer): string | null {
  try {
    const ref = parseImageRef(answer.image);
    return answer.digest ? imageDocId(ref.registry, ref.repository, answer.digest) : null;
  } catch {
    return null;
  }
}

async function gatekeeper(req: HttpRequestLike, d: CheckDeps, env: string): Promise<HttpResult> {
  if (req.method !== 'POST') throw new ClearanceError('invalid-input', 'use POST');
  const body = parseInput(GatekeeperRequest, req.body, 'Gatekeeper ProviderRequest');
  const answers = await d.service.checkAll(body.request.keys, env);
  return {
    status: 200,
    body: gatekeeperResponse(
      body.request.keys.map((key, i) => {
        const answer = answers[i] as CheckAnswer;
        const failed = answer.reasons.find(
          (r) => r.ruleId === CHECK_RULES.unavailable || r.ruleId === CHECK_RULES.invalidReference,
        );
        return failed ? { key, answer, error: failed.message } : { key, answer };
      }),
    ),
  };
}

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

/**
 * The hot path: a GET /v1/check by a known caller whose answer is cached is answered here,
 * synchronously, without the generic wrapper's per-request logger and promises. Anything else
 * (a miss, another route, a new ID token, a body) takes the full path.
 */
function answerFromCache(req: HttpRequestLike, res: HttpResponseLike, root: Root): boolean {
  if (req.method !== 'GET' || req.path !== '/v1/check') return false;
  const length = req.headers['content-length'];
  if (length !== undefined && length !== '0') return false;
  const d = ready.get(root);
  if (!d || !authenticator(root).cachedCaller(req.headers)) return false;
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

/** Serialised bytes of memoised answers; an answer object lives as long as the service's memo holds it. */
const serialized = new WeakMap<CheckAnswer, { body: string; etag: string; length: string }>();

/** Builds the HTTP handler; the registered function uses the process-wide root. */
export function buildCheckImage(
  o: CheckImageOptions = {},
): (req: HttpRequestLike, res: HttpResponseLike) => Promise<void> | undefined {
  const getRoot = o.getRoot ?? defaultRoot;
  const full = httpFunction(
    'checkImage',
    async (req, ctx) => {
      const path = req.path.replace(/\/+$/, '') || '/';
      if (path === '/healthz') return { status: 200, body: { ok: true } };
      const auth = authenticator(ctx.root);
      const caller = auth.cachedCaller(req.headers) ?? (await auth.authenticate(req.headers));
      const d = ready.get(ctx.root) ?? (await deps(ctx.root, o));
      const defaultEnv = ctx.root.config.check.defaultEnvironment;
      switch (path) {
        case '/v1/check':
          return restCheck(req, d, defaultEnv);
        case '/admission':
        case '/gatekeeper': {
          const env = parseInput(EnvQuery, req.query, 'query').env ?? defaultEnv;
          return path === '/admission'
            ? admission(req, d, env, caller, ctx)
            : gatekeeper(req, d, env);
        }
        default:
          throw new ClearanceError(
            'not-found',
            `no route ${path}: use /v1/check, /admission, /gatekeeper or /healthz`,
          );
      }
    },
    { getRoot },
  );
  return (req, res) => (answerFromCache(req, res, getRoot()) ? undefined : full(req, res));
}

export const checkImage = buildCheckImage();

registerHttp('checkImage', checkImage, {
  authenticate: headerAuth(() => authenticator(defaultRoot())),
});
