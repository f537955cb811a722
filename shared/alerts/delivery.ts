// Posting to chat webhooks: the ChatSender interface, a fetch implementation, and the retry maths (Retry-After, backoff).
import { redact } from '../logging/logger.js';

/** What one POST came to; `reason` never contains the webhook URL. */
export type SendOutcome =
  | { outcome: 'delivered'; status: number }
  | { outcome: 'retry'; status: number | null; retryAfterMs: number | null; reason: string }
  | { outcome: 'permanent'; status: number; reason: string };

export interface ChatSender {
  send(url: string, body: unknown): Promise<SendOutcome>;
}

/**
 * `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Null when absent or unreadable, so the caller falls back to its own backoff.
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | null {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return null;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now.getTime());
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 60_000 };

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a uniform draw in [0, min(max, base·2^attempt)). `attempt` counts from 0.
 */
export function backoffDelay(
  attempt: number,
  random: () => number,
  options: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * cap);
}

/** Classifies an HTTP answer from a webhook. */
export function classifyResponse(
  status: number,
  retryAfter: string | null,
  now: Date,
  bodySnippet = '',
): SendOutcome {
  if (status >= 200 && status < 300) return { outcome: 'delivered', status };
  const detail = bodySnippet ? `: ${bodySnippet}` : '';
  if (status === 429) {
    return {
      outcome: 'retry',
      status,
      retryAfterMs: parseRetryAfter(retryAfter, now),
      reason: `HTTP 429 rate limited${detail}`,
    };
  }
  if (status >= 500 || status === 408) {
    return {
      outcome: 'retry',
      status,
      retryAfterMs: parseRetryAfter(retryAfter, now),
      reason: `HTTP ${status}${detail}`,
    };
  }
  return { outcome: 'permanent', status, reason: `HTTP ${status}${detail}` };
}

/** A short, single-line body for the dead-letter reason, with the URL and any registered secret removed. */
function scrubBody(text: string, url: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return redact(url ? oneLine.split(url).join('[webhook]') : oneLine).slice(0, 300);
}

/** Network error code (ECONNREFUSED…) without the message, which may quote the address. */
function networkReason(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return `network error ${code}`;
    e = (e as { cause?: unknown }).cause;
  }
  return 'network error';
}

/**
 * Webhook POSTs with Node's fetch. Every request is bounded by `timeoutMs` (a hanging webhook is
 * a retryable failure, not a stuck function).
 */
export function fetchChatSender(
  options: { timeoutMs?: number; now?: () => Date; fetch?: typeof fetch } = {},
): ChatSender {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const now = options.now ?? (() => new Date());
  const doFetch = options.fetch ?? fetch;
  return {
    async send(url, body) {
      let res: Response;
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=UTF-8' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const name = (err as { name?: string }).name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          return {
            outcome: 'retry',
            status: null,
            retryAfterMs: null,
            reason: `timed out after ${timeoutMs} ms`,
          };
        }
        return { outcome: 'retry', status: null, retryAfterMs: null, reason: networkReason(err) };
      }
      let text = '';
      try {
        text = await res.text();
      } catch {
        // the status is what matters; a body cut short does not change it
      }
      return classifyResponse(
        res.status,
        res.headers.get('retry-after'),
        now(),
        scrubBody(text, url),
      );
    },
  };
}

/** A sleep that really waits; tests pass one that moves a fixed clock instead. */
export const realSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
