// The fault suite's stack: a private Firestore emulator that can be killed, the Pub/Sub emulator, a local registry that can be stopped, Container Analysis and chat stand-ins, and the real functions behind fault proxies.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { type ChatSink, startChatSink } from '../../../scripts/lib/chat-sink.js';
import { findEmulators } from '../../../scripts/lib/emulators.js';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type GrafeasServer, startGrafeasServer } from '../../../scripts/lib/grafeas-server.js';
import { type LocalRegistry, startLocalRegistry } from '../../../scripts/lib/local-registry.js';
import { skopeoCopy, writeOciImage } from '../../../scripts/lib/oci-image.js';
import {
  freePort,
  type Service,
  startService,
  stateDir,
  waitForHttp,
} from '../../../scripts/lib/process.js';
import {
  type RestartableFirestore,
  startRestartableFirestore,
} from '../../../scripts/lib/restartable-firestore.js';
import { sandboxRegistry } from '../../../scripts/lib/sandbox-registry.js';
import { vulnerabilityOccurrences } from '../ingest-workload.js';
import { discoveryName, SCAN_PROJECT, type WorkloadImage } from './scenario.js';

export const TOPICS = {
  alerts: 'faults-alerts',
  verdicts: 'faults-verdicts',
  reevaluate: 'faults-reevaluate',
} as const;

export const TOKENS = {
  distribution: 'faults-distribution-token-0123456789',
  harbor: 'faults-harbor-token-0123456789',
  github: 'faults-github-secret-0123456789',
  report: 'faults-report-token-0123456789',
  check: 'faults-check-token-0123456789',
} as const;

const ROUTING = `version: 1
labelKeys: [owner]
teams:
  payments:
    channels:
      - { kind: google-chat, secret: 'env:FAULTS_CHAT_WEBHOOK', space: payments-chat }
fallback:
  channels:
    - { kind: google-chat, secret: 'env:FAULTS_CHAT_WEBHOOK', space: payments-chat }
`;

export type PushFunction =
  | 'push'
  | 'scan'
  | 'attest'
  | 'notify'
  | 'reevaluate'
  | 'webhook'
  | 'report';

/** What a run's functions need to reach the shared parts (serialisable: the clean run is a child process). */
export interface InfraInfo {
  pubsubHost: string;
  firestoreHost: string;
  registryHost: string;
  /** The second registry, whose pushes reach Clearance as distribution webhooks (never taken down). */
  webhookRegistryHost: string;
  grafeasUrl: string;
  chatUrl: string;
  scratch: string;
  images: WorkloadImage[];
  webhookImages: WorkloadImage[];
}

/** The parts both runs share: emulators, registry, Container Analysis and chat stand-ins. */
export interface FaultInfra {
  info: InfraInfo;
  firestore: RestartableFirestore;
  registry: { host: string; stop(): Promise<void>; start(): Promise<void>; readonly up: boolean };
  grafeas: GrafeasServer;
  chat: ChatSink;
  close(): Promise<void>;
}

/** One run's functions (one project of the emulators), each behind its fault proxy. */
export interface FunctionStack {
  projectId: string;
  info: InfraInfo;
  /** The chat path this run's alerts are posted to. */
  chatPath: string;
  /** Each Pub/Sub function's fault proxy (the push endpoint the broker posts to). */
  proxies: Record<PushFunction, FaultProxy>;
  /** Effect topic → the function its push subscription feeds. */
  effectTargets: Record<string, PushFunction>;
  db: Firestore;
  close(): Promise<void>;
}

async function startPubsub(group: string): Promise<{ host: string; service: Service }> {
  const found = findEmulators();
  if (!found.pubsub) throw new Error('no Pub/Sub emulator');
  const port = await freePort();
  const service = startService({
    name: 'pubsub-emulator',
    group,
    command: found.pubsub.command,
    args: found.pubsub.args('127.0.0.1', port),
    env: { JAVA: found.java ?? 'java', JAVA_TOOL_OPTIONS: '-Xss2m' },
  });
  await waitForHttp(`http://127.0.0.1:${port}/`, service, 60_000);
  return { host: `127.0.0.1:${port}`, service };
}

/** `count` images in `repositories` repositories, pushed with skopeo; every third is denied by its findings. */
async function pushImages(
  host: string,
  count: number,
  scratch: string,
  prefix = '',
): Promise<WorkloadImage[]> {
  const images: WorkloadImage[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(scratch, `${prefix}image-${i}`);
    writeOciImage(dir, {
      files: { 'app/id': `faults ${prefix}image ${i}\n` },
      config: { labels: { owner: 'payments' }, user: '65532' },
    });
    const repository = `faults/app-${i % Math.max(1, Math.ceil(count / 3))}`;
    const digest = await skopeoCopy(dir, `${host}/${repository}:seed-${i}`);
    images.push({ index: i, repository, digest, denied: i % 3 === 0 });
  }
  return images;
}

function closer(): { push(c: () => Promise<unknown>): void; close(): Promise<void> } {
  const closers: (() => Promise<unknown>)[] = [];
  return {
    push: (c) => closers.push(c),
    close: async () => {
      for (const c of closers.reverse()) {
        try {
          await c();
        } catch (err) {
          process.stderr.write(`stopping the fault stack: ${(err as Error).message}\n`);
        }
      }
    },
  };
}

/** Starts the shared parts and pushes `images` images to the registry. */
export async function startFaultInfra(opts: {
  images: number;
  group: string;
  /** The project whose documents survive the Firestore restarts (the faulty run's). */
  projectId: string;
}): Promise<FaultInfra> {
  // Nothing here runs on Google Cloud: skip gcp-metadata's probe, which warns on stderr when it fails.
  process.env.METADATA_SERVER_DETECTION = 'none';
  const c = closer();
  try {
    const scratch = mkdtempSync(join(tmpdir(), 'clearance-faults-'));
    c.push(async () => rmSync(scratch, { recursive: true, force: true }));
    const ps = await startPubsub(opts.group);
    c.push(() => ps.service.stop());
    const firestore = await startRestartableFirestore({
      projectId: opts.projectId,
      group: opts.group,
      scratch,
    });
    c.push(() => firestore.stop());
    let registry: LocalRegistry = await startLocalRegistry({ port: 'free', group: opts.group });
    const registryPort = Number(registry.host.split(':')[1]);
    let registryUp = true;
    c.push(async () => {
      if (registryUp) await registry.service.stop();
      rmSync(stateDir('registry', opts.group, String(registryPort)), {
        recursive: true,
        force: true,
      });
    });
    const webhookRegistry = await startLocalRegistry({ port: 'free', group: opts.group });
    c.push(async () => {
      await webhookRegistry.service.stop();
      rmSync(stateDir('registry', opts.group, webhookRegistry.host.split(':')[1] ?? ''), {
        recursive: true,
        force: true,
      });
    });
    const grafeas = await startGrafeasServer({ defaultPageSize: 1000 });
    c.push(() => grafeas.close());
    const chat = await startChatSink();
    c.push(() => chat.close());

    const images = await pushImages(registry.host, opts.images, scratch);
    // A few images on the webhook registry: never scanned here, so their verdicts stay pending.
    const webhookImages = await pushImages(
      webhookRegistry.host,
      Math.max(2, Math.ceil(opts.images / 10)),
      scratch,
      'webhook-',
    );
    for (const image of images) {
      const uri = `https://${registry.host}/${image.repository}@${image.digest}`;
      // 4 findings include a fixable CRITICAL (denied); 3 stay within the policy (allowed).
      for (const o of vulnerabilityOccurrences(
        SCAN_PROJECT,
        uri,
        image.index,
        image.denied ? 4 : 3,
      ))
        grafeas.put(o);
      grafeas.put({
        name: discoveryName(image.index),
        resourceUri: uri,
        noteName: 'projects/goog-analysis/notes/PACKAGE_VULNERABILITY',
        kind: 'DISCOVERY',
        createTime: '2026-11-30T07:00:00Z',
        updateTime: '2026-11-30T07:05:00Z',
        discovery: {
          analysisStatus: 'FINISHED_SUCCESS',
          continuousAnalysis: 'ACTIVE',
          analysisCompleted: { analysisType: ['OS'] },
          lastScanTime: '2026-11-30T07:05:00Z',
        },
      });
    }
    return {
      info: {
        pubsubHost: ps.host,
        firestoreHost: firestore.host,
        registryHost: registry.host,
        webhookRegistryHost: webhookRegistry.host,
        grafeasUrl: grafeas.url,
        chatUrl: chat.url,
        scratch,
        images,
        webhookImages,
      },
      firestore,
      registry: {
        host: registry.host,
        get up() {
          return registryUp;
        },
        async stop() {
          await registry.service.stop();
          registryUp = false;
        },
        async start() {
          registry = await startLocalRegistry({
            port: registryPort,
            group: opts.group,
            keepStorage: true,
          });
          registryUp = true;
        },
      },
      grafeas,
      chat,
      close: () => c.close(),
    };
  } catch (err) {
    await c.close();
    throw err;
  }
}

/**
 * Loads the real function modules for one project (they read the environment set here on first
 * use, so once per process) and serves each behind a fault proxy drawing from `random`.
 */
export async function startFunctions(
  info: InfraInfo,
  opts: { projectId: string; random: () => number },
): Promise<FunctionStack> {
  const c = closer();
  try {
    const chatPath = `/v1/spaces/${opts.projectId}/messages`;
    Object.assign(process.env, {
      FIRESTORE_EMULATOR_HOST: info.firestoreHost,
      PUBSUB_EMULATOR_HOST: info.pubsubHost,
      GOOGLE_CLOUD_PROJECT: opts.projectId,
      GCLOUD_PROJECT: opts.projectId,
      METADATA_SERVER_DETECTION: 'none',
      CLEARANCE_ALERTS_TOPIC: TOPICS.alerts,
      CLEARANCE_VERDICTS_TOPIC: TOPICS.verdicts,
      CLEARANCE_REEVALUATE_TOPIC: TOPICS.reevaluate,
      CLEARANCE_SIGNER: 'local',
      CLEARANCE_LOCAL_KEY_FILE: join(info.scratch, 'attestor.pem'),
      CLEARANCE_ATTESTOR_NOTE: `projects/${opts.projectId}/notes/clearance-attestor`,
      CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: info.grafeasUrl,
      CLEARANCE_ROUTING: ROUTING,
      FAULTS_CHAT_WEBHOOK: `${info.chatUrl}${chatPath}?key=local-key&token=local-token`,
      CLEARANCE_REGISTRY_INSECURE_HOSTS: '127.0.0.1:*',
      // A delivery answers 5xx within 15 s while a backend is down, inside the broker's 30 s ack deadline.
      CLEARANCE_HANDLER_DEADLINE_MS: process.env.FAULTS_HANDLER_DEADLINE_MS ?? '15000',
      CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: TOKENS.distribution,
      CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: 'registry.example.com,127.0.0.1:*',
      CLEARANCE_WEBHOOK_HARBOR_TOKEN: TOKENS.harbor,
      CLEARANCE_WEBHOOK_HARBOR_HOSTS: 'harbor.example.com,harbor.xxx.xxxx.com',
      CLEARANCE_WEBHOOK_GITHUB_SECRET: TOKENS.github,
      CLEARANCE_REPORT_TOKEN: TOKENS.report,
      CLEARANCE_CHECK_BEARER_TOKEN: TOKENS.check,
      CLEARANCE_LOG_LEVEL: process.env.FAULTS_LOG_LEVEL ?? 'ERROR',
    });
    const { Firestore } = await import('@google-cloud/firestore');
    const { PubSub } = await import('@google-cloud/pubsub');
    const db = new Firestore({ projectId: opts.projectId });
    const pubsub = new PubSub({ projectId: opts.projectId });
    c.push(() => Promise.all([db.terminate(), pubsub.close()]));
    for (const topic of Object.values(TOPICS)) {
      const t = pubsub.topic(topic);
      if (!(await t.exists())[0]) await t.create();
      const sub = t.subscription(`${topic}-pull`);
      if (!(await sub.exists())[0]) await sub.create({ ackDeadlineSeconds: 60 });
    }

    const { root } = await import('../../../shared/runtime/root.js');
    const { registryOf } = await import('../../../shared/runtime/services.js');
    // Only the suite's own registries are real: fixtures name loopback registries that are not running.
    registryOf.provide(
      root(),
      sandboxRegistry((h) => h === info.registryHost || h === info.webhookRegistryHost),
    );
    c.push(async () => {
      await (await root().firestore()).terminate();
      await (await root().pubsub()).close();
    });
    await import('../../../functions/on-registry-push/index.js');
    await import('../../../functions/on-scan-complete/index.js');
    await import('../../../functions/attest-image/index.js');
    await import('../../../functions/notify-owners/index.js');
    await import('../../../functions/reevaluate/index.js');
    await import('../../../functions/ingest-webhook/index.js');
    await import('../../../functions/ingest-report/index.js');
    const names: Record<PushFunction, string> = {
      push: 'onRegistryPush',
      scan: 'onScanComplete',
      attest: 'attestImage',
      notify: 'notifyOwners',
      reevaluate: 'reevaluate',
      webhook: 'ingestWebhook',
      report: 'ingestReport',
    };
    const proxies = {} as Record<PushFunction, FaultProxy>;
    for (const [key, name] of Object.entries(names) as [PushFunction, string][]) {
      const server = await serveFunctionHere(name);
      c.push(() => server.close());
      const proxy = await startFaultProxy(server.url, opts.random);
      c.push(() => proxy.close());
      proxies[key] = proxy;
    }
    return {
      projectId: opts.projectId,
      info,
      chatPath,
      proxies,
      effectTargets: {
        [TOPICS.verdicts]: 'attest',
        [TOPICS.alerts]: 'notify',
        [TOPICS.reevaluate]: 'reevaluate',
      },
      db,
      close: () => c.close(),
    };
  } catch (err) {
    await c.close();
    throw err;
  }
}

/** A registered function on a functions-framework test server in this process, on a free port. */
export async function serveFunctionHere(
  name: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  const server = getTestServer(name);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
