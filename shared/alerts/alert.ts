// The alerts-topic message format: what detectors publish and notifyOwners sends, one schema per alert type.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { FixState, Severity } from '../findings/finding.js';
import { parseJsonBytes } from '../json-bytes.js';

export const ALERT_TYPES = [
  'image-denied',
  'rebuild-needed',
  'attestation-revoked',
  'breakglass-used',
  'exception-expiring',
  'scan-failed',
  'fix-grace-ending',
] as const;
export const AlertType = z.enum(ALERT_TYPES);
export type AlertType = z.infer<typeof AlertType>;

/** The OCI distribution spec's repository-name grammar. */
const REPOSITORY =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const isoTime = z.iso.datetime({ offset: true });
const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex digits>');
const httpUrl = z.url({ protocol: /^https?$/ }).max(3000);

export const AlertImage = z.object({
  /** Host, e.g. us-docker.pkg.dev. */
  registry: z
    .string()
    .max(253)
    .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'expected a registry host such as us-docker.pkg.dev'),
  /** Path below the host, e.g. p/r/img; a placeholder such as $PROJECT is refused, not guessed at. */
  repository: z
    .string()
    .max(1000)
    .regex(REPOSITORY, 'expected an OCI repository name (lower-case path components)'),
  digest,
  tags: z.array(z.string().max(200)).max(100).default([]),
});
export type AlertImage = z.infer<typeof AlertImage>;

export const AlertLinks = z.object({
  /** The image in the Cloud console (or the registry's UI). */
  console: httpUrl.optional(),
  /** The deploy-time check endpoint answering for this image. */
  check: httpUrl.optional(),
});
export type AlertLinks = z.infer<typeof AlertLinks>;

/** A finding as an owner needs it to act: what, where, and the version that fixes it. */
export const AlertFinding = z.object({
  id: z.string().min(1).max(200),
  package: z.string().min(1).max(500),
  installedVersion: z.string().max(500),
  fixedVersion: z.string().max(500).nullable(),
  severity: Severity,
  fixState: FixState,
});
export type AlertFinding = z.infer<typeof AlertFinding>;

const common = {
  image: AlertImage,
  /** Image labels, so routing can honour an owner label. */
  labels: z.record(z.string(), z.string()).default({}),
  detectedAt: isoTime,
  links: AlertLinks.default({}),
};

export const ImageDeniedAlert = z.object({
  type: z.literal('image-denied'),
  ...common,
  environment: z.string().min(1).max(100),
  ruleIds: z.array(z.string().min(1).max(200)).min(1),
  /** The reasons' messages, in the policy's words. */
  reasons: z.array(z.string().max(2000)).default([]),
  /** Top findings, worst first (the publisher orders and may cut them). */
  findings: z.array(AlertFinding).default([]),
  /** All findings behind the denial, when the list above was cut. */
  totalFindings: z.number().int().nonnegative().optional(),
});

export const RebuildNeededAlert = z.object({
  type: z.literal('rebuild-needed'),
  ...common,
  base: z.object({
    name: z.string().min(1).max(1000),
    oldDigest: digest,
    newDigest: digest,
    /** When the base tag moved past the image's base. */
    since: isoTime,
  }),
});

export const AttestationRevokedAlert = z.object({
  type: z.literal('attestation-revoked'),
  ...common,
  environment: z.string().min(1).max(100).optional(),
  reason: z.string().min(1).max(2000),
  ruleIds: z.array(z.string().max(200)).default([]),
  keyId: z.string().max(1000).optional(),
});

/**
 * A break-glass use. Its subject is the workload: `image` names the first denied image whose
 * digest is known and is absent when none is (an image unknown to the ledger, deployed by tag).
 */
export const BreakglassUsedAlert = z.object({
  type: z.literal('breakglass-used'),
  ...common,
  image: AlertImage.optional(),
  /** One use (a hash of the admission request uid): two uses are two alerts, a retried request one. */
  useId: z
    .string()
    .regex(/^[0-9a-f]{16,64}$/)
    .optional(),
  environment: z.string().min(1).max(100),
  /** Who deployed: the Kubernetes user or the caller's service account. */
  actor: z.string().min(1).max(500),
  workload: z.object({
    cluster: z.string().max(200).optional(),
    namespace: z.string().max(253).optional(),
    kind: z.string().max(100).optional(),
    name: z.string().min(1).max(253),
  }),
  /** Every image the breakglass let through (the common `image` is the first of them). */
  images: z.array(z.string().max(2000)).min(1),
  justification: z.string().max(2000).optional(),
});

export const ExceptionExpiringAlert = z.object({
  type: z.literal('exception-expiring'),
  ...common,
  environment: z.string().min(1).max(100).optional(),
  exception: z.object({
    /** The CVE (or other vulnerability id) the exception allows. */
    vulnerability: z.string().min(1).max(200),
    reason: z.string().max(2000),
    owner: z.string().max(500),
    expiresAt: isoTime,
    scope: z.string().max(1000).optional(),
  }),
});

export const ScanFailedAlert = z.object({
  type: z.literal('scan-failed'),
  ...common,
  scanner: z.string().min(1).max(200),
  /** e.g. FINISHED_FAILED, FINISHED_UNSUPPORTED. */
  status: z.string().max(100).optional(),
  reason: z.string().min(1).max(2000),
  /** Enforced environments that now deny the image because of it (one alert, not one more per denial). */
  deniedIn: z.array(z.string().min(1).max(100)).max(50).optional(),
});

/** A fixable finding's grace period ends soon: after `endsAt` the image is denied unless rebuilt. */
export const FixGraceEndingAlert = z.object({
  type: z.literal('fix-grace-ending'),
  ...common,
  environment: z.string().min(1).max(100).optional(),
  grace: z.object({
    package: z.string().min(1).max(500),
    installedVersion: z.string().max(500),
    fixedVersion: z.string().min(1).max(500),
    /** The findings' ids as the reason quotes them (the first few, worst first). */
    vulnerabilities: z.string().min(1).max(2000),
    /** The day the fix was first seen (YYYY-MM-DD, UTC). */
    availableSince: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    /** The day the image is denied from (00:00 UTC). */
    endsOn: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  }),
});

export const Alert = z.discriminatedUnion('type', [
  ImageDeniedAlert,
  RebuildNeededAlert,
  AttestationRevokedAlert,
  BreakglassUsedAlert,
  ExceptionExpiringAlert,
  ScanFailedAlert,
  FixGraceEndingAlert,
]);
export type Alert = z.infer<typeof Alert>;
export type AlertInput = z.input<typeof Alert>;
export type AlertOf<T extends AlertType> = Extract<Alert, { type: T }>;

/**
 * What an alert is about, as one line: the image (registry/repository@digest), or for a
 * break-glass of images unknown by digest, the workload.
 */
export function alertSubject(alert: Alert): string {
  if (alert.image) return `${alert.image.registry}/${alert.image.repository}@${alert.image.digest}`;
  if (alert.type === 'breakglass-used') {
    const w = alert.workload;
    return `workload ${[w.cluster, w.namespace, w.kind ? `${w.kind}/${w.name}` : w.name].filter(Boolean).join('/')}`;
  }
  return 'unknown';
}

/** Zod issues as `path: message` lines, for error details a human can read. */
export function issueList(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

export function parseAlert(input: unknown): Alert {
  const parsed = Alert.safeParse(input);
  if (!parsed.success) {
    const issues = issueList(parsed.error);
    throw new InvalidInputError(`invalid alert: ${issues.slice(0, 5).join('; ')}`, {
      details: { issues },
    });
  }
  return parsed.data;
}

/** Decodes a Pub/Sub message body (bytes or base64 text as pushed) into an alert. */
export function decodeAlertMessage(data: Buffer | Uint8Array | string): Alert {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'base64') : data;
  return parseAlert(parseJsonBytes(bytes, 'alert message'));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

/**
 * Hash of what the owner would read. detectedAt, links and labels are left out so that a
 * re-evaluation which finds the same facts hashes the same and is de-duplicated.
 */
export function alertContentHash(alert: Alert): string {
  const { detectedAt: _d, links: _l, labels: _lb, ...facts } = alert;
  return createHash('sha256')
    .update(JSON.stringify(canonical(facts)))
    .digest('hex');
}

/** The part of @google-cloud/pubsub's Topic that publishing needs; tests pass a fake. */
export interface AlertPublisher {
  publishMessage(message: {
    data?: Buffer;
    json?: unknown;
    attributes?: Record<string, string>;
  }): Promise<string>;
}

/** Validates and publishes an alert to the alerts topic; resolves to the Pub/Sub message id. */
export async function publishAlert(publisher: AlertPublisher, alert: AlertInput): Promise<string> {
  const parsed = parseAlert(alert);
  return publisher.publishMessage({
    data: Buffer.from(JSON.stringify(parsed)),
    attributes: {
      type: parsed.type,
      ...(parsed.image
        ? {
            registry: parsed.image.registry,
            repository: parsed.image.repository.slice(0, 1000),
            digest: parsed.image.digest,
          }
        : { subject: alertSubject(parsed).slice(0, 1000) }),
    },
  });
}
