// Wraps a Pub/Sub-triggered handler: decode, run, and decide between retry (throw) and dead letter (acknowledge).
import { ClearanceError, errorMessage, isRetryable, TransientError } from '../errors.js';
import {
  type CloudEventLike,
  decodePubSubEvent,
  type PubSubMessage,
  rawOf,
} from '../events/pubsub-message.js';
import { FirestoreLedger } from '../ledger/ledger-store.js';
import type { Logger } from '../logging/logger.js';
import { currentRawBody } from './body-gate.js';
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

/** Handler work still running, including work whose delivery was already answered 5xx at its deadline. */
const running = new Set<Promise<unknown>>();

function track(work: Promise<unknown>): void {
  const settled = work.then(
    () => undefined,
    () => undefined,
  );
  running.add(settled);
  void settled.then(() => running.delete(settled));
}

/**
 * Resolves once every handler started so far in this process has settled, or after `timeoutMs`
 * (false then). Work outlives its delivery's deadline; whoever stops a backend under it (a
 * shutdown, the fault suite's Firestore restart) waits for it first.
 */
export async function handlersSettled(timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    for (;;) {
      if (running.size === 0) return true;
      const done = await Promise.race([Promise.all([...running]).then(() => true), expired]);
      if (!done) return false;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Google's clients retry an unreachable backend for minutes (a Firestore transaction about 4);
 * the delivery answers 5xx before Pub/Sub's ack deadline instead, and redelivery (idempotent
 * through the event markers) finishes the work once the backend is back.
 */
async function withDeadline<T>(run: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const deadline = new AbortController();
  const work = run(deadline.signal);
  track(work);
  if (ms <= 0) return work;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TransientError(`not finished within ${ms} ms`, { code: 'timeout' });
      deadline.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
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
