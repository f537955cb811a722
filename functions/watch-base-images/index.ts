// watchBaseImages: Cloud Scheduler (OIDC token) → follow the tracked base tags, mark dependents stale, publish rebuild alerts.

import { ClearanceError, InvalidInputError } from '../../shared/errors.js';
import { type Authenticator, authenticatorFromConfig } from '../../shared/http/auth.js';
import { httpFunction } from '../../shared/http/http-function.js';
import { watchBaseImages as watch } from '../../shared/pipeline/base-watcher.js';
import { ledgerOf } from '../../shared/runtime/pubsub-function.js';
import { registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { baseProofOf, ingestServices, registryOf } from '../../shared/runtime/services.js';

function authenticatorOf(r: Root): Promise<Authenticator> {
  // Cloud Scheduler sends an ID token for its service account (an allowed caller, the function URL
  // as audience); CLEARANCE_WATCH_TOKEN serves local runs and manual triggers.
  return r.lazy('watch-authenticator', async () => {
    const a = authenticatorFromConfig(r.config.watch);
    if (!a)
      throw new ClearanceError(
        'unauthenticated',
        'watcher authentication is not configured (CLEARANCE_WATCH_AUDIENCES + CLEARANCE_WATCH_ALLOWED_CALLERS, or CLEARANCE_WATCH_TOKEN)',
      );
    return a;
  });
}

/** Built from a root getter so tests can pass their own config and clock. */
export function createWatchBaseImagesHandler(getRoot: () => Root = defaultRoot) {
  return httpFunction(
    'watchBaseImages',
    async (req, { root, logger, now }) => {
      if (req.method !== 'POST' && req.method !== 'GET') {
        throw new InvalidInputError('use POST (or GET)');
      }
      const caller = await (await authenticatorOf(root)).authenticate(req.headers);
      const tracked = root.config.baseImages;
      if (tracked.length === 0) {
        logger.warn('no tracked base images (CLEARANCE_BASE_IMAGES)');
        return { status: 200, body: { bases: [], republished: 0 } };
      }
      const [services, registry, ledger, bases] = await Promise.all([
        ingestServices(root),
        registryOf(root),
        ledgerOf(root),
        baseProofOf(root),
      ]);
      const result = await watch(
        {
          db: await root.firestore(),
          registry,
          publisher: services.publisher,
          logger,
          ledger,
          bases,
        },
        tracked,
        now,
      );
      logger.info('base images checked', { caller: caller.id, bases: result.bases });
      // A failure to reach a registry is worth a scheduler retry; the pass is idempotent.
      const retry = result.bases.some((b) => b.change === 'error' && b.retryable);
      return { status: retry ? 503 : 200, body: result };
    },
    { getRoot },
  );
}

export const watchBaseImages = createWatchBaseImagesHandler();

registerHttp('watchBaseImages', watchBaseImages);
