// checkImage's routes behind authentication: REST /v1/check (one image or a batch), /admission, /gatekeeper.
import { z } from 'zod';
import { ClearanceError, InvalidInputError } from '../errors.js';
import type { Caller } from '../http/auth.js';
import type { HttpContext, HttpRequestLike, HttpResult } from '../http/http-function.js';
import { parseInput } from '../parse-input.js';
import { GatekeeperRequest, gatekeeperResponse } from './admission.js';
import { admission } from './admit.js';
import type { CheckDeps } from './check-deps.js';
import { CHECK_RULES, type CheckAnswer } from './decide.js';

const MAX_IMAGES = 100;
export const MAX_REF = 600;
export const ENV_NAME = /^[a-z][a-z0-9-]{0,62}$/;
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

/** POST: one image, or a batch whose decision is allow only when every image is allowed. */
async function restCheckPost(
  req: HttpRequestLike,
  d: CheckDeps,
  defaultEnv: string,
): Promise<HttpResult> {
  if (req.method !== 'POST') throw new InvalidInputError('use GET or POST');
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

/** Gatekeeper external data: one item per key; an unreadable ledger or a bad reference is the item's error. */
async function gatekeeper(req: HttpRequestLike, d: CheckDeps, env: string): Promise<HttpResult> {
  if (req.method !== 'POST') throw new InvalidInputError('use POST');
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

/** Routes an authenticated request (`path` without a trailing slash). */
export function routeCheck(
  path: string,
  req: HttpRequestLike,
  d: CheckDeps,
  caller: Caller,
  ctx: HttpContext,
): HttpResult | Promise<HttpResult> {
  const defaultEnv = ctx.root.config.check.defaultEnvironment;
  switch (path) {
    case '/v1/check':
      return restCheck(req, d, defaultEnv);
    case '/admission':
    case '/gatekeeper': {
      const env = parseInput(EnvQuery, req.query, 'query').env ?? defaultEnv;
      return path === '/admission' ? admission(req, d, env, caller, ctx) : gatekeeper(req, d, env);
    }
    default:
      throw new ClearanceError(
        'not-found',
        `no route ${path}: use /v1/check, /admission, /gatekeeper or /healthz`,
      );
  }
}
