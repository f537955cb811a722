// onRegistryPush: the `gcr` topic (Artifact Registry / GCR pushes and deletes) → the image ledger.

import { parseGcrEvent } from '../../shared/events/gcr-event.js';
import { jsonOf } from '../../shared/events/pubsub-message.js';
import { ingestRegistryEvent } from '../../shared/pipeline/registry-ingest.js';
import { pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import { ingestServices, registryOf } from '../../shared/runtime/services.js';

export const onRegistryPush = pubsubFunction('gcr', async (msg, { root, logger, now }) => {
  const event = parseGcrEvent(jsonOf(msg), { eventId: msg.messageId, occurredAt: msg.publishTime });
  const services = await ingestServices(root);
  const outcome = await ingestRegistryEvent(
    { ...services, registry: await registryOf(root), watch: root.config.watchRepositories, logger },
    event,
    { source: 'gcr', messageId: msg.messageId, at: msg.publishTime },
    now,
  );
  logger.info('registry event processed', {
    outcome,
    action: event.action,
    repository: `${event.registry}/${event.repository}`,
    digest: event.digest,
    tag: event.tag,
  });
});

registerEvent('onRegistryPush', onRegistryPush);
