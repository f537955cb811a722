// Public surface of the alerts module, plus the wiring notifyOwners needs (one call per Pub/Sub message).
import type { Firestore } from '@google-cloud/firestore';
import { type Clock, systemClock } from '../clock.js';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { decodeAlertMessage } from './alert.js';
import { type ChatSender, fetchChatSender } from './delivery.js';
import { type ChannelResult, Notifier, type NotifierOptions } from './notifier.js';
import { parseRoutingDocument } from './routing.js';
import { type SecretSource, secretSource } from './secrets.js';

export * from './alert.js';
export * from './delivery.js';
export * from './format.js';
export * from './notifier.js';
export * from './rate-limit.js';
export * from './routing.js';
export * from './secrets.js';

/**
 * A Notifier with production defaults: the routing document as text (CLEARANCE_ROUTING),
 * secrets by reference form (Secret Manager, env:, file:), fetch with a 10 s timeout, real time.
 */
export function createNotifier(
  options: {
    db: Firestore;
    logger: Logger;
    routingDocument: string;
    clock?: Clock;
    secrets?: SecretSource;
    sender?: ChatSender;
  } & Partial<Omit<NotifierOptions, 'db' | 'logger' | 'routing' | 'clock' | 'secrets' | 'sender'>>,
): Notifier {
  const { routingDocument, ...rest } = options;
  const clock = options.clock ?? systemClock;
  return new Notifier({
    ...rest,
    routing: parseRoutingDocument(routingDocument),
    clock,
    secrets: options.secrets ?? secretSource(),
    sender: options.sender ?? fetchChatSender({ timeoutMs: 10_000, now: () => clock.now() }),
  });
}

export type AlertMessageOutcome =
  | { outcome: 'handled'; results: ChannelResult[] }
  | { outcome: 'rejected'; reason: string; issues: unknown };

/**
 * One alerts-topic message: a malformed one is logged and reported as rejected (ack it and
 * record a dead letter); a TransientError propagates so Pub/Sub redelivers.
 */
export async function handleAlertMessage(
  notifier: Notifier,
  data: Buffer | Uint8Array | string,
  messageId: string,
  logger: Logger,
): Promise<AlertMessageOutcome> {
  try {
    const alert = decodeAlertMessage(data);
    return { outcome: 'handled', results: await notifier.handle(alert, messageId) };
  } catch (err) {
    if (err instanceof InvalidInputError) {
      logger.warn('alert message rejected', { messageId, reason: err.message });
      return { outcome: 'rejected', reason: err.message, issues: err.details?.issues ?? [] };
    }
    throw err;
  }
}
