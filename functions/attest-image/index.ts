// attestImage: verdict changes → sign (Binary Authorization occurrence + DSSE) or revoke, one per image and policy.

import type { Alert } from '../../shared/alerts/alert.js';
import type { Attestor } from '../../shared/attestations/attestor.js';
import { jsonOf } from '../../shared/events/pubsub-message.js';
import { localClientOptions } from '../../shared/findings/store/occurrences.js';
import { VerdictMessage } from '../../shared/messages.js';
import { parseInput } from '../../shared/parse-input.js';
import { ledgerOf, pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import type { Root } from '../../shared/runtime/root.js';
import { effectPublisherOf } from '../../shared/runtime/services.js';

export const VERIFIER_ID = 'https://github.com/clearance-dev/clearance';

function attestorOf(r: Root): Promise<Attestor> {
  return r.lazy('attestor', async () => {
    const [
      { createAttestor },
      { createSigner },
      { firestoreAttestationLedger },
      { grafeasAttestationWriter },
    ] = await Promise.all([
      import('../../shared/attestations/attestor.js'),
      import('../../shared/attestations/signer.js'),
      import('../../shared/ledger/attestation-ledger.js'),
      import('../../shared/attestations/occurrences.js'),
    ]);
    const { signer: s } = r.config;
    const signer = await createSigner(
      s.kind === 'kms'
        ? { kind: 'kms', keyVersionName: s.kmsKeyVersion ?? '' }
        : { kind: 'local', path: s.localKeyFile },
    );
    const endpoint = r.config.containerAnalysisEndpoint;
    return createAttestor({
      signer,
      ledger: firestoreAttestationLedger({ db: await r.firestore() }),
      writer: s.attestorNote
        ? grafeasAttestationWriter(
            endpoint ? { clientOptions: localClientOptions(endpoint) as never } : {},
          )
        : undefined,
      noteName: s.attestorNote,
      verifierId: VERIFIER_ID,
      logger: r.logger,
    });
  });
}

export const attestImage = pubsubFunction('verdicts', async (msg, { root, logger, now }) => {
  const message = parseInput(VerdictMessage, jsonOf(msg), 'verdict message');
  const ledger = await ledgerOf(root);
  const image = await ledger.getImage(message.imageId);
  if (!image) {
    logger.warn('verdict message for an image not in the ledger', { imageId: message.imageId });
    return;
  }
  const attestor = await attestorOf(root);
  const result = await attestor.reconcile({ image, now });
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
    await effectPublisherOf(root).publish([{ kind: 'alert', alert }]);
  }
});

registerEvent('attestImage', attestImage);
