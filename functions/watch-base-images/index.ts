// watchBaseImages: Cloud Scheduler (OIDC token) → follow the tracked base tags, mark dependents stale, publish rebuild alerts.

import { ClearanceError, InvalidInputError } from '../../shared/errors.js';
import { type Authenticator, authenticatorFromConfig } from '../../shared/http/auth.js';
import { httpFunction } from '../../shared/http/http-function.js';
import {
  type BaseWatcherDeps,
  followBaseTags as watch,
} from '../../shared/pipeline/base-watcher.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { ledgerOf } from '../../shared/runtime/pubsub-function.js';
import { headerAuth, registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { baseProofOf, ingestServices, registryOf } from '../../shared/runtime/services.js';

export interface WatchBaseImagesDeps {
  auth: Authenticator;
  /** Firestore, registry, ledger and publisher: built once a caller is authenticated. */
  watcher(): Promise<Omit<BaseWatcherDeps, 'logger'>>;
}

export const watchBaseImagesDeps = depsFactory(async (r): Promise<WatchBaseImagesDeps> => {
  // Cloud Scheduler sends an ID token for its service account (an allowed caller, the function URL
  // as audience); CLEARANCE_WATCH_TOKEN serves local runs and manual triggers.
  const auth = authenticatorFromConfig(r.config.watch);
  if (!auth)
    throw new ClearanceError(
      'unauthenticated',
      'watcher authentication is not configured (CLEARANCE_WATCH_AUDIENCES + CLEARANCE_WATCH_ALLOWED_CALLERS, or CLEARANCE_WATCH_TOKEN)',
    );
  const watcher = async () => {
    const [services, registry, ledger, bases] = await Promise.all([
      ingestServices(r),
      registryOf(r),
      ledgerOf(r),
      baseProofOf(r),
    ]);
    return { db: await r.firestore(), registry, publisher: services.publisher, ledger, bases };
  };
  return { auth, watcher };
});

/** Built from a root getter (tests pass their own config and clock) and a deps factory. */
export function createWatchBaseImagesHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<WatchBaseImagesDeps> = watchBaseImagesDeps,
) {
  return httpFunction(
    'watchBaseImages',
    async (req, { root, logger, now }) => {
      if (req.method !== 'POST' && req.method !== 'GET') {
        throw new InvalidInputError('use POST (or GET)');
      }
      const d = await deps(root);
      const caller = await d.auth.authenticate(req.headers);
      const tracked = root.config.baseImages;
      if (tracked.length === 0) {
        logger.warn('no tracked base images (CLEARANCE_BASE_IMAGES)');
        return { status: 200, body: { bases: [], republished: 0 } };
      }
      const result = await watch({ ...(await d.watcher()), logger }, tracked, now);
      logger.info('base images checked', { caller: caller.id, bases: result.bases });
      // A failure to reach a registry is worth a scheduler retry; the pass is idempotent.
      const retry = result.bases.some((b) => b.change === 'error' && b.retryable);
      return { status: retry ? 503 : 200, body: result };
    },
    { getRoot, deadline: true },
  );
}

export const watchBaseImages = createWatchBaseImagesHandler();

registerHttp('watchBaseImages', watchBaseImages, {
  authenticate: headerAuth(async () => (await watchBaseImagesDeps(defaultRoot())).auth, []),
});
