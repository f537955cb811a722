// Parses the `gcr` Pub/Sub topic's messages (GCR and Artifact Registry pushes/deletes) into RegistryEvents.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { type ImageRef, parseImageRef } from '../image-ref/image-ref.js';
import { parseJsonBytes } from '../json-bytes.js';
import { parseInput } from '../parse-input.js';

export const REGISTRY_EVENT_SOURCES = ['gcr', 'distribution', 'harbor', 'github'] as const;
export const RegistryEventSource = z.enum(REGISTRY_EVENT_SOURCES);
export type RegistryEventSource = z.infer<typeof RegistryEventSource>;

/** What every registry's notification is normalised into before it reaches the ledger. */
export const RegistryEvent = z.object({
  action: z.enum(['push', 'delete']),
  registry: z.string(),
  repository: z.string(),
  digest: z.string().nullable(),
  tag: z.string().nullable(),
  source: RegistryEventSource,
  eventId: z.string().optional(),
  /** RFC 3339 UTC, when the registry says the change happened. */
  occurredAt: z.string().optional(),
});
export type RegistryEvent = z.infer<typeof RegistryEvent>;

/** A string field holding an image reference, parsed in place so zod reports the path of a bad one. */
function refField(kind: 'digest' | 'tag') {
  return z
    .string()
    .max(1000)
    .transform((s, ctx): ImageRef => {
      let ref: ImageRef;
      try {
        ref = parseImageRef(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
      if (kind === 'digest' && (ref.digest === null || ref.tag !== null)) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be REGISTRY/REPO@sha256:… (a digest, no tag)',
        });
        return z.NEVER;
      }
      if (kind === 'tag' && (ref.tag === null || ref.digest !== null)) {
        ctx.addIssue({ code: 'custom', message: 'must be REGISTRY/REPO:TAG (a tag, no digest)' });
        return z.NEVER;
      }
      return ref;
    });
}

export const GcrMessage = z
  .object({
    action: z.enum(['INSERT', 'DELETE']),
    digest: refField('digest').optional(),
    tag: refField('tag').optional(),
  })
  .superRefine((m, ctx) => {
    if (!m.digest && !m.tag) {
      ctx.addIssue({ code: 'custom', message: 'needs a digest or a tag', path: ['digest'] });
    } else if (m.digest && m.tag && m.digest.name !== m.tag.name) {
      ctx.addIssue({
        code: 'custom',
        message: `digest names ${m.digest.name} but tag names ${m.tag.name}`,
        path: ['tag'],
      });
    }
  });

/** The Pub/Sub envelope of a gcr message (not the ledger's EventMeta, which adds the source). */
export interface GcrEnvelope {
  /** Pub/Sub messageId (the CloudEvent id). */
  eventId?: string;
  /** Pub/Sub publishTime. */
  occurredAt?: string;
}

/** Normalises one gcr topic message that has already been decoded from JSON. */
export function parseGcrEvent(body: unknown, meta: GcrEnvelope = {}): RegistryEvent {
  const m = parseInput(GcrMessage, body, 'gcr message');
  const ref = (m.digest ?? m.tag) as ImageRef;
  const event: RegistryEvent = {
    action: m.action === 'INSERT' ? 'push' : 'delete',
    registry: ref.registry,
    repository: ref.repository,
    digest: m.digest?.digest ?? null,
    tag: m.tag?.tag ?? null,
    source: 'gcr',
  };
  if (meta.eventId !== undefined) event.eventId = meta.eventId;
  if (meta.occurredAt !== undefined) event.occurredAt = meta.occurredAt;
  return event;
}

/** A gcr message is a few hundred bytes; anything much larger is not one. */
const MAX_MESSAGE_BYTES = 8192;

/**
 * Normalises the `data` of a Pub/Sub message: a base64 string as it appears in a push envelope
 * or CloudEvent, or the raw bytes the Pub/Sub client hands over.
 */
export function parseGcrEventData(
  data: string | Uint8Array,
  meta: GcrEnvelope = {},
): RegistryEvent {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data);
  if (bytes.length === 0) throw new InvalidInputError('invalid gcr message: empty data');
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new InvalidInputError(
      `invalid gcr message: ${bytes.length} bytes, the limit is ${MAX_MESSAGE_BYTES}`,
    );
  }
  return parseGcrEvent(parseJsonBytes(bytes, 'invalid gcr message: data'), meta);
}
