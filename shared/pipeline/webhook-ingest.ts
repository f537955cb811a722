// Registry webhooks (CNCF distribution, Harbor, GitHub `package`) → the same ledger path as the gcr topic; refused payloads become dead letters.
import type { IncomingHttpHeaders } from 'node:http';
import { WEBHOOK_KINDS, type WebhookKind, type WebhookSource } from '../config/config.js';
import { type ClearanceError, errorMessage, InvalidInputError, isRetryable } from '../errors.js';
import {
  normaliseDistribution,
  normaliseGithubPackage,
  normaliseHarbor,
  type RegistryEvent,
} from '../events/registry-events.js';
import { imageDocId } from '../image-ref/image-ref.js';
import { parseJsonBytes } from '../json-bytes.js';
import type { Logger } from '../logging/logger.js';
import { eventTime } from '../trust/event-time.js';
import { assertHostAllowed } from '../trust/webhook-sources.js';
import { type IngestDeps, ingestRegistryEvent } from './registry-ingest.js';

/** The webhook kind from the path's last segment, else from the registry's own content type or header. */
export function webhookKindOf(path: string, headers: IncomingHttpHeaders): WebhookKind | null {
  const last = path.split('/').filter(Boolean).at(-1) ?? '';
  if ((WEBHOOK_KINDS as readonly string[]).includes(last)) return last as WebhookKind;
  const type = String(headers['content-type'] ?? '');
  if (type.includes('vnd.docker.distribution.events')) return 'distribution';
  if (headers['x-github-event']) return 'github';
  return null;
}

/**
 * functions-framework parses only `application/json`; distribution posts
 * `application/vnd.docker.distribution.events.v2+json`, which arrives as raw bytes.
 */
function jsonBody(parsed: unknown, raw: string, rawBody: Buffer | undefined): object {
  let body = parsed;
  if (Buffer.isBuffer(body) || typeof body === 'string')
    body = parseJsonBytes(rawBody ?? Buffer.from(raw), 'body');
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InvalidInputError('body is not a JSON object');
  return body;
}

/** One authenticated delivery: `body` as the framework parsed it, `raw` its text, `rawBody` its bytes. */
export interface WebhookDelivery {
  kind: WebhookKind;
  source: WebhookSource;
  /** The registry's delivery id, or a hash of the payload: the idempotency key of its events. */
  delivery: string;
  body: unknown;
  raw: string;
  rawBody?: Buffer;
}

export interface WebhookIngestDeps {
  /** The ledger, policy and publisher of the ingest path (no registry yet). */
  ingest: Omit<IngestDeps, 'registry' | 'bases' | 'logger'>;
  /** Registry client and base proof, built only once a payload is accepted. */
  enrichment(): Promise<Pick<IngestDeps, 'registry' | 'bases'>>;
  logger: Logger;
}

export type WebhookOutcome =
  | { accepted: false; reason: string; deadLetter: string }
  | { accepted: true; events: number; scans: number; outcomes: string[] };

export async function ingestWebhookDelivery(
  deps: WebhookIngestDeps,
  d: WebhookDelivery,
  now: Date,
): Promise<WebhookOutcome> {
  const { kind, source, delivery, raw } = d;
  const { ledger } = deps.ingest;
  const logger = deps.logger;
  let events: RegistryEvent[] = [];
  let scans = 0;
  try {
    const body = jsonBody(d.body, raw, d.rawBody);
    switch (kind) {
      case 'distribution':
        events = normaliseDistribution(body);
        break;
      case 'github':
        events = normaliseGithubPackage(body, { deliveryId: delivery });
        break;
      case 'harbor': {
        const result = normaliseHarbor(body);
        if (result.kind === 'registry-events') events = result.events;
        else if (result.kind === 'ignored')
          logger.info('Harbor event ignored', { type: result.type });
        else {
          for (const sc of result.scans) assertHostAllowed(source, sc.registry);
          // Harbor's webhook carries counts only, not findings: kept in the audit trail, not as a verdict input.
          for (const s of result.scans) {
            await ledger.recordAudit(
              imageDocId(s.registry, s.repository, s.digest),
              {
                source: 'harbor',
                messageId: `${delivery}:${s.digest}`,
                ...eventTime(now, s.completedAt),
              },
              { kind: 'harbor-scan-completed', ...s },
              now,
            );
          }
          scans = result.scans.length;
        }
        break;
      }
      default: {
        const never: never = kind;
        throw new Error(`unhandled webhook ${String(never)}`);
      }
    }
    for (const ev of events) assertHostAllowed(source, ev.registry);
  } catch (err) {
    if (isRetryable(err)) throw err;
    // Registries retry a refused notification forever: acknowledge it and keep it as a dead letter.
    const id = await ledger.recordDeadLetter(
      {
        source: `webhook-${kind}`,
        reason: errorMessage(err),
        problems: (err as ClearanceError).details?.issues as never,
        raw: d.rawBody ?? raw,
        messageId: delivery,
      },
      now,
    );
    logger.warn('webhook payload rejected and dead-lettered', {
      reason: errorMessage(err),
      deadLetter: id,
    });
    return { accepted: false, reason: errorMessage(err), deadLetter: id };
  }
  const { registry, bases } = await deps.enrichment();
  const outcomes: string[] = [];
  for (const [i, ev] of events.entries()) {
    const messageId = ev.eventId ?? `${delivery}:${i}`;
    outcomes.push(
      await ingestRegistryEvent(
        { ...deps.ingest, registry, bases, logger },
        ev,
        // Ordered by arrival: the payload's own timestamp is a claim, kept clamped near it.
        { source: `webhook-${kind}`, messageId, ...eventTime(now, ev.occurredAt) },
        now,
      ),
    );
  }
  return { accepted: true, events: events.length, scans, outcomes };
}
