// Normalises webhook notifications of other registries (CNCF distribution, Harbor, GitHub packages) into RegistryEvents.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import {
  dockerHubRepository,
  isDigest,
  isValidTag,
  looksLikeHost,
  normaliseRegistry,
  validateRepository,
} from '../image-ref/image-ref.js';
import { parseInput } from '../parse-input.js';
import { MANIFEST_MEDIA_TYPES } from '../registry/schemas.js';
import type { RegistryEvent } from './gcr-event.js';

export { type GcrEnvelope, parseGcrEvent, parseGcrEventData, RegistryEvent } from './gcr-event.js';

/**
 * Media types of manifests and indexes: pushes of these create images; everything else is a blob.
 * Schema 1 manifests are not read (the registry client does not ask for them) but still name a push.
 */
const MANIFEST_SET: ReadonlySet<string> = new Set([
  ...MANIFEST_MEDIA_TYPES,
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
]);

export interface WebhookOptions {
  /**
   * The registry host the webhook endpoint is configured for. Wins over what the payload says,
   * since a notification's own host fields describe the request or a proxy, not always the
   * name clients pull by.
   */
  registry?: string;
}

/** Names a repository on a registry, both validated; Docker Hub's library/ default is applied. */
function imageName(
  registry: string,
  repository: string,
  where: string,
): { registry: string; repository: string } {
  const reg = normaliseRegistry(registry);
  if (!looksLikeHost(reg)) {
    // A bare name (e.g. a compose service "registry") cannot be told from a Docker Hub namespace.
    throw new InvalidInputError(
      `${where}: registry host ${JSON.stringify(reg)} needs a '.' or ':' or to be localhost (configure the registry host)`,
    );
  }
  validateRepository(repository, `${where}: ${registry}/${repository}`);
  return { registry: reg, repository: dockerHubRepository(reg, repository) };
}

function checkTag(tag: string, where: string): void {
  if (!isValidTag(tag)) {
    throw new InvalidInputError(
      `${where}: invalid tag ${JSON.stringify(tag.slice(0, 140))} (a word character, then up to 127 of [A-Za-z0-9_.-])`,
    );
  }
}

function isoTime(value: string | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'number' ? value * 1000 : Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

function hostOf(urlish: string): string | null {
  try {
    return new URL(urlish.includes('://') ? urlish : `https://${urlish}`).host || null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- CNCF distribution

const Digest = z.string().refine(isDigest, 'must be sha256:<64 lower hex> or sha512:<128>');

export const DistributionEvent = z.object({
  id: z.string().max(200).optional(),
  timestamp: z.string().max(100).optional(),
  action: z.string().max(50),
  target: z.object({
    mediaType: z.string().max(200).optional(),
    digest: z.string().max(200).optional(),
    repository: z.string().min(1).max(255),
    tag: z.string().max(200).optional(),
    url: z.string().max(2000).optional(),
  }),
  request: z.object({ host: z.string().max(300).optional() }).optional(),
});
export const DistributionEnvelope = z.object({
  events: z.array(DistributionEvent).max(1000),
});

/**
 * CNCF distribution notifications: manifest pushes and deletes become events; blob pushes,
 * pulls and mounts are ignored (they yield nothing). The registry host is
 * `options.registry`, else the request's Host header.
 */
export function normaliseDistribution(
  body: unknown,
  options: WebhookOptions = {},
): RegistryEvent[] {
  const envelope = parseInput(DistributionEnvelope, body, 'distribution notification');
  const out: RegistryEvent[] = [];
  envelope.events.forEach((e, i) => {
    const where = `distribution notification events.${i}`;
    const isPush = e.action === 'push';
    const isDelete = e.action === 'delete';
    if (!isPush && !isDelete) return;
    // A delete names a manifest by digest or tag and carries no media type; a push says what it stored.
    if (isPush && !MANIFEST_SET.has(e.target.mediaType ?? '')) return;
    const host = options.registry ?? e.request?.host;
    if (!host) throw new InvalidInputError(`${where}: no registry host (configure one)`);
    const name = imageName(host, e.target.repository, where);
    const digest = e.target.digest ?? null;
    if (digest !== null) parseInput(Digest, digest, `${where}.target.digest`);
    const tag = e.target.tag ?? null;
    if (tag !== null) checkTag(tag, where);
    if (digest === null && tag === null) {
      throw new InvalidInputError(`${where}: target has neither digest nor tag`);
    }
    const event: RegistryEvent = {
      action: isPush ? 'push' : 'delete',
      ...name,
      digest,
      tag,
      source: 'distribution',
    };
    if (e.id !== undefined) event.eventId = e.id;
    const at = isoTime(e.timestamp);
    if (at !== undefined) event.occurredAt = at;
    out.push(event);
  });
  return out;
}

// ---------------------------------------------------------------- Harbor

const HarborResource = z.object({
  digest: Digest.optional(),
  tag: z.string().max(200).optional(),
  resource_url: z.string().max(1000).optional(),
  scan_overview: z.record(z.string(), z.unknown()).optional(),
});
export const HarborPayload = z.object({
  type: z.string().max(100),
  occur_at: z.number().int().nonnegative().optional(),
  operator: z.string().max(200).optional(),
  event_data: z.object({
    resources: z.array(HarborResource).max(1000).nullish(),
    // REPLICATION and TAG_RETENTION events carry no repository (their data is per job, not per image).
    repository: z.object({ repo_full_name: z.string().min(1).max(255) }).nullish(),
  }),
});

/**
 * Harbor 2.x event types and their Harbor 1.x names (`pushImage`, `deleteImage`,
 * `scanningCompleted`), which carry the same event_data.
 */
const HARBOR_PUSH: ReadonlySet<string> = new Set(['PUSH_ARTIFACT', 'pushImage']);
const HARBOR_DELETE: ReadonlySet<string> = new Set(['DELETE_ARTIFACT', 'deleteImage']);
const HARBOR_SCAN: ReadonlySet<string> = new Set(['SCANNING_COMPLETED', 'scanningCompleted']);

const HarborScanOverview = z.object({
  report_id: z.string().optional(),
  scan_status: z.string(),
  severity: z.string().optional(),
  summary: z
    .object({
      total: z.number().int().nonnegative().optional(),
      fixable: z.number().int().nonnegative().optional(),
      summary: z.record(z.string(), z.number().int().nonnegative()).optional(),
    })
    .optional(),
  end_time: z.string().optional(),
  scanner: z
    .object({
      name: z.string().optional(),
      vendor: z.string().optional(),
      version: z.string().optional(),
    })
    .optional(),
});

export interface HarborScan {
  registry: string;
  repository: string;
  digest: string;
  tag: string | null;
  /** Harbor's scan_status, e.g. Success, Error. */
  status: string;
  /** Harbor's overall severity (title case, e.g. High), null when not given. */
  severity: string | null;
  total: number | null;
  fixable: number | null;
  /** Counts by Harbor's severity names. */
  bySeverity: Record<string, number>;
  scanner: string | null;
  completedAt: string | null;
}

export type HarborResult =
  | { kind: 'registry-events'; events: RegistryEvent[] }
  | { kind: 'scan-completed'; scans: HarborScan[] }
  /** Event types that say nothing about an image's content (pulls, quota, replication jobs, retention runs). */
  | { kind: 'ignored'; type: string };

/** The resource's tag; null when absent or when it is the digest (Harbor's way of naming an untagged artifact). */
function harborTag(r: z.infer<typeof HarborResource>): string | null {
  if (!r.tag) return null;
  if (r.tag.startsWith('sha256:') || r.tag.startsWith('sha512:')) {
    if (r.digest && r.tag !== r.digest) {
      throw new InvalidInputError(
        `Harbor webhook: resource tag ${JSON.stringify(r.tag.slice(0, 80))} is a digest other than its digest ${r.digest}`,
      );
    }
    return null;
  }
  return r.tag;
}

function harborRegistry(
  resourceUrl: string | undefined,
  options: WebhookOptions,
  where: string,
): string {
  const host = options.registry ?? (resourceUrl ? hostOf(resourceUrl) : null);
  if (!host)
    throw new InvalidInputError(`${where}: no registry host in resource_url (configure one)`);
  return host;
}

/**
 * Harbor webhooks: PUSH_ARTIFACT (1.x pushImage) → push events, DELETE_ARTIFACT (1.x
 * deleteImage) → delete events, SCANNING_COMPLETED → scan results for the ingest path; other
 * types (pulls, quota, REPLICATION, TAG_RETENTION: retention's deletions arrive as
 * DELETE_ARTIFACT) are ignored. An untagged artifact carries its digest in `tag`: that is no tag.
 */
export function normaliseHarbor(body: unknown, options: WebhookOptions = {}): HarborResult {
  const p = parseInput(HarborPayload, body, 'Harbor webhook');
  const action = HARBOR_PUSH.has(p.type)
    ? 'push'
    : HARBOR_DELETE.has(p.type)
      ? 'delete'
      : HARBOR_SCAN.has(p.type)
        ? 'scan'
        : null;
  if (action === null) return { kind: 'ignored', type: p.type };
  const repoName = p.event_data.repository?.repo_full_name;
  if (!repoName) {
    throw new InvalidInputError(
      `Harbor webhook: a ${p.type} event needs event_data.repository.repo_full_name`,
      { details: { issues: [{ path: 'event_data.repository', message: 'missing' }] } },
    );
  }
  const resources = p.event_data.resources ?? [];
  const occurredAt = isoTime(p.occur_at);
  if (action === 'scan') {
    const scans = resources.map((r, i): HarborScan => {
      const where = `Harbor webhook event_data.resources.${i}`;
      if (!r.digest) throw new InvalidInputError(`${where}: a scan result needs a digest`);
      const name = imageName(harborRegistry(r.resource_url, options, where), repoName, where);
      const overview = Object.entries(r.scan_overview ?? {}).find(([k]) =>
        k.startsWith('application/vnd.security.vulnerability.report'),
      );
      if (!overview) throw new InvalidInputError(`${where}: no vulnerability scan_overview`);
      const o = parseInput(HarborScanOverview, overview[1], `${where}.scan_overview`);
      const scanner = o.scanner?.name
        ? `${o.scanner.name}${o.scanner.version ? ` ${o.scanner.version}` : ''}`
        : null;
      return {
        ...name,
        digest: r.digest,
        tag: harborTag(r) ?? null,
        status: o.scan_status,
        severity: o.severity ?? null,
        total: o.summary?.total ?? null,
        fixable: o.summary?.fixable ?? null,
        bySeverity: o.summary?.summary ?? {},
        scanner,
        completedAt: isoTime(o.end_time) ?? occurredAt ?? null,
      };
    });
    return { kind: 'scan-completed', scans };
  }
  const events = resources.map((r, i): RegistryEvent => {
    const where = `Harbor webhook event_data.resources.${i}`;
    const name = imageName(harborRegistry(r.resource_url, options, where), repoName, where);
    const tag = harborTag(r);
    if (tag !== null) checkTag(tag, where);
    const digest = r.digest ?? (isDigest(r.tag) ? r.tag : null);
    if (!digest && tag === null) throw new InvalidInputError(`${where}: neither digest nor tag`);
    const event: RegistryEvent = {
      action,
      ...name,
      digest,
      tag,
      source: 'harbor',
    };
    if (occurredAt !== undefined) event.occurredAt = occurredAt;
    return event;
  });
  return { kind: 'registry-events', events };
}

// ---------------------------------------------------------------- GitHub packages

export const GithubPackageEvent = z.object({
  action: z.string().max(50),
  package: z.object({
    name: z.string().min(1).max(255),
    namespace: z.string().min(1).max(100),
    package_type: z.string().max(50),
    package_version: z
      .object({
        id: z.union([z.number(), z.string()]).optional(),
        version: z.string().max(300).optional(),
        updated_at: z.string().max(100).optional(),
        container_metadata: z
          .object({
            tag: z
              .object({
                name: z.string().max(200).optional(),
                digest: z.string().max(200).optional(),
              })
              .optional(),
          })
          .nullish(),
      })
      .nullish(),
    registry: z.object({ url: z.string().max(500).optional() }).nullish(),
  }),
});

/**
 * GitHub `package` webhook events for container packages: published/updated → a push on ghcr.io
 * (or the host in package.registry.url). The namespace is lower-cased because ghcr.io image
 * names are lower case while GitHub logins keep the case the owner typed.
 */
export function normaliseGithubPackage(
  body: unknown,
  options: WebhookOptions & { deliveryId?: string } = {},
): RegistryEvent[] {
  const e = parseInput(GithubPackageEvent, body, 'GitHub package event');
  if (e.package.package_type.toLowerCase() !== 'container') return [];
  if (e.action !== 'published' && e.action !== 'updated') return [];
  const where = 'GitHub package event';
  const host =
    options.registry ??
    (e.package.registry?.url ? hostOf(e.package.registry.url) : null) ??
    'ghcr.io';
  const name = imageName(host, `${e.package.namespace.toLowerCase()}/${e.package.name}`, where);
  const version = e.package.package_version;
  const tagInfo = version?.container_metadata?.tag;
  const digest =
    tagInfo?.digest || (version?.version && isDigest(version.version) ? version.version : null);
  if (!digest) throw new InvalidInputError(`${where}: no image digest in package_version`);
  parseInput(Digest, digest, `${where} digest`);
  const tag = tagInfo?.name ? tagInfo.name : null;
  if (tag !== null) checkTag(tag, where);
  const event: RegistryEvent = { action: 'push', ...name, digest, tag, source: 'github' };
  if (options.deliveryId !== undefined) event.eventId = options.deliveryId;
  const at = isoTime(version?.updated_at);
  if (at !== undefined) event.occurredAt = at;
  return [event];
}
