// attestImage: verdict changes → sign (Binary Authorization occurrence + DSSE) or revoke, one per image and policy.

import type { Attestor } from '../../shared/attestations/attestor.js';
import { jsonOf } from '../../shared/events/pubsub-message.js';
import { localClientOptions } from '../../shared/findings/store/occurrences.js';
import { VerdictMessage } from '../../shared/messages.js';
import { parseInput } from '../../shared/parse-input.js';
import { type AttestVerdictDeps, attestVerdict } from '../../shared/pipeline/attest-verdict.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { ledgerOf, pubsubFunction } from '../../shared/runtime/pubsub-function.js';
import { registerEvent } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { effectPublisherOf } from '../../shared/runtime/services.js';

export const VERIFIER_ID = 'https://github.com/clearance-dev/clearance';

/** The signer, the Grafeas writer and the attestation ledger: loaded on the first image to attest. */
const attestorOf = depsFactory(async (r): Promise<Attestor> => {
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
    ledger: firestoreAttestationLedger({ db: await r.firestore(), clock: r.clock }),
    writer: s.attestorNote
      ? grafeasAttestationWriter(
          endpoint ? { clientOptions: localClientOptions(endpoint) as never } : {},
        )
      : undefined,
    noteName: s.attestorNote,
    verifierId: VERIFIER_ID,
    clock: r.clock,
    // A worker checks its deadline before creating an occurrence; a lease that outlasts the
    // deadline means the worker that creates still holds it (no second signer meanwhile).
    leaseMs: Math.max(120_000, 2 * r.config.handlerDeadlineMs),
    logger: r.logger,
  });
});

export type AttestImageDeps = Omit<AttestVerdictDeps, 'logger'>;

export const attestImageDeps = depsFactory(
  async (r): Promise<AttestImageDeps> => ({
    ledger: await ledgerOf(r),
    attestor: () => attestorOf(r),
    publisher: effectPublisherOf(r),
  }),
);

export function createAttestImageHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<AttestImageDeps> = attestImageDeps,
) {
  return pubsubFunction(
    'verdicts',
    async (msg, { root, logger, now, signal }) => {
      const message = parseInput(VerdictMessage, jsonOf(msg), 'verdict message');
      await attestVerdict({ ...(await deps(root)), logger }, message, now, signal);
    },
    getRoot,
  );
}

export const attestImage = createAttestImageHandler();

registerEvent('attestImage', attestImage);
