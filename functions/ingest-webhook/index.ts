// ingestWebhook: CNCF distribution, Harbor and GitHub `package` webhooks → the same ledger path as the gcr topic.

import { createHash } from 'node:crypto';
import { ClearanceError, InvalidInputError } from '../../shared/errors.js';
import { httpFunction } from '../../shared/http/http-function.js';
import {
  ingestWebhookDelivery,
  type WebhookIngestDeps,
  webhookKindOf,
} from '../../shared/pipeline/webhook-ingest.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { baseProofOf, ingestServices, registryOf } from '../../shared/runtime/services.js';
import {
  authenticateWebhook,
  authenticateWebhookHeaders,
} from '../../shared/trust/webhook-sources.js';

export { WEBHOOK_KINDS } from '../../shared/config/config.js';

/** The ingest path's services; the registry client and base proof only once a payload is accepted. */
export const ingestWebhookDeps = depsFactory(
  async (root): Promise<IngestWebhookDeps> => ({
    ingest: { ...(await ingestServices(root)), watch: root.config.watchRepositories },
    enrichment: async () => ({ registry: await registryOf(root), bases: await baseProofOf(root) }),
  }),
);

export type IngestWebhookDeps = Omit<WebhookIngestDeps, 'logger'>;

export function createIngestWebhookHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<IngestWebhookDeps> = ingestWebhookDeps,
) {
  return httpFunction(
    'ingestWebhook',
    async (req, { root, logger, now }) => {
      if (req.method !== 'POST') throw new InvalidInputError('use POST');
      const kind = webhookKindOf(req.path, req.headers);
      if (!kind)
        throw new ClearanceError(
          'unauthenticated',
          "unknown webhook: post to /distribution, /harbor or /github with that registry's own credential",
        );
      const source = root.config.webhooks[kind];
      authenticateWebhook(kind, source, req.headers, req.rawBody);
      if (!source)
        throw new ClearanceError('unauthenticated', `${kind} webhooks are not configured`);
      const raw = req.rawBody?.toString('utf8') ?? JSON.stringify(req.body ?? null);
      const delivery =
        String(req.headers['x-github-delivery'] ?? '') ||
        createHash('sha256')
          .update(req.rawBody ?? raw)
          .digest('hex')
          .slice(0, 32);
      const out = await ingestWebhookDelivery(
        { ...(await deps(root)), logger },
        { kind, source, delivery, body: req.body, raw, rawBody: req.rawBody },
        now,
      );
      return { status: out.accepted ? 200 : 202, body: out };
    },
    { getRoot, deadline: true },
  );
}

export const ingestWebhook = createIngestWebhookHandler();

registerHttp('ingestWebhook', ingestWebhook, {
  authenticate: (req) =>
    authenticateWebhookHeaders(
      webhookKindOf((req.url ?? '/').split('?')[0] ?? '/', req.headers),
      defaultRoot().config.webhooks,
      req.headers,
    ),
  handOnBadJson: true,
});
