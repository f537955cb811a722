// Webhook registries: each authenticates with its own secret and may speak only for the registry hosts it is bound to.
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookKind, WebhookSource } from '../config/config.js';
import { ClearanceError } from '../errors.js';
import { tokenEquals } from '../http/auth.js';
import { isGoogleRegistryHost } from '../image-ref/google-registry.js';
import { normaliseRegistry } from '../image-ref/image-ref.js';

const SECRET_VARIABLE: Record<WebhookKind, string> = {
  distribution: 'CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN',
  harbor: 'CLEARANCE_WEBHOOK_HARBOR_TOKEN',
  github: 'CLEARANCE_WEBHOOK_GITHUB_SECRET',
};

/**
 * Checks a webhook request against its registry's own secret: GitHub's HMAC signature
 * (X-Hub-Signature-256) for GitHub, the Authorization header (Bearer or the raw value Harbor
 * sends) otherwise. Without a configured secret nothing is accepted: fail closed.
 */
export function authenticateWebhook(
  kind: WebhookKind,
  source: WebhookSource | null,
  headers: IncomingHttpHeaders,
  rawBody: Buffer | undefined,
): void {
  if (!source)
    throw new ClearanceError(
      'unauthenticated',
      `${kind} webhooks are not configured (${SECRET_VARIABLE[kind]})`,
    );
  if (kind === 'github') {
    const signature = headers['x-hub-signature-256'];
    if (typeof signature !== 'string' || !rawBody)
      throw new ClearanceError(
        'unauthenticated',
        'missing webhook signature (X-Hub-Signature-256)',
      );
    const expected = `sha256=${createHmac('sha256', source.secret).update(rawBody).digest('hex')}`;
    if (!tokenEquals(signature, expected))
      throw new ClearanceError('unauthenticated', 'invalid webhook signature');
    return;
  }
  const auth = String(headers.authorization ?? '');
  const given = auth.replace(/^Bearer\s+/i, '');
  if (!auth || !tokenEquals(given, source.secret))
    throw new ClearanceError('unauthenticated', 'missing or invalid webhook credentials');
}

/** `host:*` admits any port of that host (local registries on free ports); otherwise names must be equal. */
function hostMatches(allowed: string, host: string): boolean {
  if (allowed.endsWith(':*')) {
    const name = allowed.slice(0, -2);
    return (
      host === name ||
      (host.startsWith(`${name}:`) && /^\d{1,5}$/.test(host.slice(name.length + 1)))
    );
  }
  return normaliseRegistry(allowed) === host;
}

/**
 * Refuses an event for a host its webhook may not speak for. Google registries are never
 * accepted from a webhook: their events come only from the gcr topic, which only Google writes.
 */
export function assertHostAllowed(source: WebhookSource, registry: string): void {
  const host = normaliseRegistry(registry);
  if (isGoogleRegistryHost(host))
    throw new ClearanceError(
      'forbidden',
      `${source.kind} webhook named ${host}: Google registry events are accepted only from the gcr topic`,
    );
  if (!source.hosts.some((h) => hostMatches(h, host)))
    throw new ClearanceError(
      'forbidden',
      `${source.kind} webhook named ${host}, which it may not speak for (allowed: ${source.hosts.join(', ')})`,
    );
}

/**
 * What can be checked before the body is read: the kind is known and configured, and its header
 * credential is valid — or, for GitHub, whose HMAC signature covers the body, present.
 */
export function authenticateWebhookHeaders(
  kind: WebhookKind | null,
  webhooks: Partial<Record<WebhookKind, WebhookSource | null>>,
  headers: IncomingHttpHeaders,
): void {
  if (!kind) {
    throw new ClearanceError(
      'unauthenticated',
      "unknown webhook: post to /distribution, /harbor or /github with that registry's own credential",
    );
  }
  const source = webhooks[kind] ?? null;
  if (kind === 'github' && source) {
    if (typeof headers['x-hub-signature-256'] !== 'string') {
      throw new ClearanceError(
        'unauthenticated',
        'missing webhook signature (X-Hub-Signature-256)',
      );
    }
    return;
  }
  authenticateWebhook(kind, source, headers, undefined);
}
