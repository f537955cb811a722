import { describe, expect, it } from 'vitest';
import { isRetryable } from '../../../shared/errors.js';
import { PUBSUB_EVENT_TYPE } from '../../../shared/events/pubsub-message.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { handlersSettled } from '../../../shared/runtime/deadline.js';
import { pubsubFunction } from '../../../shared/runtime/pubsub-function.js';
import { createRoot } from '../../../shared/runtime/root.js';

const root = createRoot(
  { CLEARANCE_PROJECT_ID: 'p', CLEARANCE_HANDLER_DEADLINE_MS: '50' },
  { logger: createLogger({ sink: () => {} }) },
);

const event = {
  id: 'm-1',
  type: PUBSUB_EVENT_TYPE,
  data: {
    message: {
      messageId: 'm-1',
      data: Buffer.from('{}').toString('base64'),
      publishTime: '2026-11-29T10:00:00Z',
    },
    subscription: 'projects/p/subscriptions/s',
  },
};

describe('pubsubFunction deadline', () => {
  it('answers a retryable timeout at its deadline and aborts the signal the still-running work holds', async () => {
    let finish!: () => void;
    const held = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const seen: boolean[] = [];
    const fn = pubsubFunction(
      'test-deadline',
      async (_msg, { signal }) => {
        seen.push(signal.aborted);
        await held;
        seen.push(signal.aborted);
      },
      () => root,
    );
    const err = await fn(event).catch((e: unknown) => e);
    expect(isRetryable(err)).toBe(true);
    expect(err).toMatchObject({ code: 'timeout' });
    // The work outlives the answer; it sees the abort, and handlersSettled waits for it.
    expect(await handlersSettled(10)).toBe(false);
    finish();
    expect(await handlersSettled(1_000)).toBe(true);
    expect(seen).toEqual([false, true]);
  });

  it('leaves the signal alone for work that finishes in time', async () => {
    let signal: AbortSignal | undefined;
    const fn = pubsubFunction(
      'test-deadline',
      async (_msg, ctx) => {
        signal = ctx.signal;
      },
      () => root,
    );
    await fn(event);
    await new Promise((r) => setTimeout(r, 80));
    expect(signal?.aborted).toBe(false);
  });
});
