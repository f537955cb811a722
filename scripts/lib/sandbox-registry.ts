// A registry for local runs (tests, bench:faults): the real client for the local docker-registry, not-found for every host outside the sandbox.
import { ClearanceError } from '../../shared/errors.js';
import { createRegistryClient, type Registry } from '../../shared/registry/client.js';

const loopback = (host: string) => host.startsWith('127.0.0.1:') || host.startsWith('localhost:');

/**
 * Hosts outside the sandbox (gcr.io, pkg.dev, fuzzed names) cannot be reached here, so they answer
 * as a registry does for a manifest it does not hold: not found. `local` says which hosts are real.
 */
export function sandboxRegistry(local: (host: string) => boolean = loopback): Registry {
  const real = createRegistryClient({ insecureHosts: ['127.0.0.1:*', 'localhost:*'] });
  const missing = (what: string) =>
    Promise.reject(new ClearanceError('not-found', `${what} not found (outside the sandbox)`));
  return {
    getManifest: (h, r, ref) => (local(h) ? real.getManifest(h, r, ref) : missing('manifest')),
    resolveTag: (h, r, t) => (local(h) ? real.resolveTag(h, r, t) : missing('tag')),
    getBlob: (h, r, d, o) => (local(h) ? real.getBlob(h, r, d, o) : missing('blob')),
    getConfig: (h, r, d) => (local(h) ? real.getConfig(h, r, d) : missing('config')),
    describeImage: (h, r, d) => (local(h) ? real.describeImage(h, r, d) : missing('manifest')),
  } satisfies Registry;
}
