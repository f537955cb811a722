// Configuration: every setting the functions read, parsed once from the environment with zod; the one place for defaults.
import { z } from 'zod';
import { ClearanceError } from '../errors.js';
import { isGoogleRegistryHost } from '../image-ref/google-registry.js';

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

/** A shared secret: long enough that guessing is not an attack. */
const secret = z.string().min(16, 'use a random secret of at least 16 characters').optional();

/** Registry hosts a webhook may speak for; Google's come only from the gcr topic. */
const hosts = list.superRefine((list, ctx) => {
  for (const h of list) {
    if (!/^[a-z0-9.-]+(:(\d{1,5}|\*))?$/.test(h))
      ctx.addIssue({
        code: 'custom',
        message: `"${h}" is not a registry host (host, host:port or host:* for any port)`,
      });
    else if (isGoogleRegistryHost(h))
      ctx.addIssue({
        code: 'custom',
        message: `"${h}" is a Google registry: its events come only from the gcr topic`,
      });
  }
});

export const WEBHOOK_KINDS = ['distribution', 'harbor', 'github'] as const;
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

/** One webhook registry's credential and the hosts it may speak for; null when not configured. */
export interface WebhookSource {
  kind: WebhookKind;
  secret: string;
  hosts: string[];
}

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
    /** Replaced by one credential per channel (see docs/trust.md); refused so a stale deployment fails loudly. */
    CLEARANCE_INGEST_TOKEN: z
      .undefined({
        error:
          'CLEARANCE_INGEST_TOKEN is gone: each channel has its own credential (CLEARANCE_WEBHOOK_<KIND>_TOKEN with _HOSTS, CLEARANCE_REPORT_TOKEN, CLEARANCE_WATCH_TOKEN); see docs/trust.md',
      })
      .optional(),
    CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: secret,
    CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: hosts,
    CLEARANCE_WEBHOOK_HARBOR_TOKEN: secret,
    CLEARANCE_WEBHOOK_HARBOR_HOSTS: hosts,
    CLEARANCE_WEBHOOK_GITHUB_SECRET: secret,
    CLEARANCE_WEBHOOK_GITHUB_HOSTS: hosts.transform((h) => (h.length === 0 ? ['ghcr.io'] : h)),
    CLEARANCE_REPORT_AUDIENCES: list,
    CLEARANCE_REPORT_ALLOWED_CALLERS: list,
    CLEARANCE_REPORT_TOKEN: secret,
    CLEARANCE_WATCH_AUDIENCES: list,
    CLEARANCE_WATCH_ALLOWED_CALLERS: list,
    CLEARANCE_WATCH_TOKEN: secret,
    /** Sigstore trusted_root.json for keyless signatures; without it only key-signed evidence verifies. */
    CLEARANCE_TRUSTED_ROOT_FILE: z.string().optional(),
    CLEARANCE_BASE_IMAGES: list,
    /** Extra registries a base claim may make Clearance read from (besides the image's own and the tracked bases'). */
    CLEARANCE_BASE_REGISTRIES: list,
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
  .superRefine((c, ctx) => {
    const pairs: [WebhookKind, string | undefined, string[], string][] = [
      [
        'distribution',
        c.CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN,
        c.CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS,
        'CLEARANCE_WEBHOOK_DISTRIBUTION',
      ],
      [
        'harbor',
        c.CLEARANCE_WEBHOOK_HARBOR_TOKEN,
        c.CLEARANCE_WEBHOOK_HARBOR_HOSTS,
        'CLEARANCE_WEBHOOK_HARBOR',
      ],
    ];
    for (const [, token, h, name] of pairs) {
      if (token && h.length === 0)
        ctx.addIssue({
          code: 'custom',
          path: [`${name}_HOSTS`],
          message: 'name the registry hosts this webhook may speak for',
        });
    }
    // One credential per channel: a secret shared by two channels would let one act as the other.
    const secrets = [
      c.CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN,
      c.CLEARANCE_WEBHOOK_HARBOR_TOKEN,
      c.CLEARANCE_WEBHOOK_GITHUB_SECRET,
      c.CLEARANCE_REPORT_TOKEN,
      c.CLEARANCE_WATCH_TOKEN,
      c.CLEARANCE_CHECK_BEARER_TOKEN,
    ].filter((x): x is string => Boolean(x));
    if (new Set(secrets).size !== secrets.length)
      ctx.addIssue({
        code: 'custom',
        path: ['CLEARANCE_*_TOKEN'],
        message: 'each channel needs its own secret: two of the configured tokens are equal',
      });
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
    webhooks: {
      distribution: webhook(
        'distribution',
        c.CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN,
        c.CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS,
      ),
      harbor: webhook('harbor', c.CLEARANCE_WEBHOOK_HARBOR_TOKEN, c.CLEARANCE_WEBHOOK_HARBOR_HOSTS),
      github: webhook(
        'github',
        c.CLEARANCE_WEBHOOK_GITHUB_SECRET,
        c.CLEARANCE_WEBHOOK_GITHUB_HOSTS,
      ),
    } satisfies Record<WebhookKind, WebhookSource | null>,
    /** ingestReport's callers: ID tokens for its own audience from allowed service accounts, or its own token. */
    report: {
      audiences: c.CLEARANCE_REPORT_AUDIENCES,
      allowedCallers: c.CLEARANCE_REPORT_ALLOWED_CALLERS,
      bearerToken: c.CLEARANCE_REPORT_TOKEN,
      certsUrl: c.CLEARANCE_CHECK_CERTS_URL,
    },
    /** watchBaseImages' callers: Cloud Scheduler's ID token, or its own token for manual runs. */
    watch: {
      audiences: c.CLEARANCE_WATCH_AUDIENCES,
      allowedCallers: c.CLEARANCE_WATCH_ALLOWED_CALLERS,
      bearerToken: c.CLEARANCE_WATCH_TOKEN,
      certsUrl: c.CLEARANCE_CHECK_CERTS_URL,
    },
    trustedRootFile: c.CLEARANCE_TRUSTED_ROOT_FILE || null,
    baseImages: c.CLEARANCE_BASE_IMAGES,
    baseRegistries: c.CLEARANCE_BASE_REGISTRIES,
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

function webhook(
  kind: WebhookKind,
  secret: string | undefined,
  hosts: string[],
): WebhookSource | null {
  return secret ? { kind, secret, hosts } : null;
}

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
