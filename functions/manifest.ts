// Every Cloud Function Clearance deploys: entry point, folder and trigger. The local stack and index.ts read it.

export const FUNCTIONS = [
  { name: 'onRegistryPush', folder: 'on-registry-push', trigger: { kind: 'pubsub', topic: 'gcr' } },
  {
    name: 'onScanComplete',
    folder: 'on-scan-complete',
    trigger: { kind: 'pubsub', topic: 'container-analysis-occurrences-v1' },
  },
  { name: 'ingestWebhook', folder: 'ingest-webhook', trigger: { kind: 'http' } },
  { name: 'ingestReport', folder: 'ingest-report', trigger: { kind: 'http' } },
  {
    name: 'reevaluate',
    folder: 'reevaluate',
    trigger: { kind: 'pubsub', topic: 'clearance-reevaluate' },
  },
  {
    name: 'attestImage',
    folder: 'attest-image',
    trigger: { kind: 'pubsub', topic: 'clearance-verdicts' },
  },
  {
    name: 'notifyOwners',
    folder: 'notify-owners',
    trigger: { kind: 'pubsub', topic: 'clearance-alerts' },
  },
  { name: 'checkImage', folder: 'check-image', trigger: { kind: 'http' } },
  { name: 'watchBaseImages', folder: 'watch-base-images', trigger: { kind: 'http' } },
  { name: 'dashboard', folder: 'dashboard', trigger: { kind: 'http' } },
] as const satisfies readonly FunctionSpec[];

export interface FunctionSpec {
  name: string;
  folder: string;
  trigger: { kind: 'pubsub'; topic: string } | { kind: 'http' };
}

export type FunctionName = (typeof FUNCTIONS)[number]['name'];
