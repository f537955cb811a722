// onRegistryPush: the `gcr` topic (Artifact Registry / GCR pushes and deletes) → the image ledger.

import { parseGcrEvent } from '../../shared/events/gcr-event.js';
import { jsonOf } from '../../shared/events/pubsub-message.js';
import { type IngestDeps, ingestRegistryEvent } from '../../shared/pipeline/registry-ingest.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { baseProofOf, ingestServices, registryOf } from '../../shared/runtime/services.js';

export type RegistryPushDeps = Omit<IngestDeps, 'logger'>;

export const registryPushDeps = depsFactory(
  async (r): Promise<RegistryPushDeps> => ({
    ...(await ingestServices(r)),
    registry: await registryOf(r),
    bases: await baseProofOf(r),
    watch: r.config.watchRepositories,
  }),
);

export function createRegistryPushHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<RegistryPushDeps> = registryPushDeps,
) {
  return pubsubFunction(
    'gcr',
    async (msg, { root, logger, now }) => {
      const event = parseGcrEvent(jsonOf(msg), {
        eventId: msg.messageId,
        occurredAt: msg.publishTime,
      });
      const outcome = await ingestRegistryEvent(
        { ...(await deps(root)), logger },
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
    },
    getRoot,
  );
}

export const onRegistryPush = createRegistryPushHandler();

registerEvent('onRegistryPush', onRegistryPush);
