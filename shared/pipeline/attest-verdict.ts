// A verdict change → attest or revoke the image (one per image and policy), and alert when attestations were revoked.
import type { Alert } from '../alerts/alert.js';
import type { Attestor } from '../attestations/attestor.js';
import type { ImageLedger } from '../ledger/image-ledger.js';
import type { Logger } from '../logging/logger.js';
import type { VerdictMessage } from '../messages.js';
import type { EffectPublisher } from './effects.js';

export interface AttestVerdictDeps {
  ledger: Pick<ImageLedger, 'getImage'>;
  /** Built only when the ledger knows the image: most instances load no signer until then. */
  attestor(): Promise<Attestor>;
  publisher: EffectPublisher;
  logger: Logger;
}

export async function attestVerdict(
  deps: AttestVerdictDeps,
  message: VerdictMessage,
  now: Date,
  signal?: AbortSignal,
): Promise<void> {
  const { logger } = deps;
  const image = await deps.ledger.getImage(message.imageId);
  if (!image) {
    logger.warn('verdict message for an image not in the ledger', { imageId: message.imageId });
    return;
  }
  const attestor = await deps.attestor();
  const result = await attestor.reconcile({ image, now, signal });
  logger.info('attestation reconciled', {
    imageId: image.id,
    action: result.action,
    ...(result.action === 'none' ? { why: result.why } : {}),
  });
  if (result.action === 'revoke' && result.outcome.revoked.length > 0) {
    const denied = Object.entries(image.verdicts).find(
      ([, v]) => v.decision === 'deny' && v.mode === 'enforce',
    );
    const alert: Alert = {
      type: 'attestation-revoked',
      image: {
        registry: image.registry,
        repository: image.repository,
        digest: image.digest,
        tags: image.tags,
      },
      labels: image.labels,
      detectedAt: now.toISOString(),
      links: {},
      ...(denied ? { environment: denied[0] } : {}),
      reason:
        result.outcome.revoked[0]?.revokedReason ??
        (message.cause === 'deleted' ? 'image deleted' : 'verdict changed to deny'),
      ruleIds: denied
        ? [...new Set(denied[1].reasons.filter((r) => r.level === 'deny').map((r) => r.ruleId))]
        : [],
      keyId: result.outcome.revoked[0]?.keyId,
    };
    await deps.publisher.publish([{ kind: 'alert', alert }]);
  }
}
