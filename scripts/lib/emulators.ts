// Finds, starts, resets and stops Google's official Firestore and Pub/Sub emulators (tests and local stack).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, reapStale, type Service, startService, waitForHttp } from './process.js';

export const INSTALL_HINT = [
  "Google's Firestore and Pub/Sub emulators (and Java 17) are needed for the integration tests and the local stack.",
  'Install them with one of:',
  '  gcloud components install cloud-firestore-emulator pubsub-emulator',
  '  sudo apt-get install google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator openjdk-17-jre-headless',
  '  (or `firebase setup:emulators:firestore` / `firebase setup:emulators:pubsub`, which fill ~/.cache/firebase/emulators)',
  'An SDK elsewhere is found through $CLOUDSDK_ROOT or `gcloud info`.',
].join('\n');

export interface EmulatorCommand {
  command: string;
  /** Arguments before host and port, e.g. ['start'] or ['-jar', jar]. */
  args: (host: string, port: number) => string[];
  found: string;
}

export interface EmulatorDiscovery {
  firestore: EmulatorCommand | null;
  pubsub: EmulatorCommand | null;
  java: string | null;
  /** Human-readable list of what is missing; empty when everything was found. */
  missing: string[];
}

function sdkRoots(env: NodeJS.ProcessEnv, system: boolean): string[] {
  const roots: string[] = [];
  if (env.CLOUDSDK_ROOT) roots.push(env.CLOUDSDK_ROOT);
  if (!system) return roots;
  roots.push('/usr/lib/google-cloud-sdk', '/usr/share/google-cloud-sdk', '/opt/google-cloud-sdk');
  roots.push(join(homedir(), 'google-cloud-sdk'));
  try {
    const out = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 15_000,
    }).trim();
    if (out) roots.push(out);
  } catch {
    // no gcloud on PATH: the fixed locations above still count
  }
  return [...new Set(roots.map((r) => resolve(r)))];
}

function firebaseCache(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'firebase', 'emulators');
}

function newest(dir: string, pattern: RegExp): string | null {
  if (!existsSync(dir)) return null;
  const hits = readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const last = hits.at(-1);
  return last ? join(dir, last) : null;
}

function findJava(env: NodeJS.ProcessEnv): string | null {
  const candidates = [env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : null, 'java'];
  for (const c of candidates) {
    if (!c) continue;
    try {
      execFileSync(c, ['-version'], { stdio: 'ignore', timeout: 10_000, env });
      return c;
    } catch {
      // try the next
    }
  }
  return null;
}

/**
 * Looks in $CLOUDSDK_ROOT, the usual SDK folders, `gcloud info`'s SDK root and the firebase-tools
 * cache. `system: false` limits the search to what `env` names (for tests of the search itself).
 */
export function findEmulators(
  env: NodeJS.ProcessEnv = process.env,
  options: { system?: boolean } = {},
): EmulatorDiscovery {
  let firestore: EmulatorCommand | null = null;
  let pubsub: EmulatorCommand | null = null;
  for (const root of sdkRoots(env, options.system ?? true)) {
    const fs = join(root, 'platform', 'cloud-firestore-emulator', 'cloud_firestore_emulator');
    if (!firestore && existsSync(fs)) {
      firestore = {
        command: fs,
        found: fs,
        args: (h, p) => ['start', `--host=${h}`, `--port=${p}`],
      };
    }
    const ps = join(root, 'platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
    if (!pubsub && existsSync(ps)) {
      pubsub = { command: ps, found: ps, args: (h, p) => [`--host=${h}`, `--port=${p}`] };
    }
  }
  const cache = firebaseCache(env);
  if (!firestore) {
    const jar = newest(cache, /^cloud-firestore-emulator-v[\d.]+\.jar$/);
    if (jar)
      firestore = {
        command: 'java',
        found: jar,
        args: (h, p) => ['-jar', jar, `--host=${h}`, `--port=${p}`],
      };
  }
  if (!pubsub) {
    const dir = newest(cache, /^pubsub-emulator-[\d.]+$/);
    const bin = dir ? join(dir, 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator') : null;
    if (bin && existsSync(bin))
      pubsub = { command: bin, found: bin, args: (h, p) => [`--host=${h}`, `--port=${p}`] };
  }
  const java = findJava(env);
  const missing: string[] = [];
  if (!firestore) missing.push('Firestore emulator');
  if (!pubsub) missing.push('Pub/Sub emulator');
  if (!java) missing.push('Java (17 or newer)');
  return { firestore, pubsub, java, missing };
}

export class EmulatorsMissingError extends Error {
  constructor(readonly missing: string[]) {
    super(`Missing: ${missing.join(', ')}.\n${INSTALL_HINT}`);
    this.name = 'EmulatorsMissingError';
  }
}

export interface EmulatorPorts {
  firestore: number;
  pubsub: number;
}

/** The local stack's ports: firebase.json is the one source. */
export function firebasePorts(file = resolve('firebase.json')): EmulatorPorts & {
  functions: number;
  registry: number;
  containeranalysis: number;
  chat: number;
} {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as {
    emulators: Record<string, { port: number }>;
  };
  const port = (k: string) => {
    const p = doc.emulators[k]?.port;
    if (typeof p !== 'number') throw new Error(`firebase.json has no emulators.${k}.port`);
    return p;
  };
  return {
    firestore: port('firestore'),
    pubsub: port('pubsub'),
    functions: port('functions'),
    registry: port('registry'),
    containeranalysis: port('containeranalysis'),
    chat: port('chat'),
  };
}

export interface RunningEmulators {
  projectId: string;
  firestoreHost: string;
  pubsubHost: string;
  /** The variables Google's clients read to talk to the emulators. */
  env: Record<string, string>;
  services: Service[];
  stop(): Promise<void>;
}

export async function startEmulators(options: {
  ports: EmulatorPorts | 'free';
  projectId?: string;
  /** Names the folder for logs and pid files, so tests and the stack never reap each other. */
  group: string;
  env?: NodeJS.ProcessEnv;
}): Promise<RunningEmulators> {
  const found = findEmulators(options.env);
  if (found.missing.length > 0 || !found.firestore || !found.pubsub)
    throw new EmulatorsMissingError(found.missing);
  await reapStale(options.group);
  const ports =
    options.ports === 'free'
      ? { firestore: await freePort(), pubsub: await freePort() }
      : options.ports;
  const host = '127.0.0.1';
  const projectId = options.projectId ?? 'demo-clearance';
  const javaEnv = { JAVA: found.java ?? 'java', JAVA_TOOL_OPTIONS: '-Xss2m' };
  const firestore = startService({
    name: 'firestore-emulator',
    group: options.group,
    command: found.firestore.command,
    args: found.firestore.args(host, ports.firestore),
    env: javaEnv,
  });
  const pubsub = startService({
    name: 'pubsub-emulator',
    group: options.group,
    command: found.pubsub.command,
    args: found.pubsub.args(host, ports.pubsub),
    env: javaEnv,
  });
  const services = [firestore, pubsub];
  const stop = async () => {
    await Promise.all(services.map((s) => s.stop()));
  };
  try {
    await Promise.all([
      waitForHttp(`http://${host}:${ports.firestore}/`, firestore),
      waitForHttp(`http://${host}:${ports.pubsub}/`, pubsub),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  const firestoreHost = `${host}:${ports.firestore}`;
  const pubsubHost = `${host}:${ports.pubsub}`;
  return {
    projectId,
    firestoreHost,
    pubsubHost,
    env: {
      FIRESTORE_EMULATOR_HOST: firestoreHost,
      PUBSUB_EMULATOR_HOST: pubsubHost,
      GOOGLE_CLOUD_PROJECT: projectId,
      GCLOUD_PROJECT: projectId,
      // Nothing here runs on Google Cloud: skip the metadata-server probe and its warnings.
      METADATA_SERVER_DETECTION: 'none',
    },
    services,
    stop,
  };
}

/** Deletes every document of the emulator's default database for one project. */
export async function resetFirestore(firestoreHost: string, projectId: string): Promise<void> {
  const url = `http://${firestoreHost}/emulator/v1/projects/${projectId}/databases/(default)/documents`;
  // A transaction left open by the previous test file holds locks until the emulator times it out
  // (409 ABORTED "Transaction lock timeout"): wait and try again rather than fail the next file.
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, { method: 'DELETE' });
    if (res.ok) return;
    const body = await res.text();
    // Up to about 80 s in all: within the integration project's 120 s hook timeout.
    if (res.status !== 409 || attempt >= 30) {
      throw new Error(`resetting Firestore failed: ${res.status} ${body}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 3_000)));
  }
}
