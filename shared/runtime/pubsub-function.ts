// Wraps a Pub/Sub-triggered handler: decode, run, and decide between retry (throw) and dead letter (acknowledge).
import { ClearanceError, errorMessage, isRetryable } from '../errors.js';
import {
  type CloudEventLike,
  decodePubSubEvent,
  type PubSubMessage,
  rawOf,
} from '../events/pubsub-message.js';
import { FirestoreLedger } from '../ledger/ledger-store.js';
import type { Logger } from '../logging/logger.js';
import { currentRawBody } from './body-gate.js';
import { withDeadline } from './deadline.js';
import { depsFactory } from './deps.js';
import { root as defaultRoot, type Root } from './root.js';

export interface HandlerContext {
  root: Root;
  logger: Logger;
  now: Date;
  /**
   * Aborted when the delivery is answered 5xx at its deadline. The work goes on (it cannot be
   * stopped mid-write), but should start no new outside side effect: a redelivery is doing it.
   */
  signal: AbortSignal;
}

/** The ledger adapter, one per root. */
export const ledgerOf = depsFactory(
  async (r) => new FirestoreLedger(await r.firestore(), { eventTtlDays: r.config.eventTtlDays }),
);

function problemsOf(err: unknown): { path: string; message: string }[] | undefined {
  const list =
    err instanceof ClearanceError ? (err.details?.issues ?? err.details?.problems) : undefined;
  if (Array.isArray(list)) return list as { path: string; message: string }[];
  return undefined;
}

/**
 * Final failures are recorded as dead letters and acknowledged, so Pub/Sub stops retrying;
 * transient ones throw, so Pub/Sub redelivers (bounded by the subscription's dead-letter policy).
 */
export function pubsubFunction(
  source: string,
  handle: (msg: PubSubMessage, ctx: HandlerContext) => Promise<void>,
  getRoot: () => Root = defaultRoot,
): (event: CloudEventLike) => Promise<void> {
  return async (event) => {
    const r = getRoot();
    const now = r.clock.now();
    let logger = r.logger.child({ function: source, eventId: event?.id ?? null });
    let msg: PubSubMessage | undefined;
    try {
      msg = decodePubSubEvent(event, r.config.maxBodyBytes, now);
      logger = logger.child({ messageId: msg.messageId });
      const m = msg;
      await withDeadline(
        (signal) => handle(m, { root: r, logger, now, signal }),
        r.config.handlerDeadlineMs,
      );
    } catch (err) {
      if (isRetryable(err)) {
        logger.error('transient failure, the message will be redelivered', { err });
        throw err;
      }
      const ledger = await ledgerOf(r);
      const id = await ledger.recordDeadLetter(
        {
          source,
          reason: errorMessage(err),
          problems: problemsOf(err),
          // Undecodable: the request body exactly as received (the gate kept its bytes).
          raw: msg ? msg.data : (currentRawBody() ?? rawOf(event)),
          messageId: msg?.messageId ?? event?.id ?? null,
          attributes: msg?.attributes,
        },
        now,
      );
      logger.warn('input rejected and dead-lettered', {
        reason: errorMessage(err),
        deadLetter: id,
      });
    }
  };
}
