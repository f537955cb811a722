// Handler deadlines: answer retryably in time, tell the work it was answered, and know what still runs.
import { TransientError } from '../errors.js';

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
 * the delivery answers 5xx before Pub/Sub's ack deadline (or the sender's timeout) instead, and
 * redelivery (idempotent through the event markers) finishes the work once the backend is back.
 * `ms` <= 0: no deadline.
 */
export async function withDeadline<T>(
  run: (signal: AbortSignal) => Promise<T>,
  ms: number,
): Promise<T> {
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
