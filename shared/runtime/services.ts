// Domain services built from the composition root, once per instance and only when a function first needs them.
import type { BaseProofDeps } from '../bases/base-proof.js';
import { firestoreBaseLayerStore } from '../bases/base-store.js';
import { grafeasOccurrenceReader, type OccurrenceReader } from '../findings/store/occurrences.js';
import { parseImageRef } from '../image-ref/image-ref.js';
import { type FixSightingStore, firestoreFixSightings } from '../ledger/fix-sightings.js';
import type { UseCaseLedger } from '../ledger/image-ledger.js';
import { type EffectPublisher, pubsubEffectPublisher } from '../pipeline/effects.js';
import { firestorePolicySource, type PolicySource } from '../policy/store/policy-source.js';
import { firestoreVexStore, type VexStore } from '../policy/store/vex-store.js';
import type { Registry } from '../registry/client.js';
import { depsFactory } from './deps.js';
import { ledgerOf } from './pubsub-function.js';
import type { Root } from './root.js';

export interface IngestServices {
  ledger: UseCaseLedger;
  policy: PolicySource;
  vex: VexStore;
  publisher: EffectPublisher;
  /** When each fix was first seen: fix grace periods count from there. */
  fixes: FixSightingStore;
}

export const ingestServices = depsFactory(async (r): Promise<IngestServices> => {
  const db = await r.firestore();
  const ledger = await ledgerOf(r);
  return {
    ledger,
    policy: firestorePolicySource(db, r.clock),
    vex: firestoreVexStore(db),
    publisher: effectPublisherOf(r),
    fixes: firestoreFixSightings(db, { ops: ledger.ops }),
  };
});

/** Publishes verdict, alert and re-evaluation messages; needs Pub/Sub only, not the ledger. */
export function effectPublisherOf(r: Root): EffectPublisher {
  return pubsubEffectPublisher(() => r.pubsub(), r.config.topics, r.config.check.url);
}

/** The registry client; tests `provide` a sandboxed one. */
export const registryOf = depsFactory(async (r): Promise<Registry> => {
  const { createRegistryClient, DEFAULT_INSECURE_HOSTS } = await import('../registry/client.js');
  const { googleAuthTokenSource } = await import('../registry/tokens.js');
  return createRegistryClient({
    tokens: googleAuthTokenSource(),
    insecureHosts: r.config.registryInsecureHosts ?? DEFAULT_INSECURE_HOSTS,
  });
});

/** Registries of the tracked bases and CLEARANCE_BASE_REGISTRIES: where base claims may send Clearance (besides the image's own registry). */
export function baseRegistries(r: Root): Set<string> {
  const hosts = new Set(r.config.baseRegistries.map((h) => h.toLowerCase()));
  for (const name of r.config.baseImages) {
    try {
      hosts.add(parseImageRef(name).registry.toLowerCase());
    } catch {
      // the watcher reports a tracked base that does not parse
    }
  }
  return hosts;
}

/** Reads and caches base layers to prove base claims (registry client and `baseLayers` cache). */
export const baseProofOf = depsFactory(async (r): Promise<BaseProofDeps> => {
  const allowed = baseRegistries(r);
  return {
    store: firestoreBaseLayerStore(await r.firestore(), { ops: (await ledgerOf(r)).ops }),
    registry: await registryOf(r),
    allowRegistry: (registry) => allowed.has(registry.toLowerCase()),
  };
});

export const occurrencesOf = depsFactory(
  async (r): Promise<OccurrenceReader> =>
    grafeasOccurrenceReader({ endpoint: r.config.containerAnalysisEndpoint, logger: r.logger }),
);
