// Break-glass admissions: recorded in Firestore (its own document and each image's audit trail) and alerted, every one.
import { createHash } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import type { AlertInput } from '../alerts/alert.js';
import { COLLECTIONS, externalDocId } from '../ledger/collections.js';
import type { ImageLedger } from '../ledger/image-ledger.js';
import type { CheckAnswer } from './decide.js';

export interface BreakglassEvent {
  /** The AdmissionReview request uid: one record per admission request. */
  uid: string;
  environment: string;
  actor: string;
  caller: string;
  workload: { kind: string; namespace: string | null; name: string | null };
  /** The images that would have been denied, with the answers that denied them. */
  denied: {
    image: string;
    answer: CheckAnswer;
    /** Registry, repository and digest when the reference names or resolved to a digest. */
    ref: { registry: string; repository: string; digest: string } | null;
    /** The ledger document id when the ledger knows the image (its audit trail gets an entry). */
    imageId: string | null;
  }[];
  justification: string | null;
  at: Date;
}

export interface BreakglassRecorder {
  /** Resolves once the event is durably recorded and its alert published; throws otherwise. */
  record(event: BreakglassEvent): Promise<void>;
}

export interface AlertSink {
  publish(alert: AlertInput): Promise<string>;
}

/**
 * The breakglass-used alert for an event. Every use has one: its subject is the workload, and it
 * names the first denied image with a known digest when there is one (an image unknown to the
 * ledger, deployed by tag, has none — and is the use that most needs a human to look).
 */
export function breakglassAlert(event: BreakglassEvent): AlertInput {
  const first = event.denied.find((d) => d.ref !== null)?.ref;
  return {
    type: 'breakglass-used',
    ...(first
      ? {
          image: {
            registry: first.registry,
            repository: first.repository,
            digest: first.digest,
            tags: [],
          },
        }
      : {}),
    useId: createHash('sha256').update(event.uid).digest('hex').slice(0, 32),
    detectedAt: event.at.toISOString(),
    environment: event.environment,
    actor: event.actor.slice(0, 500),
    workload: {
      kind: event.workload.kind,
      ...(event.workload.namespace ? { namespace: event.workload.namespace } : {}),
      name: (event.workload.name ?? event.uid).slice(0, 253),
    },
    images: event.denied.map((d) => d.image),
    ...(event.justification ? { justification: event.justification.slice(0, 2000) } : {}),
  };
}

/**
 * Records `breakglass/{sha256(uid)}` and, through the ledger, an entry in `images/{id}/audit` for every
 * denied image the ledger knows (ids derive from the uid, so a retried request writes the same
 * entries). The audit entries do not bump the image version: the verdict did not change.
 */
export function firestoreBreakglassRecorder(
  db: () => Promise<Firestore>,
  alerts: AlertSink,
  ledger: () => Promise<Pick<ImageLedger, 'recordAudit'>>,
): BreakglassRecorder {
  return {
    async record(event) {
      const at = event.at.toISOString();
      const alert = breakglassAlert(event);
      const entry = {
        kind: 'breakglass',
        uid: event.uid,
        environment: event.environment,
        actor: event.actor,
        caller: event.caller,
        workload: event.workload,
        justification: event.justification,
        images: event.denied.map((d) => ({
          image: d.image,
          digest: d.answer.digest,
          ruleIds: d.answer.reasons.filter((r) => r.level === 'deny').map((r) => r.ruleId),
        })),
        alert: 'pending',
        at,
      };
      const [firestore, images] = await Promise.all([db(), ledger()]);
      for (const d of event.denied) {
        if (!d.imageId) continue;
        await images.recordAudit(
          d.imageId,
          { source: 'checkImage', messageId: event.uid, at },
          entry,
          event.at,
          { auditId: `breakglass:${event.uid}`, onlyIfExists: true },
        );
      }
      const doc = firestore.collection(COLLECTIONS.breakglass).doc(externalDocId(event.uid));
      await doc.set(entry);
      // Recorded first, then alerted: a use that cannot be both is refused by the caller, and the
      // record says so (best effort: the refusal stands whether or not this write lands).
      try {
        await alerts.publish(alert);
      } catch (err) {
        await doc.set({ alert: 'failed', outcome: 'refused' }, { merge: true }).catch(() => {});
        throw err;
      }
      // The alert is out and the use admitted: a failure to note it here must not refuse it.
      await doc.set({ alert: 'published' }, { merge: true }).catch(() => {});
    },
  };
}
