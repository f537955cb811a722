// Composition root: one per cold start; builds config, logger and Google clients lazily so a function pays only for what it uses (each function's own deps: runtime/deps.ts).
import type { Firestore } from '@google-cloud/firestore';
import type { PubSub } from '@google-cloud/pubsub';
import { type Clock, systemClock } from '../clock.js';
import { type Config, loadConfig } from '../config/config.js';
import { createLogger, type Logger, registerSecret } from '../logging/logger.js';

export interface Root {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  firestore(): Promise<Firestore>;
  pubsub(): Promise<PubSub>;
}

export function createRoot(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Pick<Root, 'logger' | 'clock'>> = {},
): Root {
  const config = loadConfig(env);
  registerSecret(config.check.bearerToken);
  for (const w of Object.values(config.webhooks)) registerSecret(w?.secret);
  registerSecret(config.report.bearerToken);
  registerSecret(config.watch.bearerToken);
  const logger =
    overrides.logger ??
    createLogger({ minSeverity: config.logLevel === 'NOTICE' ? 'NOTICE' : config.logLevel });
  const cache = new Map<string, Promise<unknown>>();
  const lazy = <T>(name: string, build: () => Promise<T>): Promise<T> => {
    let p = cache.get(name) as Promise<T> | undefined;
    if (!p) {
      p = build();
      cache.set(name, p);
      // A failed build (e.g. a transient auth error) must not poison the instance.
      p.catch(() => cache.delete(name));
    }
    return p;
  };
  return {
    config,
    logger,
    clock: overrides.clock ?? systemClock,
    firestore: () =>
      lazy('firestore', async () => {
        const { Firestore } = await import('@google-cloud/firestore');
        return new Firestore({
          projectId: config.projectId,
          databaseId: config.firestoreDatabase,
          ignoreUndefinedProperties: true,
          // REST skips loading gRPC at cold start; the emulator path needs gRPC (REST asks for real credentials).
          preferRest: !env.FIRESTORE_EMULATOR_HOST,
        });
      }),
    pubsub: () =>
      lazy('pubsub', async () => {
        const { PubSub } = await import('@google-cloud/pubsub');
        return new PubSub({ projectId: config.projectId });
      }),
  };
}

let current: Root | undefined;

/** The process-wide root, built on first use. */
export function root(): Root {
  current ??= createRoot();
  return current;
}
