// ingestWebhook: CNCF distribution, Harbor and GitHub `package` webhooks → the same ledger path as the gcr topic.

import { createHash } from 'node:crypto';
import { ClearanceError, errorMessage, isRetryable } from '../../shared/errors.js';
import {
  normaliseDistribution,
  normaliseGithubPackage,
  normaliseHarbor,
  type RegistryEvent,
} from '../../shared/events/registry-events.js';
import { type HttpRequestLike, httpFunction } from '../../shared/http/http-function.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { ingestRegistryEvent } from '../../shared/pipeline/registry-ingest.js';
import { ledgerOf } from '../../shared/runtime/pubsub-function.js';
import { registerHttp } from '../../shared/runtime/register.js';
import { root } from '../../shared/runtime/root.js';
import { baseProofOf, ingestServices, registryOf } from '../../shared/runtime/services.js';
import { eventTime } from '../../shared/trust/event-time.js';
import {
  assertHostAllowed,
  authenticateWebhook,
  authenticateWebhookHeaders,
} from '../../shared/trust/webhook-sources.js';

export const WEBHOOK_KINDS = ['distribution', 'harbor', 'github'] as const;
type WebhookKind = (typeof WEBHOOK_KINDS)[number];

function kindOf(req: Pick<HttpRequestLike, 'path' | 'headers'>): WebhookKind | null {
  const last = req.path.split('/').filter(Boolean).at(-1) ?? '';
  if ((WEBHOOK_KINDS as readonly string[]).includes(last)) return last as WebhookKind;
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('vnd.docker.distribution.events')) return 'distribution';
  if (req.headers['x-github-event']) return 'github';
  return null;
}

/**
 * functions-framework parses only `application/json`; distribution posts
 * `application/vnd.docker.distribution.events.v2+json`, which arrives as raw bytes.
 */
function jsonBody(req: HttpRequestLike, raw: string): object {
  let body = req.body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    try {
      body = JSON.parse(raw);
    } catch {
      throw new ClearanceError('invalid-input', 'body is not JSON');
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ClearanceError('invalid-input', 'body is not a JSON object');
  return body;
}

export const ingestWebhook = httpFunction('ingestWebhook', async (req, { root, logger, now }) => {
  if (req.method !== 'POST') throw new ClearanceError('invalid-input', 'use POST');
  const kind = kindOf(req);
  if (!kind)
    throw new ClearanceError(
      'unauthenticated',
      "unknown webhook: post to /distribution, /harbor or /github with that registry's own credential",
    );
  const source = root.config.webhooks[kind];
  authenticateWebhook(kind, source, req.headers, req.rawBody);
  if (!source) throw new ClearanceError('unauthenticated', `${kind} webhooks are not configured`);
  const raw = req.rawBody?.toString('utf8') ?? JSON.stringify(req.body ?? null);
  const delivery =
    String(req.headers['x-github-delivery'] ?? '') ||
    createHash('sha256').update(raw).digest('hex').slice(0, 32);
  const services = await ingestServices(root);
  let events: RegistryEvent[] = [];
  let scans = 0;
  try {
    const body = jsonBody(req, raw);
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
            await services.ledger.recordAudit(
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
    const ledger = await ledgerOf(root);
    const id = await ledger.recordDeadLetter(
      {
        source: `webhook-${kind}`,
        reason: errorMessage(err),
        problems: (err as ClearanceError).details?.issues as never,
        raw: req.rawBody ?? raw,
        messageId: delivery,
      },
      now,
    );
    logger.warn('webhook payload rejected and dead-lettered', {
      reason: errorMessage(err),
      deadLetter: id,
    });
    return { status: 202, body: { accepted: false, reason: errorMessage(err), deadLetter: id } };
  }
  const registry = await registryOf(root);
  const bases = await baseProofOf(root);
  const outcomes: string[] = [];
  for (const [i, ev] of events.entries()) {
    const messageId = ev.eventId ?? `${delivery}:${i}`;
    outcomes.push(
      await ingestRegistryEvent(
        { ...services, registry, bases, watch: root.config.watchRepositories, logger },
        ev,
        // Ordered by arrival: the payload's own timestamp is a claim, kept clamped near it.
        { source: `webhook-${kind}`, messageId, ...eventTime(now, ev.occurredAt) },
        now,
      ),
    );
  }
  return { status: 200, body: { accepted: true, events: events.length, scans, outcomes } };
});

registerHttp('ingestWebhook', ingestWebhook, {
  authenticate: (req) =>
    authenticateWebhookHeaders(
      kindOf({ path: (req.url ?? '/').split('?')[0] ?? '/', headers: req.headers }),
      root().config.webhooks,
      req.headers,
    ),
});
