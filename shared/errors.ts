// The project's error hierarchy: every failure carries a code and says whether a retry can help.

/** Codes of failures that are final: the input is wrong and retrying will not fix it. */
export const FINAL_CODES = [
  'invalid-input',
  'invalid-config',
  'invalid-policy',
  'not-found',
  'unauthenticated',
  'forbidden',
  'payload-too-large',
  'integrity',
] as const;

/** Codes of failures that are transient: throw so Pub/Sub (or the caller) tries again. */
export const TRANSIENT_CODES = ['unavailable', 'timeout', 'conflict'] as const;

export type FinalCode = (typeof FINAL_CODES)[number];
export type TransientCode = (typeof TRANSIENT_CODES)[number];
export type ErrorCode = FinalCode | TransientCode;

export class ClearanceError<Code extends string = ErrorCode> extends Error {
  readonly code: Code;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: Code,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ClearanceError';
    this.code = code;
    this.details = options.details;
  }

  /** Whether the operation may succeed if tried again. */
  get retryable(): boolean {
    return (TRANSIENT_CODES as readonly string[]).includes(this.code);
  }
}

/** Input from outside that does not parse or validate; recorded as a dead letter, never retried. */
export class InvalidInputError extends ClearanceError<'invalid-input'> {
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('invalid-input', message, options);
    this.name = 'InvalidInputError';
  }
}

/** A dependency (Firestore, a Google API, a registry) failed in a way a retry may fix. */
export class TransientError extends ClearanceError<'unavailable' | 'timeout' | 'conflict'> {
  constructor(
    message: string,
    options: {
      cause?: unknown;
      code?: 'unavailable' | 'timeout' | 'conflict';
      details?: Record<string, unknown>;
    } = {},
  ) {
    super(options.code ?? 'unavailable', message, options);
    this.name = 'TransientError';
  }
}

/** gRPC status codes that mean "try again later" (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN). */
const RETRYABLE_GRPC = new Set([2, 4, 8, 10, 13, 14]);
const RETRYABLE_NET = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Decides whether an unknown error is worth a retry. Errors we do not recognise count as
 * transient: redelivery is bounded by the subscription's dead-letter policy, while wrongly
 * treating a transient failure as final would lose the event.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ClearanceError) return err.retryable;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; cause?: unknown };
    if (typeof e.code === 'number') return RETRYABLE_GRPC.has(e.code);
    if (typeof e.code === 'string' && RETRYABLE_NET.has(e.code)) return true;
    if (e.cause) return isRetryable(e.cause);
  }
  return true;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
