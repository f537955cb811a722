// The fault suite's workload: a seeded generator, the images it pushes, and N registry and scan events over them in their true (publish) order.
import { createHash } from 'node:crypto';

/** A seeded generator (mulberry32, shared with bench:evaluate), so a run (order, duplicates, faults, fuzz) is reproducible from its seed. */
export { prng as seededRandom } from '../evaluate-workload.js';

export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export const GCR_TOPIC = 'gcr';
export const SCAN_TOPIC = 'container-analysis-occurrences-v1';
export const SCAN_PROJECT = 'faults';

/** The ingestion benchmark's policy: requireScan, fixable above HIGH denies. */
export { BENCH_POLICY as FAULTS_POLICY } from '../ingest-workload.js';

/** One image of the workload, as pushed to the local registry. */
export interface WorkloadImage {
  index: number;
  repository: string;
  digest: string;
  /** Denied images carry a fixable CRITICAL finding; the others only findings the policy allows. */
  denied: boolean;
}

/** Images pushed to the second registry, whose pushes reach Clearance as distribution webhooks. */
export interface WebhookWorkload {
  host: string;
  images: readonly WorkloadImage[];
}

export const WEBHOOK_PATH = '/distribution';
export const WEBHOOK_CONTENT_TYPE = 'application/vnd.docker.distribution.events.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export type WorkloadKind = 'push' | 'scan' | 'delete' | 'tag-delete' | 'webhook' | 'report';

export interface WorkloadEvent {
  /** Position in the true order: its publish time is BASE + n seconds. */
  n: number;
  kind: WorkloadKind;
  /** The Pub/Sub topic, or `webhook` / `report` for an HTTP POST to ingestWebhook / ingestReport. */
  topic: typeof GCR_TOPIC | typeof SCAN_TOPIC | 'webhook' | 'report';
  /** The Pub/Sub message id, or the distribution event's id (the same on every redelivery). */
  messageId: string;
  publishTime: string;
  data: Record<string, unknown>;
  image: number;
  /** The source the ledger records the event under (its audit entry's key with the message id). */
  source: 'gcr' | 'container-analysis' | 'webhook-distribution' | 'report-trivy';
  /** A CI report upload: the image it names (`?image=`), sent once this push (message id) is recorded. */
  report?: { image: string; after: string };
}

const BASE_TIME = Date.parse('2026-11-30T08:00:00.000Z');

export function discoveryName(image: number): string {
  return `projects/${SCAN_PROJECT}/occurrences/img${image}-discovery`;
}

/** Images whose digest is deleted (gcr `DELETE` of the digest) once pushed and scanned; none is pushed again after. */
export const deletesDigest = (image: WorkloadImage) => image.index % 5 === 1;
/** Images whose first tag (`v<i>`) is deleted (gcr `DELETE` of the tag): the image stays, the tag stops resolving. */
export const deletesTag = (image: WorkloadImage) => image.index % 5 === 3;

/** Allowed images a CI job uploads a Trivy report for, once their first push is recorded. */
export const uploadsReport = (image: WorkloadImage) => image.index % 5 === 0 && !image.denied;

/**
 * A Trivy (SchemaVersion 2) report of one image as a CI job uploads it: tar's CVE-2005-2541, LOW
 * and never fixed, which the policy allows, so the report adds a scanner run and a finding and
 * changes no decision.
 */
export function trivyReport(ref: string, createdAt: string): Record<string, unknown> {
  return {
    SchemaVersion: 2,
    CreatedAt: createdAt,
    ArtifactName: ref,
    ArtifactType: 'container_image',
    Trivy: { Version: '0.58.1' },
    Metadata: { RepoDigests: [ref] },
    Results: [
      {
        Target: `${ref} (debian 12.8)`,
        Class: 'os-pkgs',
        Type: 'debian',
        Vulnerabilities: [
          {
            VulnerabilityID: 'CVE-2005-2541',
            PkgName: 'tar',
            InstalledVersion: '1.34+dfsg-1.2+deb12u1',
            Status: 'will_not_fix',
            Severity: 'LOW',
            Title: 'tar: does not properly warn the user when extracting setuid or setgid files',
          },
        ],
      },
    ],
  };
}

/**
 * N events over the images: each image's first push (tag v<i>), each webhook image's first push,
 * each image's scan, a Trivy report upload for the `uploadsReport` images, then a mix of pushes
 * under new tags (40%), moves of the repository's `latest` tag (25%) and rescans (35%), with a
 * webhook push under a new tag in about one draw of seven and the deletes (of the digest of the
 * `deletesDigest` images, of the first tag of the `deletesTag` images) spread over the mix. A
 * digest-deleted image gets no later event, so it ends deleted.
 */
export function workloadEvents(
  host: string,
  images: readonly WorkloadImage[],
  n: number,
  random: () => number,
  webhook?: WebhookWorkload,
): WorkloadEvent[] {
  const events: WorkloadEvent[] = [];
  const add = (kind: WorkloadKind, image: WorkloadImage, tag?: string, on: string = host): void => {
    const i = events.length;
    const publishTime = new Date(BASE_TIME + i * 1000).toISOString();
    const messageId = `faults-${kind}-${i}-${createHash('sha256').update(`${host}:${i}`).digest('hex').slice(0, 8)}`;
    const base = { n: i, kind, messageId, publishTime, image: image.index };
    switch (kind) {
      case 'push':
      case 'delete':
      case 'tag-delete':
        events.push({
          ...base,
          topic: GCR_TOPIC,
          source: 'gcr',
          data:
            kind === 'push'
              ? {
                  action: 'INSERT',
                  digest: `${host}/${image.repository}@${image.digest}`,
                  tag: `${host}/${image.repository}:${tag}`,
                }
              : kind === 'delete'
                ? { action: 'DELETE', digest: `${host}/${image.repository}@${image.digest}` }
                : { action: 'DELETE', tag: `${host}/${image.repository}:${tag}` },
        });
        break;
      case 'scan':
        events.push({
          ...base,
          topic: SCAN_TOPIC,
          source: 'container-analysis',
          data: {
            name: discoveryName(image.index),
            kind: 'DISCOVERY',
            notificationTime: publishTime,
          },
        });
        break;
      case 'report': {
        const ref = `${host}/${image.repository}@${image.digest}`;
        const first = events.find((e) => e.kind === 'push' && e.image === image.index);
        events.push({
          ...base,
          topic: 'report',
          source: 'report-trivy',
          data: trivyReport(ref, publishTime),
          report: { image: ref, after: first?.messageId ?? '' },
        });
        break;
      }
      case 'webhook':
        // A distribution registry's notification: one manifest push, its event id the idempotency key.
        events.push({
          ...base,
          topic: 'webhook',
          source: 'webhook-distribution',
          data: {
            events: [
              {
                id: messageId,
                timestamp: publishTime,
                action: 'push',
                target: {
                  mediaType: OCI_MANIFEST,
                  digest: image.digest,
                  repository: image.repository,
                  tag,
                  url: `http://${on}/v2/${image.repository}/manifests/${image.digest}`,
                },
                request: { host: on },
              },
            ],
          },
        });
        break;
      default: {
        const never: never = kind;
        throw new Error(`unknown event kind ${String(never)}`);
      }
    }
  };
  for (const image of images) {
    if (events.length >= n) break;
    add('push', image, `v${image.index}`);
  }
  for (const image of webhook?.images ?? []) {
    if (events.length >= n) break;
    add('webhook', image, `v${image.index}`, webhook?.host);
  }
  for (const image of images) {
    if (events.length >= n) break;
    add('scan', image);
  }
  // Deletes and reports only of images whose push and scan are in the workload.
  const scanned = new Set(events.filter((e) => e.kind === 'scan').map((e) => e.image));
  for (const image of images) {
    if (events.length >= n) break;
    if (scanned.has(image.index) && uploadsReport(image)) add('report', image);
  }
  const deletes = images
    .filter((im) => scanned.has(im.index) && (deletesDigest(im) || deletesTag(im)))
    .map((im) => ({
      image: im,
      kind: deletesDigest(im) ? ('delete' as const) : ('tag-delete' as const),
    }));
  let pool = [...images];
  while (events.length < n) {
    const left = n - events.length;
    // Every delete finds a place: drawn one time in eight, forced when the slots run out.
    if (deletes.length > 0 && (left <= deletes.length || random() < 0.125)) {
      const d = deletes.shift() as (typeof deletes)[number];
      if (d.kind === 'delete') {
        add('delete', d.image);
        pool = pool.filter((im) => im !== d.image);
      } else add('tag-delete', d.image, `v${d.image.index}`);
      continue;
    }
    const hooks = webhook?.images ?? [];
    if (hooks.length > 0 && random() < 0.15) {
      const image = hooks[Math.floor(random() * hooks.length)] as WorkloadImage;
      add('webhook', image, `w${events.length}`, webhook?.host);
      continue;
    }
    const image = pool[Math.floor(random() * pool.length)] as WorkloadImage;
    const roll = random();
    if (roll < 0.4) add('push', image, `t${events.length}`);
    else if (roll < 0.65) add('push', image, 'latest');
    else add('scan', image);
  }
  return events;
}
