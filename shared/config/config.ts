// Configuration: every setting the functions read, parsed once from the environment with zod; the one place for defaults.
import { z } from 'zod';
import { ClearanceError } from '../errors.js';

const list = z
  .string()
  .optional()
  .transform((s) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );

const intFrom = (def: number) =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined || s === '') return def;
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number, got "${s}"` });
        return z.NEVER;
      }
      return n;
    });

export const Config = z
  .object({
    GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
    GCLOUD_PROJECT: z.string().min(1).optional(),
    CLEARANCE_FIRESTORE_DATABASE: z.string().default('(default)'),
    CLEARANCE_ALERTS_TOPIC: z.string().default('clearance-alerts'),
    CLEARANCE_REEVALUATE_TOPIC: z.string().default('clearance-reevaluate'),
    CLEARANCE_VERDICTS_TOPIC: z.string().default('clearance-verdicts'),
    CLEARANCE_SIGNER: z.enum(['kms', 'local']).default('local'),
    CLEARANCE_KMS_KEY_VERSION: z.string().optional(),
    CLEARANCE_LOCAL_KEY_FILE: z.string().default('.clearance/keys/attestor.pem'),
    CLEARANCE_ATTESTOR_NOTE: z.string().optional(),
    CLEARANCE_CHECK_AUDIENCES: list,
    CLEARANCE_CHECK_ALLOWED_CALLERS: list,
    CLEARANCE_CHECK_BEARER_TOKEN: z.string().optional(),
    CLEARANCE_CHECK_CACHE_TTL_MS: intFrom(5_000),
    CLEARANCE_CHECK_URL: z.string().url().optional(),
    CLEARANCE_CHECK_TIMEOUT_MS: intFrom(3_000),
    /** Tests and local runs only: where ID-token signing keys are fetched (Google's by default). */
    CLEARANCE_CHECK_CERTS_URL: z.string().url().optional(),
    /** Environment judged by /admission and /gatekeeper when the request names none (?env=). */
    CLEARANCE_DEFAULT_ENV: z.string().min(1).default('prod'),
    CLEARANCE_INGEST_TOKEN: z.string().optional(),
    CLEARANCE_BASE_IMAGES: list,
    CLEARANCE_WATCH_REPOSITORIES: list,
    CLEARANCE_ROUTING: z.string().optional(),
    // Unset: loopback (local stacks); `none` (what Terraform sets): no host is exempt.
    CLEARANCE_REGISTRY_INSECURE_HOSTS: z
      .string()
      .optional()
      .transform((s) =>
        s === undefined
          ? null
          : s
              .split(',')
              .map((x) => x.trim())
              .filter((x) => x !== '' && x !== 'none'),
      ),
    CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: z.string().optional(),
    CLEARANCE_MAX_BODY_BYTES: intFrom(1024 * 1024),
    CLEARANCE_EVENT_TTL_DAYS: intFrom(7),
    CLEARANCE_HANDLER_DEADLINE_MS: intFrom(45_000),
    CLEARANCE_LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR']).default('INFO'),
  })
  .transform((c) => ({
    projectId: c.GOOGLE_CLOUD_PROJECT ?? c.GCLOUD_PROJECT ?? 'demo-clearance',
    firestoreDatabase: c.CLEARANCE_FIRESTORE_DATABASE,
    topics: {
      alerts: c.CLEARANCE_ALERTS_TOPIC,
      reevaluate: c.CLEARANCE_REEVALUATE_TOPIC,
      verdicts: c.CLEARANCE_VERDICTS_TOPIC,
    },
    signer: {
      kind: c.CLEARANCE_SIGNER,
      kmsKeyVersion: c.CLEARANCE_KMS_KEY_VERSION,
      localKeyFile: c.CLEARANCE_LOCAL_KEY_FILE,
      attestorNote: c.CLEARANCE_ATTESTOR_NOTE,
    },
    check: {
      audiences: c.CLEARANCE_CHECK_AUDIENCES,
      allowedCallers: c.CLEARANCE_CHECK_ALLOWED_CALLERS,
      bearerToken: c.CLEARANCE_CHECK_BEARER_TOKEN,
      cacheTtlMs: c.CLEARANCE_CHECK_CACHE_TTL_MS,
      /** Public URL of checkImage, for links in alerts. */
      url: c.CLEARANCE_CHECK_URL,
      timeoutMs: c.CLEARANCE_CHECK_TIMEOUT_MS,
      certsUrl: c.CLEARANCE_CHECK_CERTS_URL,
      defaultEnvironment: c.CLEARANCE_DEFAULT_ENV,
    },
    ingestToken: c.CLEARANCE_INGEST_TOKEN,
    baseImages: c.CLEARANCE_BASE_IMAGES,
    watchRepositories: c.CLEARANCE_WATCH_REPOSITORIES,
    routing: c.CLEARANCE_ROUTING,
    registryInsecureHosts: c.CLEARANCE_REGISTRY_INSECURE_HOSTS,
    containerAnalysisEndpoint: c.CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT,
    maxBodyBytes: c.CLEARANCE_MAX_BODY_BYTES,
    eventTtlDays: c.CLEARANCE_EVENT_TTL_DAYS,
    /** A Pub/Sub delivery not finished by then answers 5xx (redelivery), well inside the ack deadline. */
    handlerDeadlineMs: c.CLEARANCE_HANDLER_DEADLINE_MS,
    logLevel: c.CLEARANCE_LOG_LEVEL,
  }));
export type Config = z.infer<typeof Config>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = Config.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({
      path: i.path.join('.'),
      message: i.message,
    }));
    throw new ClearanceError(
      'invalid-config',
      `invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      { details: { problems } },
    );
  }
  return parsed.data;
}
