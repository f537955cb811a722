// dashboard: the fleet's state for people — server-rendered HTML over the fleet index, authenticated like checkImage.
import { loadDashboardConfig } from '../../shared/dashboard/config.js';
import { buildDashboardHandler, type DashboardDeps } from '../../shared/dashboard/handler.js';
import { type Authenticator, createAuthenticator } from '../../shared/http/auth.js';
import type { HttpRequestLike, HttpResponseLike } from '../../shared/http/http-function.js';
import { registerSecret } from '../../shared/logging/logger.js';
import { registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';

export interface DashboardOptions {
  getRoot?: () => Root;
  env?: NodeJS.ProcessEnv;
  /** Replaces the dependencies built from the root (tests: fakes that satisfy DashboardDeps). */
  deps?: (root: Root, env: NodeJS.ProcessEnv) => DashboardDeps;
}

/** Null (refuse everyone) unless a token or Google identities are configured. */
function authenticator(env: NodeJS.ProcessEnv): Authenticator | null {
  const c = loadDashboardConfig(env);
  registerSecret(c.token);
  const google = c.audiences.length > 0 && c.allowedCallers.length > 0;
  if (!c.token && !google) return null;
  return createAuthenticator({
    bearerToken: c.token,
    audiences: c.audiences,
    allowedCallers: c.allowedCallers,
    certsUrl: c.certsUrl,
  });
}

/** Built on the first request: the Firestore client itself stays lazy behind `db`. */
export function dashboardDeps(r: Root, env: NodeJS.ProcessEnv): DashboardDeps {
  return {
    db: () => r.firestore(),
    clock: r.clock,
    logger: r.logger.child({ function: 'dashboard' }),
    auth: authenticator(env),
  };
}

export function buildDashboard(
  o: DashboardOptions = {},
): (req: HttpRequestLike, res: HttpResponseLike) => Promise<void> {
  let handler: ((req: HttpRequestLike, res: HttpResponseLike) => Promise<void>) | undefined;
  return (req, res) => {
    if (!handler) {
      handler = buildDashboardHandler(
        (o.deps ?? dashboardDeps)((o.getRoot ?? defaultRoot)(), o.env ?? process.env),
      );
    }
    return handler(req, res);
  };
}

export const dashboard = buildDashboard();

registerHttp('dashboard', dashboard);
