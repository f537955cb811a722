// reevaluate: the paged fan-out over the ledger (start → page → page …, or one image), fed by the internal reevaluate topic.

import { jsonOf } from '../../shared/events/pubsub-message.js';
import { parseInput } from '../../shared/parse-input.js';
import {
  handleReevaluateMessage,
  ReevaluateMessage,
  type ReevaluationDeps,
} from '../../shared/pipeline/reevaluation.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { baseProofOf, ingestServices, registryOf } from '../../shared/runtime/services.js';

/** The services a reevaluate message needs, built once per instance. */
export const reevaluationDepsOf = depsFactory(async (r): Promise<ReevaluationDeps> => {
  const services = await ingestServices(r);
  const db = await r.firestore();
  return {
    db,
    ledger: services.ledger,
    policy: services.policy,
    publisher: services.publisher,
    fixes: services.fixes,
    // Built only for an `enrich` message: re-evaluations read no registry.
    enrich: async () => ({
      ...services,
      registry: await registryOf(r),
      bases: await baseProofOf(r),
      watch: r.config.watchRepositories,
      logger: r.logger,
    }),
    enqueue: async (message) => {
      const ps = await r.pubsub();
      await ps
        .topic(r.config.topics.reevaluate)
        .publishMessage({ json: message, attributes: { kind: message.kind } });
    },
  };
});

/** Built from a root getter (tests and benchmarks pass their own config and clock) and a deps factory. */
export function createReevaluateHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<ReevaluationDeps> = reevaluationDepsOf,
) {
  return pubsubFunction(
    'reevaluate',
    async (msg, { root, logger, now }) => {
      const message = parseInput(ReevaluateMessage, jsonOf(msg), 'reevaluate message');
      const result = await handleReevaluateMessage(await deps(root), message, now, {
        messageId: msg.messageId,
      });
      logger.info('reevaluate message handled', { kind: message.kind, result });
    },
    getRoot,
  );
}

export const reevaluate = createReevaluateHandler();

registerEvent('reevaluate', reevaluate);
