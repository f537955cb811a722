// notifyOwners: the alerts topic → the owning team's Google Chat / Slack spaces (rate-limited, de-duplicated, never lost).

import type { Notifier } from '../../shared/alerts/notifier.js';
import { FlushAttributes } from '../../shared/messages.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';

export interface NotifyOwnersDeps {
  /** Null without a routing document: alerts are acknowledged and logged, not sent. */
  notifier: Notifier | null;
}

export const notifyOwnersDeps = depsFactory(async (r): Promise<NotifyOwnersDeps> => {
  if (!r.config.routing) return { notifier: null };
  const { createNotifier } = await import('../../shared/alerts/index.js');
  return {
    notifier: createNotifier({
      db: await r.firestore(),
      logger: r.logger,
      routingDocument: r.config.routing,
      clock: r.clock,
    }),
  };
});

export function createNotifyOwnersHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<NotifyOwnersDeps> = notifyOwnersDeps,
) {
  return pubsubFunction(
    'alerts',
    async (msg, { root, logger, signal }) => {
      const { notifier } = await deps(root);
      if (!notifier) {
        logger.warn('no routing document (CLEARANCE_ROUTING): alert not sent', {
          messageId: msg.messageId,
        });
        return;
      }
      // Cloud Scheduler publishes {action: flush} every minute: digests fold, stuck alerts go out.
      if (FlushAttributes.safeParse(msg.attributes).success) {
        await notifier.flushDigests(undefined, signal);
        await notifier.flushPending(signal);
        return;
      }
      const { decodeAlertMessage } = await import('../../shared/alerts/alert.js');
      const results = await notifier.handle(decodeAlertMessage(msg.data), msg.messageId, {
        signal,
      });
      logger.info('alert handled', {
        results: results.map((r) => ({ space: r.space, status: r.status })),
      });
    },
    getRoot,
  );
}

export const notifyOwners = createNotifyOwnersHandler();

registerEvent('notifyOwners', notifyOwners);
