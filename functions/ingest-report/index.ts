// ingestReport: authenticated CI uploads (Trivy, Grype, cosign vuln, OpenVEX) → findings, VEX statements and verdicts.

import { createHash } from 'node:crypto';
import {
  ClearanceError,
  errorMessage,
  InvalidInputError,
  isRetryable,
} from '../../shared/errors.js';
import { type Authenticator, authenticatorFromConfig } from '../../shared/http/auth.js';
import { httpFunction } from '../../shared/http/http-function.js';
import { ingestReport as ingest } from '../../shared/pipeline/report-ingest.js';
import { registerHttp } from '../../shared/runtime/register.js';
import type { Root } from '../../shared/runtime/root.js';
import { ingestServices } from '../../shared/runtime/services.js';
import { loadTrustedRoot, type TrustedRootJson } from '../../shared/trust/signed-evidence.js';

/** Built once per instance from the config; null when no credential of any kind is configured. */
function authenticatorOf(r: Root): Promise<Authenticator | null> {
  return r.lazy('ingest-report-auth', async () => authenticatorFromConfig(r.config.report));
}

/** The Sigstore trusted root for keyless signatures, read once per instance; null when none is configured. */
function trustedRootOf(r: Root): Promise<TrustedRootJson | null> {
  const file = r.config.trustedRootFile;
  return r.lazy('trusted-root', async () => (file ? loadTrustedRoot(file) : null));
}

function queryImage(q: Record<string, unknown>): string | null {
  const v = q.image;
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string') throw new InvalidInputError('give ?image= once');
  return v;
}

export const ingestReport = httpFunction(
  'ingestReport',
  async (req, { root, logger, now, requestId }) => {
    const auth = await authenticatorOf(root);
    // Without a configured credential nothing is accepted: fail closed.
    if (!auth)
      throw new ClearanceError(
        'unauthenticated',
        'report upload authentication is not configured (CLEARANCE_REPORT_AUDIENCES + CLEARANCE_REPORT_ALLOWED_CALLERS, or CLEARANCE_REPORT_TOKEN)',
      );
    const caller = await auth.authenticate(req.headers);
    if (req.method !== 'POST') throw new InvalidInputError('use POST');
    const raw = req.rawBody?.toString('utf8') ?? JSON.stringify(req.body ?? null);
    const services = await ingestServices(root);
    try {
      const image = queryImage(req.query);
      // functions-framework parses only JSON content types; anything else is handed over as text or bytes.
      const body =
        typeof req.body === 'object' && req.body !== null && !Buffer.isBuffer(req.body)
          ? req.body
          : raw;
      const outcome = await ingest(
        { ...services, logger, trustedRoot: () => trustedRootOf(root) },
        { body, raw, image, caller: caller.id },
        now,
      );
      logger.info('report ingested', { caller: caller.id, ...outcome });
      return { status: 202, body: { accepted: true, ...outcome } };
    } catch (err) {
      if (isRetryable(err) || !(err instanceof ClearanceError) || err.code !== 'invalid-input')
        throw err;
      // The CI job sees a 400 with the issues; the report itself is kept for whoever investigates.
      const id = await services.ledger.recordDeadLetter(
        {
          source: 'report',
          reason: errorMessage(err),
          problems: err.details?.issues as { path: string; message: string }[] | undefined,
          raw: req.rawBody ?? raw,
          messageId: createHash('sha256').update(raw).digest('hex').slice(0, 40),
          attributes: {
            caller: caller.id,
            ...(typeof req.query.image === 'string' ? { image: req.query.image } : {}),
          },
        },
        now,
      );
      logger.warn('report rejected and dead-lettered', {
        reason: errorMessage(err),
        deadLetter: id,
      });
      return {
        status: 400,
        body: {
          error: {
            code: err.code,
            message: err.message,
            requestId,
            problems: err.details?.issues ?? [],
            deadLetter: id,
          },
        },
      };
    }
  },
);

registerHttp('ingestReport', ingestReport);
