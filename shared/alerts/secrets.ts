// Resolves webhook-URL references (Secret Manager, env, file) and registers every value with the logger's scrubber.
import { readFile } from 'node:fs/promises';
import { crc32c } from '@aws-crypto/crc32c';
import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { type Clock, systemClock } from '../clock.js';
import { ClearanceError, TransientError } from '../errors.js';
import { registerSecret } from '../logging/logger.js';

export interface SecretSource {
  /** The secret's value; rejects with a final ClearanceError when the reference cannot work. */
  resolve(ref: string): Promise<string>;
}

/**
 * Registers a secret and, when it is a URL, the credential-bearing parts of it (query values,
 * the path below /services/ for Slack), so a log line quoting only part of it is scrubbed too.
 */
export function registerSecretValue(value: string): void {
  registerSecret(value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return;
  }
  for (const v of url.searchParams.values()) registerSecret(v);
  const services = url.pathname.indexOf('/services/');
  if (services >= 0) {
    const rest = url.pathname.slice(services + '/services/'.length);
    registerSecret(rest);
    for (const part of rest.split('/')) registerSecret(part);
  }
  registerSecret(`${url.host}${url.pathname}`);
}

/** Environment variables (the local stack's `env:NAME` references). */
export function envSecretSource(env: NodeJS.ProcessEnv = process.env): SecretSource {
  return {
    async resolve(ref) {
      const name = ref.startsWith('env:') ? ref.slice(4) : ref;
      const value = env[name]?.trim();
      if (!value) {
        throw new ClearanceError('invalid-config', `environment variable ${name} is not set`);
      }
      registerSecretValue(value);
      return value;
    },
  };
}

/** Files (`file:/path`), e.g. a mounted secret volume. */
export function fileSecretSource(): SecretSource {
  return {
    async resolve(ref) {
      const path = ref.startsWith('file:') ? ref.slice(5) : ref;
      let value: string;
      try {
        value = (await readFile(path, 'utf8')).trim();
      } catch (err) {
        throw new ClearanceError('invalid-config', `secret file ${path} cannot be read`, {
          cause: err,
        });
      }
      if (!value) throw new ClearanceError('invalid-config', `secret file ${path} is empty`);
      registerSecretValue(value);
      return value;
    },
  };
}

type ClientOptions = ConstructorParameters<typeof SecretManagerServiceClient>[0];

/** The one call of SecretManagerServiceClient used here. */
export interface SecretManagerClientLike {
  accessSecretVersion(request: { name: string }): Promise<
    [
      {
        payload?: {
          data?: Uint8Array | string | null;
          dataCrc32c?: number | string | { toString(): string } | null;
        } | null;
      },
      ...unknown[],
    ]
  >;
}

/** gRPC codes that no retry will fix: INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, UNAUTHENTICATED. */
const FINAL_GRPC = new Set([3, 5, 7, 9, 16]);
/** The same over the REST fallback, where the client reports the HTTP status instead. */
const FINAL_HTTP = new Set([400, 401, 403, 404]);

function isFinalSecretError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'number') return false;
  return code < 100 ? FINAL_GRPC.has(code) : FINAL_HTTP.has(code);
}

/**
 * Secret Manager, with values cached for `ttlMs` (so `versions/latest` picks up a rotated URL
 * within that time) and concurrent lookups of one name sharing a single request.
 */
export function secretManagerSource(
  options: {
    client?: SecretManagerClientLike;
    clientOptions?: ClientOptions;
    ttlMs?: number;
    clock?: Clock;
  } = {},
): SecretSource & { clear(): void } {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const clock = options.clock ?? systemClock;
  const cache = new Map<string, { value: string; until: number }>();
  const inFlight = new Map<string, Promise<string>>();
  let client: SecretManagerClientLike | undefined = options.client;

  async function getClient(): Promise<SecretManagerClientLike> {
    if (!client) {
      const { SecretManagerServiceClient } = await import('@google-cloud/secret-manager');
      client = new SecretManagerServiceClient(options.clientOptions) as SecretManagerClientLike;
    }
    return client;
  }

  async function fetchValue(name: string): Promise<string> {
    const c = await getClient();
    let response: Awaited<ReturnType<SecretManagerClientLike['accessSecretVersion']>>[0];
    try {
      [response] = await c.accessSecretVersion({ name });
    } catch (err) {
      if (isFinalSecretError(err)) {
        const code = (err as { code: number }).code;
        throw new ClearanceError('invalid-config', `secret ${name} cannot be read (code ${code})`, {
          cause: err,
        });
      }
      throw new TransientError(`secret ${name} is unavailable`, { cause: err });
    }
    const data = response.payload?.data;
    if (data === undefined || data === null) {
      throw new ClearanceError('invalid-config', `secret ${name} has no payload`);
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data);
    const expected = response.payload?.dataCrc32c;
    if (expected !== undefined && expected !== null && Number(String(expected)) !== crc32c(bytes)) {
      // A corrupted read is worth another try; it is not the secret's fault.
      throw new TransientError(`secret ${name} failed its CRC32C check`, { code: 'unavailable' });
    }
    const value = bytes.toString('utf8').trim();
    registerSecretValue(value);
    return value;
  }

  return {
    async resolve(name) {
      const now = clock.now().getTime();
      const hit = cache.get(name);
      if (hit && hit.until > now) return hit.value;
      const pending = inFlight.get(name);
      if (pending) return pending;
      const p = fetchValue(name)
        .then((value) => {
          cache.set(name, { value, until: clock.now().getTime() + ttlMs });
          return value;
        })
        .finally(() => inFlight.delete(name));
      inFlight.set(name, p);
      return p;
    },
    clear() {
      cache.clear();
    },
  };
}

/** Dispatches on the reference's form: `projects/…` to Secret Manager, `env:` and `file:` locally. */
export function secretSource(
  sources: { secretManager?: SecretSource; env?: SecretSource; file?: SecretSource } = {},
): SecretSource {
  const env = sources.env ?? envSecretSource();
  const file = sources.file ?? fileSecretSource();
  let sm = sources.secretManager;
  return {
    resolve(ref) {
      if (ref.startsWith('env:')) return env.resolve(ref);
      if (ref.startsWith('file:')) return file.resolve(ref);
      if (ref.startsWith('projects/')) {
        sm ??= secretManagerSource();
        return sm.resolve(ref);
      }
      return Promise.reject(
        new ClearanceError('invalid-config', 'secret reference has an unknown form'),
      );
    },
  };
}
