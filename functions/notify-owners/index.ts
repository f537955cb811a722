// notifyOwners: the alerts topic → the owning team's Google Chat / Slack spaces (rate-limited, de-duplicated, never lost).

import type { Notifier } from '../../shared/alerts/notifier.js';
import { FlushAttributes } from '../../shared/messages.js';
import { pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import type { Root } from '../../shared/runtime/root.js';

function notifierOf(r: Root): Promise<Notifier | null> {
  return r.lazy('notifier', async () => {
    if (!r.config.routing) return null;
    const { createNotifier } = await import('../../shared/alerts/index.js');
    return createNotifier({
      db: await r.firestore(),
      logger: r.logger,
      routingDocument: r.config.routing,
      clock: r.clock,
    });
  });
}

export const notifyOwners = pubsubFunction('alerts', async (msg, { root, logger }) => {
  const notifier = await notifierOf(root);
  if (!notifier) {
    logger.warn('no routing document (CLEARANCE_ROUTING): alert not sent', {
      messageId: msg.messageId,
    });
    return;
  }
  // Cloud Scheduler publishes {action: flush} every minute: digests fold, stuck alerts go out.
  if (FlushAttributes.safeParse(msg.attributes).success) {
    await notifier.flushDigests();
    await notifier.flushPending();
    return;
  }
  const { decodeAlertMessage } = await import('../../shared/alerts/alert.js');
  const results = await notifier.handle(decodeAlertMessage(msg.data), msg.messageId);
  logger.info('alert handled', {
    results: results.map((r) => ({ space: r.space, status: r.status })),
  });
});

registerEvent('notifyOwners', notifyOwners);
