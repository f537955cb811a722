// checkImage: the deploy-time check over HTTP — REST /v1/check, Kubernetes /admission, Gatekeeper /gatekeeper.

import {
  type CheckImageOptions,
  checkAuthenticator,
  checkDeps,
} from '../../shared/check/check-deps.js';
import { answerFromCache } from '../../shared/check/hot-path.js';
import { routeCheck } from '../../shared/check/routes.js';
import {
  type HttpRequestLike,
  type HttpResponseLike,
  httpFunction,
} from '../../shared/http/http-function.js';
import { headerAuth, registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot } from '../../shared/runtime/root.js';

export type { CheckDeps, CheckImageOptions } from '../../shared/check/check-deps.js';

/** Builds the HTTP handler; the registered function uses the process-wide root. */
export function buildCheckImage(
  o: CheckImageOptions = {},
): (req: HttpRequestLike, res: HttpResponseLike) => Promise<void> | undefined {
  const getRoot = o.getRoot ?? defaultRoot;
  const deps = checkDeps(o);
  const full = httpFunction(
    'checkImage',
    async (req, ctx) => {
      const path = req.path.replace(/\/+$/, '') || '/';
      if (path === '/healthz') return { status: 200, body: { ok: true } };
      const auth = checkAuthenticator(ctx.root);
      const caller = auth.cachedCaller(req.headers) ?? (await auth.authenticate(req.headers));
      const d = deps.ready(ctx.root) ?? (await deps(ctx.root));
      return routeCheck(path, req, d, caller, ctx);
    },
    { getRoot },
  );
  return (req, res) => (answerFromCache(req, res, getRoot(), deps) ? undefined : full(req, res));
}

export const checkImage = buildCheckImage();

registerHttp('checkImage', checkImage, {
  authenticate: headerAuth(() => checkAuthenticator(defaultRoot())),
});
