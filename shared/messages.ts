// Messages between functions, one zod schema each, imported by producer and consumer alike.
import { z } from 'zod';
import { parseImageDocId } from './image-ref/image-ref.js';

export { Alert, type AlertInput } from './alerts/alert.js';

/**
 * An image document id (`registry~repository@sha256:…`, canonical). Checked at the boundary: a
 * `/` would make it a Firestore path, which fails as a server error and is redelivered forever.
 */
export const ImageDocId = z
  .string()
  .min(1)
  .max(1500)
  .refine(
    (id) => {
      try {
        parseImageDocId(id);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'expected an image document id (registry~repository@sha256:<64 hex digits>)' },
  );

/** verdicts topic → attestImage: the image to (re)consider; it reads the ledger for the rest. */
export const VerdictMessage = z.object({
  imageId: ImageDocId,
  cause: z.enum(['verdict-changed', 'deleted']),
  policyHash: z.string().nullable(),
});
export type VerdictMessage = z.infer<typeof VerdictMessage>;

export const RunId = z.string().regex(/^[\w.-]{1,100}$/, 'letters, digits, _ . - (at most 100)');

/** reevaluate topic → reevaluate: start a run, process one page of it, one image, or the pending registry reads. */
export const ReevaluateMessage = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('start'),
    runId: RunId.optional(),
    reason: z.string().max(200).default('manual'),
  }),
  z.object({
    kind: z.literal('page'),
    runId: RunId,
    cursor: z.string().max(1500).nullable(),
    page: z.number().int().nonnegative(),
  }),
  z.object({ kind: z.literal('image'), imageId: ImageDocId }),
  /**
   * Reads the registry for pushed images still waiting for it (scheduled every few minutes): the
   * retry that outlives a push's own redeliveries (shared/pipeline/registry-ingest.ts).
   */
  z.object({ kind: z.literal('enrich'), limit: z.number().int().positive().max(500).default(100) }),
]);
export type ReevaluateMessage = z.infer<typeof ReevaluateMessage>;
export type ReevaluateMessageInput = z.input<typeof ReevaluateMessage>;

/** alerts topic, attribute `action`: Cloud Scheduler's tick that folds digests and resends stuck alerts. */
export const FLUSH_ACTION = 'flush';
export const FlushAttributes = z.object({ action: z.literal(FLUSH_ACTION) }).passthrough();
