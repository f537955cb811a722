// Shared pieces of the ingestion integration tests: environment, Pub/Sub push envelopes, ledger reads, a registry for hosts outside the sandbox.
import { Firestore } from '@google-cloud/firestore';
import type { PubSub } from '@google-cloud/pubsub';
import { sandboxRegistry } from '../../scripts/lib/sandbox-registry.js';
import { imageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { emptyImageRecord } from '../../shared/ledger/ledger-store.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { ledgerOf } from '../../shared/runtime/pubsub-function.js';
import { root } from '../../shared/runtime/root.js';
import { registryOf } from '../../shared/runtime/services.js';

export { sandboxRegistry };

import type { FunctionServer } from '../support/function-server.js';
import { requireEmulators } from '../support/integration.js';

/** Each webhook registry's own secret, and the report uploaders' token: one credential per channel. */
export const WEBHOOK_TOKENS = {
  distribution: 'test-distribution-token-0123456789',
  harbor: 'test-harbor-token-0123456789',
  github: 'test-github-secret-0123456789',
} as const;
export const REPORT_TOKEN = 'test-report-token-0123456789';
/** The hosts the tests' distribution webhooks speak for: the real-world fixtures' and local registries. */
export const DISTRIBUTION_HOSTS =
  'registrycluster.local,192.168.100.227:5000,registry.example.com,127.0.0.1:*,localhost:*';
export const HARBOR_HOSTS = 'harbor.example.com,harbor.xxx.xxxx.com';

export const POLICY_YAML = `apiVersion: clearance/v1
metadata:
  name: ingest-tests
environments:
  prod:
    mode: enforce
rules:
  vulnerabilities:
    requireScan: true
    maximumFixableSeverity: HIGH
    maximumUnfixableSeverity: CRITICAL
`;

/**
 * Points the process-wide root (built on the function's first use) at per-file topics and the
 * given endpoints. Must run before the function module is imported.
 */
export function ingestEnv(
  prefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env = {
    CLEARANCE_ALERTS_TOPIC: `${prefix}-alerts`,
    CLEARANCE_VERDICTS_TOPIC: `${prefix}-verdicts`,
    CLEARANCE_REEVALUATE_TOPIC: `${prefix}-reevaluate`,
    CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: WEBHOOK_TOKENS.distribution,
    CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: DISTRIBUTION_HOSTS,
    CLEARANCE_WEBHOOK_HARBOR_TOKEN: WEBHOOK_TOKENS.harbor,
    CLEARANCE_WEBHOOK_HARBOR_HOSTS: HARBOR_HOSTS,
    CLEARANCE_WEBHOOK_GITHUB_SECRET: WEBHOOK_TOKENS.github,
    CLEARANCE_REPORT_TOKEN: REPORT_TOKEN,
    CLEARANCE_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'ERROR',
    ...extra,
  };
  Object.assign(process.env, env);
  return env;
}

/** Creates the effect topics (with a pull subscription each, to read what was published). */
export async function createEffectTopics(
  pubsub: PubSub,
  env: Record<string, string>,
): Promise<void> {
  for (const name of [
    env.CLEARANCE_ALERTS_TOPIC,
    env.CLEARANCE_VERDICTS_TOPIC,
    env.CLEARANCE_REEVALUATE_TOPIC,
  ]) {
    if (!name) continue;
    const topic = pubsub.topic(name);
    const [exists] = await topic.exists();
    if (!exists) await topic.create();
    const sub = topic.subscription(`${name}-pull`);
    const [subExists] = await sub.exists();
    if (!subExists) await sub.create();
  }
}

/** Pulls what a topic's test subscription holds (synchronous pull through the emulator's REST API). */
export async function pullAll(
  subscription: string,
): Promise<{ data: unknown; attributes: Record<string, string> }[]> {
  const { pubsubHost, projectId } = requireEmulators();
  const out: { data: unknown; attributes: Record<string, string> }[] = [];
  for (;;) {
    const res = await fetch(
      `http://${pubsubHost}/v1/projects/${projectId}/subscriptions/${subscription}:pull`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ maxMessages: 1000, returnImmediately: true }),
      },
    );
    const body = (await res.json()) as {
      receivedMessages?: {
        ackId: string;
        message: { data?: string; attributes?: Record<string, string> };
      }[];
    };
    const got = body.receivedMessages ?? [];
    if (got.length === 0) return out;
    for (const m of got) {
      out.push({
        data: JSON.parse(Buffer.from(m.message.data ?? '', 'base64').toString('utf8')),
        attributes: m.message.attributes ?? {},
      });
    }
    await fetch(
      `http://${pubsubHost}/v1/projects/${projectId}/subscriptions/${subscription}:acknowledge`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ackIds: got.map((m) => m.ackId) }),
      },
    );
  }
}

let counter = 0;

export interface PushOptions {
  messageId?: string;
  publishTime?: string;
  attributes?: Record<string, string>;
  /** Raw base64 `data`, for malformed-input tests. */
  rawData?: string;
}

/** Posts a Pub/Sub push envelope to a functions-framework server, as a push subscription does. */
export async function pushMessage(
  server: FunctionServer,
  topic: string,
  data: unknown,
  opts: PushOptions = {},
): Promise<{ status: number; messageId: string }> {
  const { projectId } = requireEmulators();
  counter += 1;
  const messageId = opts.messageId ?? `m-${process.pid}-${Date.now()}-${counter}`;
  const payload =
    opts.rawData ??
    Buffer.from(typeof data === 'string' ? data : JSON.stringify(data)).toString('base64');
  const res = await fetch(`${server.url}/projects/${projectId}/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: {
        data: payload,
        messageId,
        publishTime: opts.publishTime ?? new Date().toISOString(),
        ...(opts.attributes ? { attributes: opts.attributes } : {}),
      },
      subscription: `projects/${projectId}/subscriptions/${topic}-push`,
    }),
  });
  await res.arrayBuffer();
  return { status: res.status, messageId };
}

export function testDb(): Firestore {
  return new Firestore({ projectId: requireEmulators().projectId });
}

export async function docData(
  db: Firestore,
  path: string,
): Promise<Record<string, unknown> | undefined> {
  const snap = await db.doc(path).get();
  return snap.exists ? (snap.data() as Record<string, unknown>) : undefined;
}

export async function auditOf(db: Firestore, imageId: string): Promise<Record<string, unknown>[]> {
  const snap = await db.collection('images').doc(imageId).collection('audit').get();
  return snap.docs.map((d) => ({ id: d.id, ...d.data() }));
}

/**
 * Provides the process-wide root's registry (the functions would otherwise build it on first use), so the real function modules read registries through `sandboxRegistry`.
 */
export async function useSandboxRegistry(): Promise<void> {
  registryOf.provide(root(), sandboxRegistry());
}

/** Stores POLICY_YAML as the current policy, as `clearance policy apply` would. */
export async function applyTestPolicy(db: Firestore): Promise<void> {
  await storePolicy(db, {
    source: POLICY_YAML,
    format: 'yaml',
    appliedBy: 'test',
    now: new Date('2026-11-29T09:00:00Z'),
  });
}

/** A policy with only an image rule: its verdict needs the registry's facts (the pushed config's user). */
export const NON_ROOT_POLICY_YAML = `apiVersion: clearance/v1
environments: { prod: { mode: enforce } }
rules:
  image: { nonRoot: true }
`;

/** Stores NON_ROOT_POLICY_YAML as the current policy. */
export async function applyNonRootPolicy(db: Firestore, now: Date): Promise<void> {
  await storePolicy(db, { source: NON_ROOT_POLICY_YAML, format: 'yaml', appliedBy: 'test', now });
}

/**
 * Records a push of `ref` (REGISTRY/REPO@sha256:…) in the ledger, as a registry event would: CI
 * reports count only for images the ledger knows.
 */
export async function seedPushedImage(ref: string, now = new Date()): Promise<string> {
  const parsed = parseImageRef(ref);
  if (!parsed.digest) throw new Error(`seedPushedImage needs a digest reference, got ${ref}`);
  const name = { registry: parsed.registry, repository: parsed.repository, digest: parsed.digest };
  const id = imageDocId(name.registry, name.repository, name.digest);
  const ledger = await ledgerOf(root());
  await ledger.transact(
    id,
    { source: 'test-seed', messageId: id, at: now.toISOString() },
    (current) => ({
      record: { ...(current ?? emptyImageRecord(id, name, now)), pushedAt: now.toISOString() },
      audit: { kind: 'registry-push' },
    }),
    { now },
  );
  return id;
}
