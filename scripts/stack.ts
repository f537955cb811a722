// `npm start`: the whole pipeline on this machine — emulators, local registry, every function on its own server.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { PubSub } from '@google-cloud/pubsub';
import { FUNCTIONS, type FunctionSpec } from '../functions/manifest.js';
import { firebasePorts, startEmulators } from './lib/emulators.js';
import { startGrafeasServer } from './lib/grafeas-server.js';
import { reapOrphans, type Service, startService, stateDir, waitForHttp } from './lib/process.js';

const INTERNAL_TOPICS = ['clearance-alerts', 'clearance-reevaluate', 'clearance-verdicts'];
const GOOGLE_TOPICS = ['gcr', 'container-analysis-occurrences-v1'];

export interface StackInfo {
  projectId: string;
  endpoints: { name: string; url: string; kind: string }[];
  devToken: string;
}

function devToken(): string {
  const file = join(stateDir(), 'dev-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, token, { mode: 0o600 });
  return token;
}

async function main(): Promise<void> {
  const started = Date.now();
  const group = `stack-${process.pid}`;
  await reapOrphans('stack-');
  const ports = firebasePorts();
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

  try {
    const emulators = await startEmulators({ ports, projectId, group });
    closers.push(emulators.stop);
    const grafeas = await startGrafeasServer({ port: ports.containeranalysis });
    closers.push(grafeas.close);
    const token = devToken();
    const ffMain = createRequire(import.meta.url).resolve(
      '@google-cloud/functions-framework/build/src/main.js',
    );
    const source = resolve('.');
    const fnUrl = (i: number) => `http://127.0.0.1:${ports.functions + i}`;
    const env: NodeJS.ProcessEnv = {
      ...emulators.env,
      NODE_ENV: 'development',
      CLEARANCE_SIGNER: 'local',
      CLEARANCE_LOCAL_KEY_FILE: join(stateDir('keys'), 'attestor.pem'),
      CLEARANCE_ATTESTOR_NOTE: `projects/${projectId}/notes/clearance-attestor`,
      CLEARANCE_CHECK_BEARER_TOKEN: token,
      CLEARANCE_INGEST_TOKEN: token,
      CLEARANCE_REGISTRY_INSECURE_HOSTS: `127.0.0.1:${ports.registry},localhost:${ports.registry}`,
      CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url,
      CLEARANCE_BASE_IMAGES:
        process.env.CLEARANCE_BASE_IMAGES ?? `127.0.0.1:${ports.registry}/base/debian12:latest`,
    };
    const specs: readonly FunctionSpec[] = FUNCTIONS;
    const fnServices = specs.map((f, i) =>
      startService({
        name: `fn-${f.folder}`,
        group,
        command: process.execPath,
        args: [
          ffMain,
          `--target=${f.name}`,
          `--signature-type=${f.trigger.kind === 'pubsub' ? 'cloudevent' : 'http'}`,
          `--port=${ports.functions + i}`,
          `--source=${source}`,
        ],
        env: { ...env, FUNCTION_TARGET: f.name, PORT: String(ports.functions + i) },
      }),
    );
    services.push(...fnServices);
    await Promise.all(fnServices.map((s, i) => waitForHttp(`${fnUrl(i)}/`, s, 30_000)));

    const pubsub = new PubSub({ projectId, apiEndpoint: emulators.pubsubHost });
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
          ackDeadlineSeconds: 60,
          retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 30 } },
        });
      }
    }
    await pubsub.close();

    const info: StackInfo = {
      projectId,
      devToken: token,
      endpoints: [
        { name: 'Firestore emulator', url: `http://${emulators.firestoreHost}`, kind: 'emulator' },
        { name: 'Pub/Sub emulator', url: `http://${emulators.pubsubHost}`, kind: 'emulator' },
        { name: 'Container Analysis stand-in', url: grafeas.url, kind: 'emulator' },
        ...specs.map((f, i) => ({
          name: f.name,
          url: fnUrl(i),
          kind: f.trigger.kind === 'pubsub' ? `pubsub ← ${f.trigger.topic}` : 'http',
        })),
      ],
    };
    writeFileSync(join(stateDir(), 'stack.json'), JSON.stringify(info, null, 2));
    const width = Math.max(...info.endpoints.map((e) => e.name.length));
    process.stdout.write(
      `\nClearance local stack is up (${((Date.now() - started) / 1000).toFixed(1)} s), project ${projectId}\n\n`,
    );
    for (const e of info.endpoints)
      process.stdout.write(`  ${e.name.padEnd(width)}  ${e.url}  (${e.kind})\n`);
    process.stdout.write(
      `\n  dev bearer token (check/ingest): stored in ${join(stateDir(), 'dev-token')}\n  logs: ${stateDir('logs', group)}\n\nTry \`npm run demo\` in another terminal. Ctrl-C stops everything.\n`,
    );
  } catch (err) {
    process.stderr.write(`\nthe local stack could not start: ${(err as Error).message}\n`);
    await stop(1);
  }
}

await main();
