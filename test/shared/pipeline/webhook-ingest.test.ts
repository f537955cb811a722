// The webhook use case with fakes that satisfy its deps: refused payloads are dead letters (exact bytes), never ingested.
import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../../shared/ledger/image-ledger.js';
import { createLogger } from '../../../shared/logging/logger.js';
import {
  ingestWebhookDelivery,
  type WebhookIngestDeps,
  webhookKindOf,
} from '../../../shared/pipeline/webhook-ingest.js';

const now = new Date('2026-11-29T10:00:00Z');

function fakes() {
  const deadLetters: DeadLetter[] = [];
  let enriched = 0;
  const deps = {
    ingest: {
      ledger: {
        recordDeadLetter: async (dl: DeadLetter) => {
          deadLetters.push(dl);
          return `dl-${deadLetters.length}`;
        },
        recordAudit: async () => 'applied' as const,
      } as unknown as WebhookIngestDeps['ingest']['ledger'],
      policy: { current: async () => null } as unknown as WebhookIngestDeps['ingest']['policy'],
      publisher: { publish: async () => {} },
      watch: [],
    },
    enrichment: async () => {
      enriched += 1;
      return { registry: null, bases: null };
    },
    logger: createLogger({ sink: () => {} }),
  } satisfies WebhookIngestDeps;
  return { deps, deadLetters, enriched: () => enriched };
}

const source = { kind: 'distribution' as const, secret: 's', hosts: ['registry.example.com'] };

describe('ingestWebhookDelivery', () => {
  it('keeps a body that is not JSON as a dead letter with its exact bytes, and builds no registry client', async () => {
    const f = fakes();
    const rawBody = Buffer.from('{not json');
    const out = await ingestWebhookDelivery(
      f.deps,
      { kind: 'distribution', source, delivery: 'd1', body: rawBody, raw: '{not json', rawBody },
      now,
    );
    expect(out).toEqual({ accepted: false, reason: 'body is not JSON', deadLetter: 'dl-1' });
    expect(f.deadLetters[0]).toMatchObject({
      source: 'webhook-distribution',
      messageId: 'd1',
      raw: rawBody,
    });
    expect(f.enriched()).toBe(0);
  });

  it('refuses an event for a host the webhook may not speak for', async () => {
    const f = fakes();
    const body = {
      events: [
        {
          id: 'e1',
          timestamp: '2026-11-29T09:59:00Z',
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: `sha256:${'a'.repeat(64)}`,
            repository: 'team/app',
            tag: 'v1',
          },
          request: { host: 'elsewhere.example.org' },
        },
      ],
    };
    const raw = JSON.stringify(body);
    const out = await ingestWebhookDelivery(
      f.deps,
      { kind: 'distribution', source, delivery: 'd2', body, raw },
      now,
    );
    expect(out.accepted).toBe(false);
    expect(f.deadLetters[0]?.reason).toMatch(/may not speak for/);
    expect(f.enriched()).toBe(0);
  });
});

describe('webhookKindOf', () => {
  it('takes the path first, then the registry’s own content type or header', () => {
    expect(webhookKindOf('/harbor', {})).toBe('harbor');
    expect(
      webhookKindOf('/', {
        'content-type': 'application/vnd.docker.distribution.events.v2+json',
      }),
    ).toBe('distribution');
    expect(webhookKindOf('/', { 'x-github-event': 'package' })).toBe('github');
    expect(webhookKindOf('/other', {})).toBeNull();
  });
});
