// `npm start`: the whole pipeline on this machine — emulators, local registry, every function on its own server.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { FUNCTIONS, type FunctionSpec } from '../functions/manifest.js';
import { loadOrCreateLocalKey } from '../shared/attestations/signer.js';
import { storePolicy } from '../shared/policy/store/policy-source.js';
import { startChatSink } from './lib/chat-sink.js';
import { firebasePorts, startEmulators } from './lib/emulators.js';
import { startGrafeasServer } from './lib/grafeas-server.js';
import { startLocalRegistry } from './lib/local-registry.js';
import {
  onParentExit,
  reapOrphans,
  type Service,
  startService,
  stateDir,
  waitForPort,
} from './lib/process.js';

export const INTERNAL_TOPICS = ['clearance-alerts', 'clearance-reevaluate', 'clearance-verdicts'];
export const GOOGLE_TOPICS = ['gcr', 'container-analysis-occurrences-v1'];

export interface StackInfo {
  projectId: string;
  registry: string;
  endpoints: { name: string; url: string; kind: string }[];
  functions: Record<string, string>;
  tokenFile: string;
  /** PEM public key of the local attestor: what anyone verifies the attestations with. */
  attestorPublicKeyFile: string;
  /** Every message the chat-webhook sink received, one JSON object a line. */
  chatLog: string;
  /** The base tags the base-image watcher follows. */
  baseImages: string[];
}

/** The registry host the examples are written for (firebase.json's registry port). */
export const EXAMPLE_REGISTRY = '127.0.0.1:5055';

/** An example file, with its registry host pointed at the registry this stack actually runs. */
export function exampleFile(name: string, registryHost: string): string {
  return readFileSync(resolve('examples', name), 'utf8').replaceAll(EXAMPLE_REGISTRY, registryHost);
}

/** One random secret per channel (the check's, the webhook's, …), kept across runs in .clearance/. */
function devToken(name = 'dev-token'): string {
  const file = join(stateDir(), name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, token, { mode: 0o600 });
  return token;
}

async function main(): Promise<void> {
  const started = Date.now();
  const group = `stack-${process.pid}`;
  await reapOrphans('stack-');
  const ports = firebasePorts(resolve(process.env.CLEARANCE_FIREBASE_JSON ?? 'firebase.json'));
  const projectId = process.env.CLEARANCE_PROJECT ?? 'demo-clearance';
  const services: Service[] = [];
  const closers: (() => Promise<void>)[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the local stack…\n');
    await Promise.allSettled(services.map((s) => s.stop()));
    await Promise.allSettled(closers.map((c) => c()));
    process.stdout.write('stopped.\n');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  onParentExit(() => {
    process.stdout.write('\nthe process that started the local stack has exited\n');
    void stop(0);
  });

  try {
    const emulators = await startEmulators({ ports, projectId, group });
    closers.push(emulators.stop);
    // This process uses Google's clients too (topics, the example policy): point them at the emulators.
    Object.assign(process.env, emulators.env);
    const grafeas = await startGrafeasServer({ port: ports.containeranalysis });
    closers.push(grafeas.close);
    const chatLog = join(stateDir('chat'), 'messages.jsonl');
    const chat = await startChatSink({
      port: ports.chat,
      logFile: chatLog,
      onMessage: (m) => {
        const text = (m.body as { text?: string })?.text ?? '';
        process.stdout.write(`chat ▸ ${m.kind}: ${text.split('\n')[0]?.slice(0, 160)}\n`);
      },
    });
    closers.push(chat.close);
    const token = devToken();
    const webhookToken = devToken('dev-webhook-token');
    const registryHost = `127.0.0.1:${ports.registry}`;
    // The attestor's key exists before any function signs, so its public half can be handed out.
    const keyFile = join(stateDir('keys'), 'attestor.pem');
    const attestorPublicKeyFile = join(stateDir('keys'), 'attestor.pub.pem');
    writeFileSync(
      attestorPublicKeyFile,
      await (await loadOrCreateLocalKey(keyFile)).publicKeyPem(),
    );
    const baseImages = (
      process.env.CLEARANCE_BASE_IMAGES ?? `${registryHost}/base/distroless-debian12:nonroot`
    )
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean);
    const serve = fileURLToPath(new URL('./serve-function.js', import.meta.url));
    const specs: readonly FunctionSpec[] = FUNCTIONS;
    const fnUrl = (i: number) => `http://127.0.0.1:${ports.functions + i}`;
    const functionUrls = Object.fromEntries(specs.map((f, i) => [f.name, fnUrl(i)]));
    const env: NodeJS.ProcessEnv = {
      ...emulators.env,
      NODE_ENV: 'development',
      CLEARANCE_SIGNER: 'local',
      CLEARANCE_LOCAL_KEY_FILE: keyFile,
      CLEARANCE_ATTESTOR_NOTE: `projects/${projectId}/notes/clearance-attestor`,
      CLEARANCE_CHECK_BEARER_TOKEN: token,
      CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: webhookToken,
      CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: `${registryHost},localhost:${ports.registry}`,
      CLEARANCE_REPORT_TOKEN: devToken('dev-report-token'),
      CLEARANCE_WATCH_TOKEN: devToken('dev-watch-token'),
      CLEARANCE_DASHBOARD_TOKEN: token,
      CLEARANCE_REGISTRY_INSECURE_HOSTS: `${registryHost},localhost:${ports.registry}`,
      CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url,
      CLEARANCE_BASE_IMAGES: baseImages.join(','),
      CLEARANCE_ROUTING: exampleFile('routing.yaml', registryHost),
      CLEARANCE_DEV_CHAT_URL: chat.googleChatUrl,
      CLEARANCE_DEV_SLACK_URL: chat.slackUrl,
      CLEARANCE_CHECK_URL: functionUrls.checkImage,
    };
    const fnServices = specs.map((f, i) =>
      startService({
        name: `fn-${f.folder}`,
        group,
        command: process.execPath,
        args: [serve, `--target=${f.name}`, `--port=${ports.functions + i}`],
        env: { ...env, FUNCTION_TARGET: f.name, PORT: String(ports.functions + i) },
      }),
    );
    services.push(...fnServices);
    const registry = await startLocalRegistry({
      port: ports.registry,
      group,
      notifyUrl: `${functionUrls.ingestWebhook}/distribution`,
      notifyHeaders: { Authorization: `Bearer ${webhookToken}` },
      keepStorage: true,
    });
    closers.push(registry.stop);
    await Promise.all(fnServices.map((s, i) => waitForPort(ports.functions + i, s, 30_000)));

    const pubsub = new PubSub({ projectId });
    for (const t of [...GOOGLE_TOPICS, ...INTERNAL_TOPICS]) {
      const [exists] = await pubsub.topic(t).exists();
      if (!exists) await pubsub.createTopic(t);
    }
    for (const [i, f] of specs.entries()) {
      if (f.trigger.kind !== 'pubsub') continue;
      const sub = pubsub.topic(f.trigger.topic).subscription(`${f.folder}-push`);
      const [exists] = await sub.exists();
      if (!exists) {
        await sub.create({
          pushConfig: {
            pushEndpoint: `${fnUrl(i)}/projects/${projectId}/topics/${f.trigger.topic}`,
          },
          ackDeadlineSeconds: 120,
          retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 30 } },
        });
      }
    }
    // Cloud Scheduler's enrich sweep (infra: enrich_schedule): pushes still waiting for a registry
    // read after their redeliveries ran out (the emulator gives up after a few) are read again.
    const sweep = setInterval(() => {
      pubsub
        .topic('clearance-reevaluate')
        .publishMessage({ json: { kind: 'enrich' }, attributes: { kind: 'enrich' } })
        .catch(() => undefined);
    }, 60_000);
    closers.push(async () => {
      clearInterval(sweep);
      await pubsub.close();
    });

    const db = new Firestore({ projectId });
    const policy = await storePolicy(db, {
      source: exampleFile('policy.yaml', registryHost),
      format: 'yaml',
      appliedBy: 'npm start',
      now: new Date(),
    });
    await db.terminate();

    const info: StackInfo = {
      projectId,
      registry: registryHost,
      tokenFile: join(stateDir(), 'dev-token'),
      attestorPublicKeyFile,
      chatLog,
      baseImages,
      functions: functionUrls,
      endpoints: [
        { name: 'Firestore emulator', url: `http://${emulators.firestoreHost}`, kind: 'emulator' },
        { name: 'Pub/Sub emulator', url: `http://${emulators.pubsubHost}`, kind: 'emulator' },
        {
          name: 'OCI registry',
          url: registry.url,
          kind: 'docker-registry, notifies ingestWebhook',
        },
        { name: 'Container Analysis stand-in', url: grafeas.url, kind: 'Grafeas v1 REST' },
        { name: 'Chat webhook sink', url: chat.url, kind: 'Google Chat + Slack stand-in' },
        ...specs.map((f, i) => ({
          name: f.name,
          url: fnUrl(i),
          kind: f.trigger.kind === 'pubsub' ? `pubsub ← ${f.trigger.topic}` : 'http',
        })),
      ],
    };
    writeFileSync(join(stateDir(), 'stack.json'), JSON.stringify(info, null, 2));
    const width = Math.max(...info.endpoints.map((e) => e.name.length));
    const out = [
      '',
      `Clearance local stack is up in ${((Date.now() - started) / 1000).toFixed(1)} s — project ${projectId}, policy ${policy.hash.slice(0, 19)}…`,
      '',
      ...info.endpoints.map((e) => `  ${e.name.padEnd(width)}  ${e.url}  (${e.kind})`),
      '',
      `  bearer tokens: checkImage ${info.tokenFile}; ingestReport, watchBaseImages, the registry webhook: dev-report-token, dev-watch-token, dev-webhook-token beside it`,
      `  attestor public key: ${attestorPublicKeyFile}`,
      `  base images watched: ${baseImages.join(', ')}`,
      `  dashboard: ${functionUrls.dashboard}/ (sign in with the checkImage token)`,
      `  logs: ${stateDir('logs', group)}`,
      '',
      'Try `npm run demo` in another terminal. Ctrl-C stops everything.',
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } catch (err) {
    process.stderr.write(`\nthe local stack could not start: ${(err as Error).message}\n`);
    await stop(1);
  }
}

await main();
