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

export interface WorkloadEvent {
  /** Position in the true order: its publish time is BASE + n seconds. */
  n: number;
  kind: 'push' | 'scan';
  topic: typeof GCR_TOPIC | typeof SCAN_TOPIC;
  messageId: string;
  publishTime: string;
  data: Record<string, unknown>;
  image: number;
  /** The source the ledger records the event under (its audit entry's key with the message id). */
  source: 'gcr' | 'container-analysis';
}

const BASE_TIME = Date.parse('2026-11-30T08:00:00.000Z');

export function discoveryName(image: number): string {
  return `projects/${SCAN_PROJECT}/occurrences/img${image}-discovery`;
}

/**
 * N events over the images: each image's first push (tag v<i>) and its scan, then a mix of
 * pushes under new tags (40%), moves of the repository's `latest` tag (25%) and rescans (35%).
 */
export function workloadEvents(
  host: string,
  images: readonly WorkloadImage[],
  n: number,
  random: () => number,
): WorkloadEvent[] {
  const events: WorkloadEvent[] = [];
  const add = (kind: WorkloadEvent['kind'], image: WorkloadImage, tag?: string) => {
    const i = events.length;
    const publishTime = new Date(BASE_TIME + i * 1000).toISOString();
    const messageId = `faults-${kind}-${i}-${createHash('sha256').update(`${host}:${i}`).digest('hex').slice(0, 8)}`;
    if (kind === 'push') {
      events.push({
        n: i,
        kind,
        topic: GCR_TOPIC,
        source: 'gcr',
        messageId,
        publishTime,
        image: image.index,
        data: {
          action: 'INSERT',
          digest: `${host}/${image.repository}@${image.digest}`,
          tag: `${host}/${image.repository}:${tag}`,
        },
      });
    } else {
      events.push({
        n: i,
        kind,
        topic: SCAN_TOPIC,
        source: 'container-analysis',
        messageId,
        publishTime,
        image: image.index,
        data: {
          name: discoveryName(image.index),
          kind: 'DISCOVERY',
          notificationTime: publishTime,
        },
      });
    }
  };
  for (const image of images) {
    if (events.length >= n) break;
    add('push', image, `v${image.index}`);
  }
  for (const image of images) {
    if (events.length >= n) break;
    add('scan', image);
  }
  while (events.length < n) {
    const image = images[Math.floor(random() * images.length)] as WorkloadImage;
    const roll = random();
    if (roll < 0.4) add('push', image, `t${events.length}`);
    else if (roll < 0.65) add('push', image, 'latest');
    else add('scan', image);
  }
  return events;
}
