// onScanComplete: `container-analysis-occurrences-v1` notifications → findings and verdicts for the scanned image.

import { jsonOf } from '../../shared/events/pubsub-message.js';
import { ingestOccurrenceNotification, type ScanDeps } from '../../shared/pipeline/scan-ingest.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { ingestServices, occurrencesOf } from '../../shared/runtime/services.js';

export type ScanCompleteDeps = Omit<ScanDeps, 'logger'>;

export const scanCompleteDeps = depsFactory(
  async (r): Promise<ScanCompleteDeps> => ({
    ...(await ingestServices(r)),
    occurrences: await occurrencesOf(r),
  }),
);

export function createScanCompleteHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<ScanCompleteDeps> = scanCompleteDeps,
) {
  return pubsubFunction(
    'container-analysis',
    async (msg, { root, logger, now }) => {
      const body = jsonOf(msg);
      // Most notifications are individual VULNERABILITY occurrences: they are ignored before any client loads.
      if ((body as { kind?: unknown })?.kind !== 'DISCOVERY') {
        const { notificationKind } = await import('../../shared/findings/container-analysis.js');
        notificationKind(body);
        return;
      }
      const outcome = await ingestOccurrenceNotification(
        { ...(await deps(root)), logger },
        body,
        { source: 'container-analysis', messageId: msg.messageId, at: msg.publishTime },
        now,
      );
      logger.info('occurrence notification processed', {
        outcome,
        occurrence: (body as { name?: string }).name,
      });
    },
    getRoot,
  );
}

export const onScanComplete = createScanCompleteHandler();

registerEvent('onScanComplete', onScanComplete);
