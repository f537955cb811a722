// checkImage's dependencies (verdict reads, break-glass recorder, authenticator), built by one typed factory.
import type { AlertInput } from '../alerts/alert.js';
import { type Authenticator, createAuthenticator } from '../http/auth.js';
import { imageDocId, parseImageRef } from '../image-ref/image-ref.js';
import { type DepsFactory, depsFactory } from '../runtime/deps.js';
import type { Root } from '../runtime/root.js';
import { type BreakglassRecorder, firestoreBreakglassRecorder } from './breakglass.js';
import { CheckService, type VerdictStore } from './check-service.js';
import { firestoreVerdictStore } from './firestore-store.js';

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

/** The factory of one checkImage build; `ready` lets a warm request skip waiting on a promise. */
export function checkDeps(o: CheckImageOptions = {}): DepsFactory<CheckDeps> {
  return depsFactory(async (root) => {
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
              import('../alerts/alert.js'),
              root.pubsub(),
            ]);
            return publishAlert(pubsub.topic(root.config.topics.alerts), alert);
          },
        },
        async () => {
          const { FirestoreLedger } = await import('../ledger/ledger-store.js');
          return new FirestoreLedger(await root.firestore(), {
            eventTtlDays: root.config.eventTtlDays,
          });
        },
      );
    return { service, breakglass };
  });
}

const authenticators = new WeakMap<Root, Authenticator>();

/** Built before anything else, so an unauthenticated request never loads the Firestore client. */
export function checkAuthenticator(root: Root): Authenticator {
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
