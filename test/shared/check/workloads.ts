// AdmissionReview requests from the real-world fixtures, and in-memory variants (copies; the fixtures stay untouched).
import { fixture } from '../real-world-fixtures.js';

export type Review = {
  request: {
    uid: string;
    kind: { group: string; version: string; kind: string };
    resource?: unknown;
    object: Record<string, unknown> & {
      metadata: Record<string, unknown> & { annotations?: Record<string, string> };
      spec: Record<string, unknown>;
    };
    dryRun?: boolean;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

/** Connaisseur's Pod CREATE: one container pinned by digest (docker.io/securesystemsengineering/charlie-image). */
export const podReview = (): Review => fixture<Review>('k8s/admissionreview-v1-pod-create.json');
/** The same Pod with an init container `nginx` (a tag: docker.io/library/nginx:latest). */
export const podWithInitReview = (): Review =>
  fixture<Review>('k8s/admissionreview-v1-pod-create-initcontainer.json');

export const CHARLIE =
  'securesystemsengineering/charlie-image@sha256:91ac9b26df583762234c1cdb2fc930364754ccc59bc752a2bfe298d2ea68f9ff';
export const CHARLIE_DIGEST =
  'sha256:91ac9b26df583762234c1cdb2fc930364754ccc59bc752a2bfe298d2ea68f9ff';

export function withAnnotations(review: Review, annotations: Record<string, string>): Review {
  review.request.object.metadata.annotations = {
    ...(review.request.object.metadata.annotations ?? {}),
    ...annotations,
  };
  return review;
}

/** Wraps the fixture Pod's spec into an apps/v1 Deployment's pod template (as kubectl apply would send it). */
export function asDeployment(pod: Review, name = 'charlie-deployment'): Review {
  const { spec, metadata } = pod.request.object;
  pod.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
  pod.request.resource = { group: 'apps', version: 'v1', resource: 'deployments' };
  pod.request.name = name;
  pod.request.object = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: pod.request.namespace as string },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'test-connaisseur' } },
      template: { metadata: { labels: metadata.labels, annotations: metadata.annotations }, spec },
    },
  };
  return pod;
}

/** Wraps the fixture Pod's spec into a batch/v1 CronJob's job template. */
export function asCronJob(pod: Review, name = 'charlie-nightly'): Review {
  const { spec } = pod.request.object;
  pod.request.kind = { group: 'batch', version: 'v1', kind: 'CronJob' };
  pod.request.name = name;
  pod.request.object = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name },
    spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { spec } } } },
  };
  return pod;
}
