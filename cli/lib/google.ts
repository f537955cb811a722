// The project, the credentials and the connection the store commands use: resolved up front, each failure one clear line.
import type { Firestore } from '@google-cloud/firestore';
import { createRoot, type Root } from '../../shared/runtime/root.js';
import { ConfigError, type Io, UnavailableError } from './command.js';

/** The project the emulators are started with (firebase.json, `npm start`). */
export const EMULATOR_PROJECT = 'demo-clearance';
const LOGIN =
  'run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file)';

function emulatorHost(env: NodeJS.ProcessEnv): string | null {
  return env.FIRESTORE_EMULATOR_HOST || env.PUBSUB_EMULATOR_HOST || null;
}

/** Rejects with `onTimeout()` when `work` has not settled within `ms`. */
export async function within<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * --project, else GOOGLE_CLOUD_PROJECT, else the project of the application-default credentials.
 * Against the emulators no credentials are needed and the project defaults to demo-clearance;
 * against Google Cloud, missing credentials are a configuration error naming the fix.
 */
export async function resolveProject(
  io: Io,
  flag: string | undefined,
  timeoutMs: number,
): Promise<string> {
  const explicit = flag ?? (io.env.GOOGLE_CLOUD_PROJECT || undefined);
  if (emulatorHost(io.env)) return explicit ?? EMULATOR_PROJECT;
  const { GoogleAuth } = await import('google-auth-library');
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const noCredentials = () => new ConfigError(`no Google credentials found: ${LOGIN}`);
  try {
    await within(auth.getClient(), timeoutMs, noCredentials);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw noCredentials();
  }
  if (explicit) return explicit;
  let fromCredentials: string | null = null;
  try {
    fromCredentials = await within(auth.getProjectId(), timeoutMs, () => new Error('timeout'));
  } catch {
    // Said below, in the user's terms.
  }
  if (!fromCredentials) {
    throw new ConfigError(
      'no project: pass --project PROJECT or set GOOGLE_CLOUD_PROJECT (the application-default credentials name none)',
    );
  }
  return fromCredentials;
}

export interface StoreOptions {
  project: string | undefined;
  /** How long connecting (and each single call to Google) may take before the command gives up. */
  timeoutMs: number;
}

export interface Store {
  root: Root;
  projectId: string;
  db: Firestore;
  /** Bounds one call to Google by the command's deadline, naming what timed out. */
  bounded<T>(what: string, work: Promise<T>): Promise<T>;
}

/**
 * Says which project it connects to, proves Firestore answers within the deadline (one document
 * read), runs `fn`, and closes the clients it opened whatever happens.
 */
export async function withStore<T>(
  io: Io,
  options: StoreOptions,
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  const projectId = await resolveProject(io, options.project, options.timeoutMs);
  const host = emulatorHost(io.env);
  // The emulators need no credentials: without this, the clients still probe for a metadata server.
  if (host) io.env.METADATA_SERVER_DETECTION ||= 'none';
  io.err(`connecting to project ${projectId}${host ? ` (emulators at ${host})` : ''}…\n`);
  const root = createRoot({ ...io.env, GOOGLE_CLOUD_PROJECT: projectId });
  const secs = Math.round(options.timeoutMs / 100) / 10;
  const bounded = <R>(what: string, work: Promise<R>) =>
    within(
      work,
      options.timeoutMs,
      () =>
        new UnavailableError(
          `${what} in project ${projectId} did not answer within ${secs} s${host ? ` (emulator at ${host} — is it running?)` : ' — check the network and that the project has a Firestore database'}`,
        ),
    );
  let usedPubsub = false;
  const tracked: Root = {
    ...root,
    pubsub: () => {
      usedPubsub = true;
      return root.pubsub();
    },
  };
  const db = await root.firestore();
  try {
    try {
      await bounded('Firestore', db.collection('policies').doc('current').get());
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      throw describeGoogleError(err, projectId);
    }
    return await fn({ root: tracked, projectId, db, bounded });
  } finally {
    // Open gRPC channels keep the process alive; a channel to an unreachable host may never close.
    const closing = [db.terminate()];
    if (usedPubsub) closing.push(root.pubsub().then((p) => p.close()));
    await within(Promise.allSettled(closing), 1000, () => new Error('close')).catch(
      () => undefined,
    );
  }
}

/** A Google API error in the user's terms: what to fix (exit 2) or that it is unreachable (exit 3). */
function describeGoogleError(err: unknown, projectId: string): Error {
  const code = (err as { code?: unknown }).code;
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  switch (code) {
    case 7: // PERMISSION_DENIED
    case 16: // UNAUTHENTICATED
      return new ConfigError(`not allowed to read Firestore in project ${projectId}: ${first}`);
    case 5: // NOT_FOUND
      return new ConfigError(
        `project ${projectId} has no Firestore database (or no such project): ${first}`,
      );
    default:
      return new UnavailableError(`Firestore in project ${projectId} is unavailable: ${first}`);
  }
}

/** The usage lines of the options every command that opens the store takes. */
export const STORE_OPTIONS = `  --project P      Google Cloud project (default: $GOOGLE_CLOUD_PROJECT, else the
                   application-default credentials' project; demo-clearance on the emulators)
  --timeout S      seconds to wait for Firestore / Pub/Sub to answer (default 30)`;
