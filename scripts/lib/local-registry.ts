// Starts Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1 for tests and the local stack, with notifications to the webhook function.
import { execFileSync } from 'node:child_process';
import { existsSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, type Service, startService, stateDir, waitForHttp } from './process.js';

export const REGISTRY_INSTALL_HINT =
  'CNCF distribution is needed for the registry tests and the local stack: apt-get install docker-registry skopeo';

export interface LocalRegistryOptions {
  /** A fixed port, or 'free' to pick an unused one. */
  port: number | 'free';
  /** Service group (pid and log folders under .clearance); config and storage go to .clearance/registry/<group>/<port>/. */
  group: string;
  /** Where distribution posts its notification envelopes (e.g. the local ingestWebhook URL). */
  notifyUrl?: string;
  /** Headers sent with every notification (e.g. the shared-secret Authorization header). */
  notifyHeaders?: Record<string, string>;
  /** Keep blobs and manifests from an earlier run in the same group (default: start empty). */
  keepStorage?: boolean;
  /** Remove the config and storage folder on stop (tests). */
  ephemeral?: boolean;
  /** Path of the registry binary (default /usr/bin/docker-registry, then PATH). */
  binary?: string;
}

export interface LocalRegistry {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly configFile: string;
  readonly storageDir: string;
  readonly service: Service;
  stop(): Promise<void>;
}

export function findRegistryBinary(preferred?: string): string | null {
  const candidates = [preferred, '/usr/bin/docker-registry', 'docker-registry'].filter(
    (c): c is string => Boolean(c),
  );
  for (const c of candidates) {
    if (c.includes('/')) {
      if (existsSync(c)) return c;
      continue;
    }
    try {
      return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim() || null;
    } catch {
      // not on PATH
    }
  }
  return null;
}

/**
 * The distribution 2.8 configuration. Notifications ignore blob pushes (octet-stream) and
 * pulls so the webhook sees only manifest pushes and deletes; distribution queues events per
 * endpoint and retries with the backoff, so a webhook that is down loses nothing.
 */
export function registryConfig(opts: {
  port: number;
  storageDir: string;
  notifyUrl?: string;
  notifyHeaders?: Record<string, string>;
}): Record<string, unknown> {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', fields: { service: 'registry' } },
    storage: {
      filesystem: { rootdirectory: opts.storageDir },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${opts.port}`,
      headers: { 'X-Content-Type-Options': ['nosniff'] },
    },
  };
  if (opts.notifyUrl) {
    config.notifications = {
      events: { includereferences: true },
      endpoints: [
        {
          name: 'clearance',
          disabled: false,
          url: opts.notifyUrl,
          // distribution's header values are lists (http.Header).
          headers: Object.fromEntries(
            Object.entries(opts.notifyHeaders ?? {}).map(([k, v]) => [k, [v]]),
          ),
          timeout: '2s',
          threshold: 3,
          backoff: '1s',
          ignore: {
            mediatypes: ['application/octet-stream'],
            actions: ['pull'],
          },
        },
      ],
    };
  }
  return config;
}

export async function startLocalRegistry(opts: LocalRegistryOptions): Promise<LocalRegistry> {
  const binary = findRegistryBinary(opts.binary);
  if (!binary) throw new Error(`docker-registry not found. ${REGISTRY_INSTALL_HINT}`);
  // A free port can be taken by someone else before the registry binds it: try another.
  const attempts = opts.port === 'free' ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port === 'free' ? await freePort() : opts.port;
    try {
      return await launch(binary, port, opts);
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}

async function launch(
  binary: string,
  port: number,
  opts: LocalRegistryOptions,
): Promise<LocalRegistry> {
  // One folder per port, so two registries of one group never share storage.
  const dir = stateDir('registry', opts.group, String(port));
  const storageDir = join(dir, 'storage');
  if (!opts.keepStorage) rmSync(storageDir, { recursive: true, force: true });
  stateDir('registry', opts.group, String(port), 'storage');
  const configFile = join(dir, 'config.yml');
  // The notification headers may carry the webhook's shared secret.
  writeFileSync(
    configFile,
    stringify(
      registryConfig({
        port,
        storageDir,
        notifyUrl: opts.notifyUrl,
        notifyHeaders: opts.notifyHeaders,
      }),
    ),
    { mode: 0o600 },
  );
  const service = startService({
    name: `registry-${port}`,
    group: opts.group,
    command: binary,
    args: ['serve', configFile],
    // The registry reads REGISTRY_* variables as config overrides: keep stray ones out.
    env: Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith('REGISTRY_'))
        .map((k) => [k, undefined]),
    ),
  });
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const remove = () => {
    if (!opts.ephemeral) return;
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync(dirname(dir));
    } catch {
      // another registry of the group still uses it
    }
  };
  try {
    await waitForRegistry(`${url}/v2/`, service);
  } catch (err) {
    await service.stop();
    remove();
    throw err;
  }
  const stop = async () => {
    await service.stop();
    remove();
  };
  return { host, url, configFile, storageDir, service, stop };
}

/** waitForHttp accepts any status; the registry is ready only when GET /v2/ answers 200. */
async function waitForRegistry(url: string, service: Service, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await waitForHttp(url, service, timeoutMs);
  while (Date.now() < deadline) {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) }).catch(() => null);
    await res?.arrayBuffer();
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`registry at ${url} did not answer 200; see ${service.logFile}`);
}
