// Domain services built from the composition root, once per instance and only when a function first needs them.

import type { FirestoreLedger } from '../ledger/ledger-store.js';
import { type EffectPublisher, pubsubEffectPublisher } from '../pipeline/effects.js';
import { grafeasOccurrenceReader, type OccurrenceReader } from '../pipeline/occurrences.js';
import { firestorePolicySource, type PolicySource } from '../pipeline/policy-source.js';
import { firestoreVexStore, type VexStore } from '../pipeline/vex-store.js';
import type { Registry } from '../registry/client.js';
import { ledgerOf } from './pubsub-function.js';
import type { Root } from './root.js';

export interface IngestServices {
  ledger: FirestoreLedger;
  policy: PolicySource;
  vex: VexStore;
  publisher: EffectPublisher;
}

export async function ingestServices(r: Root): Promise<IngestServices> {
  return r.lazy('ingest-services', async () => {
    const db = await r.firestore();
    return {
      ledger: await ledgerOf(r),
      policy: firestorePolicySource(db, r.clock),
      vex: firestoreVexStore(db),
      publisher: effectPublisherOf(r),
    };
  });
}

/** Publishes verdict, alert and re-evaluation messages; needs Pub/Sub only, not the ledger. */
export function effectPublisherOf(r: Root): EffectPublisher {
  return pubsubEffectPublisher(() => r.pubsub(), r.config.topics, r.config.check.url);
}

export function registryOf(r: Root): Promise<Registry> {
  return r.lazy('registry', async () => {
    const { createRegistryClient, DEFAULT_INSECURE_HOSTS } = await import('../registry/client.js');
    const { googleAuthTokenSource } = await import('../registry/tokens.js');
    return createRegistryClient({
      tokens: googleAuthTokenSource(),
      insecureHosts: [...DEFAULT_INSECURE_HOSTS, ...r.config.registryInsecureHosts],
    });
  });
}

export function occurrencesOf(r: Root): Promise<OccurrenceReader> {
  return r.lazy('occurrences', async () =>
    grafeasOccurrenceReader({ endpoint: r.config.containerAnalysisEndpoint, logger: r.logger }),
  );
}
