// Decodes the Pub/Sub CloudEvent that functions-framework hands a function into a checked message.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { parseJsonBytes } from '../json-bytes.js';
import { issuesOf } from '../parse-input.js';

export const PUBSUB_EVENT_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

const PubSubEventData = z.object({
  message: z.object({
    data: z.string().optional(),
    attributes: z.record(z.string(), z.string()).nullish(),
    messageId: z.string().optional(),
    message_id: z.string().optional(),
    publishTime: z.string().optional(),
    publish_time: z.string().optional(),
  }),
  subscription: z.string().optional(),
});

export interface PubSubMessage {
  messageId: string;
  publishTime: string;
  attributes: Record<string, string>;
  data: Buffer;
  subscription: string | null;
}

export interface CloudEventLike {
  id?: string;
  type?: string;
  time?: string;
  data?: unknown;
}

/**
 * The event as the framework handed it, as text, for a dead-letter record when the request's own
 * bytes are not at hand (a handler called without the body gate): every field, not a chosen few.
 */
export function rawOf(event: CloudEventLike): string {
  try {
    return JSON.stringify(event) ?? String(event);
  } catch {
    return String(event?.data);
  }
}

function isUnconvertedEnvelope(event: unknown): boolean {
  if (!event || typeof event !== 'object' || 'type' in event) return false;
  const m = (event as { message?: unknown }).message;
  if (!m || typeof m !== 'object') return false;
  const id =
    (m as { messageId?: unknown; message_id?: unknown }).messageId ??
    (m as { message_id?: unknown }).message_id;
  return typeof id === 'string' && id.length > 0;
}

export function decodePubSubEvent(
  event: CloudEventLike,
  maxBytes: number,
  now: Date,
): PubSubMessage {
  if (isUnconvertedEnvelope(event)) {
    // functions-framework turns a push envelope into a CloudEvent only when its message has data;
    // a message without data (attributes only, which Pub/Sub allows) arrives as the envelope.
    const m = (event as { message: { messageId?: unknown; message_id?: unknown } }).message;
    const id = String(m.messageId ?? m.message_id);
    return decodePubSubEvent({ id, type: PUBSUB_EVENT_TYPE, data: event }, maxBytes, now);
  }
  if (!event || event.type !== PUBSUB_EVENT_TYPE || !event.id) {
    throw new InvalidInputError(
      `not a Pub/Sub CloudEvent (type ${JSON.stringify(event?.type ?? null)}, id ${JSON.stringify(event?.id ?? null)})`,
    );
  }
  const parsed = PubSubEventData.safeParse(event.data);
  if (!parsed.success) {
    throw new InvalidInputError('Pub/Sub event data is not a push envelope', {
      details: {
        issues: issuesOf(parsed.error),
      },
    });
  }
  const m = parsed.data.message;
  const b64 = m.data ?? '';
  if (b64.length > Math.ceil((maxBytes * 4) / 3) + 4) {
    throw new InvalidInputError(`message data is larger than ${maxBytes} bytes`);
  }
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64))
    throw new InvalidInputError('message data is not base64');
  const data = Buffer.from(b64, 'base64');
  return {
    messageId: m.messageId ?? m.message_id ?? event.id,
    publishTime: m.publishTime ?? m.publish_time ?? event.time ?? now.toISOString(),
    attributes: m.attributes ?? {},
    data,
    subscription: parsed.data.subscription ?? null,
  };
}

/** Parses message data as JSON (strict UTF-8), or fails as invalid input. */
export function jsonOf(msg: Pick<PubSubMessage, 'data'>): unknown {
  return parseJsonBytes(msg.data, 'message data');
}
