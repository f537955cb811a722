// ingestReport: authenticated CI uploads (Trivy, Grype, cosign vuln, OpenVEX) → findings, VEX statements and verdicts.

import { ClearanceError, InvalidInputError } from '../../shared/errors.js';
import { type Authenticator, authenticatorFromConfig } from '../../shared/http/auth.js';
import { httpFunction } from '../../shared/http/http-function.js';
import type { ReportDeps } from '../../shared/pipeline/report-ingest.js';
import { acceptReport } from '../../shared/pipeline/report-upload.js';
import { depsFactory } from '../../shared/runtime/deps.js';
import { headerAuth, registerHttp } from '../../shared/runtime/register.js';
import { root as defaultRoot, type Root } from '../../shared/runtime/root.js';
import { ingestServices } from '../../shared/runtime/services.js';
import { loadTrustedRoot } from '../../shared/trust/signed-evidence.js';

export interface IngestReportDeps {
  /** Null when no credential of any kind is configured: every upload is refused. */
  auth: Authenticator | null;
  /** The ingest path (ledger, policy, VEX, publisher) and the Sigstore trusted root, built on first upload. */
  ingest(): Promise<Omit<ReportDeps, 'logger'>>;
}

/** The trusted root is read once per instance; null when none is configured. */
const trustedRootOf = depsFactory(async (r) =>
  r.config.trustedRootFile ? loadTrustedRoot(r.config.trustedRootFile) : null,
);

export const ingestReportDeps = depsFactory(
  async (r): Promise<IngestReportDeps> => ({
    auth: authenticatorFromConfig(r.config.report),
    ingest: async () => ({ ...(await ingestServices(r)), trustedRoot: () => trustedRootOf(r) }),
  }),
);

export function createIngestReportHandler(
  getRoot: () => Root = defaultRoot,
  deps: (root: Root) => Promise<IngestReportDeps> = ingestReportDeps,
) {
  return httpFunction(
    'ingestReport',
    async (req, { root, logger, now, requestId }) => {
      const d = await deps(root);
      // Without a configured credential nothing is accepted: fail closed.
      if (!d.auth)
        throw new ClearanceError(
          'unauthenticated',
          'report upload authentication is not configured (CLEARANCE_REPORT_AUDIENCES + CLEARANCE_REPORT_ALLOWED_CALLERS, or CLEARANCE_REPORT_TOKEN)',
        );
      const caller = await d.auth.authenticate(req.headers);
      if (req.method !== 'POST') throw new InvalidInputError('use POST');
      const raw = req.rawBody?.toString('utf8') ?? JSON.stringify(req.body ?? null);
      const ingest = await d.ingest();
      // functions-framework parses only JSON content types; anything else is handed over as text or bytes.
      const body =
        typeof req.body === 'object' && req.body !== null && !Buffer.isBuffer(req.body)
          ? req.body
          : raw;
      const r = await acceptReport(
        { ...ingest, logger },
        { body, raw, rawBody: req.rawBody, image: req.query.image, caller: caller.id },
        now,
      );
      if (r.accepted) return { status: 202, body: { accepted: true, ...r.outcome } };
      const { code, message, details } = r.error;
      if ('retryAfterSeconds' in r)
        return {
          status: 409,
          headers: { 'retry-after': String(r.retryAfterSeconds) },
          body: { error: { code: 'image-not-recorded', message, requestId } },
        };
      const problems = details?.issues ?? [];
      return {
        status: 400,
        body: { error: { code, message, requestId, problems, deadLetter: r.deadLetter } },
      };
    },
    { getRoot, deadline: true },
  );
}

export const ingestReport = createIngestReportHandler();

// The credential is checked from the headers before a byte of the body is read.
registerHttp('ingestReport', ingestReport, {
  authenticate: headerAuth(async () => (await ingestReportDeps(defaultRoot())).auth, []),
  handOnBadJson: true,
});
