// OCI distribution API client over fetch: manifests and blobs verified against their digests, tags resolved with HEAD, images described for the ledger.
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { ClearanceError, InvalidInputError, TransientError } from '../errors.js';
import type { PlatformChild } from '../image-record.js';
import {
  DOCKER_HUB,
  isDigest,
  isValidTag,
  normaliseRegistry,
  validateRepository,
} from '../image-ref/image-ref.js';
import { createOutboundGuard, type Lookup } from './outbound.js';
import {
  BASE_DIGEST_ANNOTATION,
  BASE_NAME_ANNOTATION,
  ImageConfig,
  ImageIndex,
  ImageManifest,
  INDEX_MEDIA_TYPES,
  MANIFEST_ACCEPT,
  MANIFEST_MEDIA_TYPES,
  type ManifestMediaType,
  OCI_INDEX,
  OCI_MANIFEST,
} from './schemas.js';
import {
  type AuthChallenge,
  anonymousTokenSource,
  type FetchLike,
  parseChallenge,
  type TokenRequest,
  type TokenSource,
} from './tokens.js';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
export const MAX_REDIRECTS = 5;
export { DEFAULT_INSECURE_HOSTS } from './outbound.js';

export type FetchedManifest = {
  registry: string;
  repository: string;
  /** Digest of the bytes received (verified against Docker-Content-Digest and a digest reference). */
  digest: string;
  mediaType: ManifestMediaType;
  size: number;
  /** The exact bytes: re-serialising the JSON would change the digest. */
  body: Buffer;
} & ({ kind: 'index'; index: ImageIndex } | { kind: 'manifest'; manifest: ImageManifest });

export interface ResolvedTag {
  digest: string;
  mediaType: string | null;
  size: number | null;
}

export interface ImageDescription {
  registry: string;
  repository: string;
  digest: string;
  mediaType: ManifestMediaType;
  kind: 'index' | 'manifest';
  /** For an index: its image children (attestation manifests left out). Empty for a manifest. */
  platforms: PlatformChild[];
  /** For a manifest: its own platform, from the config. Null for an index. */
  platform: { os: string | null; architecture: string | null; variant: string | null } | null;
  /** From the image config; null for an index. */
  config: { created: string | null; user: string | null; labels: Record<string, string> } | null;
  configDigest: string | null;
  /** Compressed layer digests in order (for layer-prefix base matching). */
  layers: string[];
  /** Uncompressed layer digests from the config's rootfs. */
  diffIds: string[];
  annotations: Record<string, string>;
  base: { name: string | null; digest: string | null; source: 'annotation' | 'label' } | null;
}

/** What callers depend on; tests and other modules pass fakes that satisfy it. */
export interface Registry {
  getManifest(registry: string, repository: string, reference: string): Promise<FetchedManifest>;
  resolveTag(registry: string, repository: string, tag: string): Promise<ResolvedTag>;
  getBlob(
    registry: string,
    repository: string,
    digest: string,
    opts?: { maxBytes?: number },
  ): Promise<Buffer>;
  getConfig(registry: string, repository: string, digest: string): Promise<ImageConfig>;
  describeImage(registry: string, repository: string, digest: string): Promise<ImageDescription>;
}

export interface RegistryClientOptions {
  fetch?: FetchLike;
  /** Default: anonymous bearer tokens (public registries only). */
  tokens?: TokenSource;
  /**
   * Host patterns reached over http:// (`*` matches within the host); default loopback hosts.
   * Token realms and redirects must be https to a public address unless their host is listed.
   */
  insecureHosts?: readonly string[];
  /** Name resolution for the public-address rule; default the system resolver. */
  lookup?: Lookup;
  /** Per request, body included. Default 15 s. */
  timeoutMs?: number;
  maxManifestBytes?: number;
  maxConfigBytes?: number;
}

/** Registry, repository and reference checked with the image-reference grammar before any request. */
function checkName(registry: string, repository: string): void {
  normaliseRegistry(registry, `${registry}/${repository}`);
  validateRepository(repository, `${registry}/${repository}`);
}

function checkReference(kind: 'digest' | 'tag', value: string): void {
  const ok = kind === 'digest' ? isDigest(value) : isValidTag(value);
  if (!ok)
    throw new InvalidInputError(`invalid ${kind} ${JSON.stringify(value)}`, {
      details: { [kind]: value },
    });
}

export function digestOf(body: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
}

function algorithmOf(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

function mediaTypeOf(header: string | null): string | null {
  return header ? header.split(';')[0].trim().toLowerCase() : null;
}

function nonEmpty(s: string | undefined | null): string | null {
  return s ? s : null;
}

export function createRegistryClient(opts: RegistryClientOptions = {}): Registry {
  const doFetch = opts.fetch ?? fetch;
  const tokens = opts.tokens ?? anonymousTokenSource({ fetch: doFetch });
  const guard = createOutboundGuard({
    ...(opts.insecureHosts ? { insecureHosts: opts.insecureHosts } : {}),
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
  });
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const maxManifest = opts.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  const maxConfig = opts.maxConfigBytes ?? MAX_CONFIG_BYTES;
  // The last challenge per registry: later requests authenticate up front instead of paying a 401.
  const challenges = new Map<string, AuthChallenge>();

  const baseUrl = (registry: string): string => {
    const host =
      registry === DOCKER_HUB || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
    const scheme = guard.isInsecure(host) ? 'http' : 'https';
    return `${scheme}://${host}`;
  };

  const context = (registry: string, repository: string, extra: Record<string, unknown> = {}) => ({
    registry,
    repository,
    ...extra,
  });

  async function checkRealm(
    registry: string,
    realm: string | undefined,
    details: Record<string, unknown>,
  ): Promise<void> {
    if (!realm || !URL.canParse(realm)) {
      throw new ClearanceError(
        'forbidden',
        `registry ${registry} sent a bearer challenge without a valid realm`,
        { details },
      );
    }
    await guard.check(new URL(realm), `the token realm of ${registry}`);
  }

  /**
   * One request, redirects followed by hand: each hop must be https to a public address (or an
   * insecure-listed host), and credentials never leave the origin they were issued for.
   */
  async function fetchFollowing(
    registry: string,
    first: string,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal,
    details: Record<string, unknown>,
  ): Promise<Response> {
    let url = new URL(first);
    const origin = url.origin;
    for (let hop = 0; ; hop++) {
      const sent = { ...headers };
      if (url.origin !== origin) delete sent.authorization;
      let res: Response;
      try {
        res = await doFetch(url, { method, headers: sent, signal, redirect: 'manual' });
      } catch (err) {
        throw new TransientError(`registry ${registry} unreachable for ${details.what}`, {
          cause: err,
          code: isTimeout(err) ? 'timeout' : 'unavailable',
          details,
        });
      }
      const location = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || location === null) return res;
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) {
        throw new InvalidInputError(
          `registry ${registry} redirected ${details.what} more than ${MAX_REDIRECTS} times`,
          { details },
        );
      }
      if (!URL.canParse(location, url)) {
        throw new InvalidInputError(
          `registry ${registry} redirected ${details.what} to an invalid location`,
          { details },
        );
      }
      url = new URL(location, url);
      await guard.check(url, `a redirect of ${details.what} from ${registry}`);
    }
  }

  /** Sends one API request, answering one auth challenge; maps failures onto the error codes. */
  async function request(
    registry: string,
    repository: string,
    path: string,
    init: { method: 'GET' | 'HEAD'; accept?: string; what: string },
  ): Promise<{ res: Response }> {
    const url = `${baseUrl(registry)}/v2/${repository}/${path}`;
    const signal = AbortSignal.timeout(timeoutMs);
    const details = context(registry, repository, { what: init.what });
    const scope = `repository:${repository}:pull`;
    const challenge = challenges.get(registry);
    let auth: string | null = null;
    let tokenRequest: TokenRequest | null = null;
    if (challenge) {
      tokenRequest = { registry, repository, scope, challenge };
      auth = await tokens.authorization(tokenRequest);
    }
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (init.accept) headers.accept = init.accept;
      if (auth) headers.authorization = auth;
      const res = await fetchFollowing(registry, url, init.method, headers, signal, details);
      if (res.status === 401 && attempt === 0) {
        await res.body?.cancel();
        const fresh = parseChallenge(res.headers.get('www-authenticate'));
        if (!fresh) {
          throw new ClearanceError(
            'unauthenticated',
            `registry ${registry} demands credentials without a challenge`,
            { details },
          );
        }
        // The token service gets the credentials and its token goes to the registry: only a public https realm.
        if (fresh.scheme === 'bearer') await checkRealm(registry, fresh.params.realm, details);
        if (auth && tokenRequest) tokens.invalidate?.(tokenRequest);
        challenges.set(registry, { scheme: fresh.scheme, params: { ...fresh.params, scope: '' } });
        tokenRequest = {
          registry,
          repository,
          scope: fresh.params.scope || scope,
          challenge: fresh,
        };
        auth = await tokens.authorization(tokenRequest);
        if (!auth) {
          throw new ClearanceError('unauthenticated', `no credentials for registry ${registry}`, {
            details,
          });
        }
        continue;
      }
      if (res.ok) return { res };
      await res.body?.cancel();
      const status = res.status;
      if (status === 404) {
        throw new ClearanceError(
          'not-found',
          `${init.what} not found in ${registry}/${repository}`,
          {
            details: { ...details, status },
          },
        );
      }
      if (status === 401 || status === 403) {
        throw new ClearanceError(
          'forbidden',
          `registry ${registry} refused ${init.what} (${status})`,
          {
            details: { ...details, status },
          },
        );
      }
      if (status === 429 || status >= 500) {
        throw new TransientError(`registry ${registry} answered ${status} for ${init.what}`, {
          details: { ...details, status, retryAfter: res.headers.get('retry-after') },
        });
      }
      throw new InvalidInputError(`registry ${registry} answered ${status} for ${init.what}`, {
        details: { ...details, status },
      });
    }
  }

  /** Reads a body up to `max` bytes; a bigger one is refused before it fills memory. */
  async function readCapped(
    res: Response,
    max: number,
    details: Record<string, unknown>,
  ): Promise<Buffer> {
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(declared) && declared > max) {
      await res.body?.cancel();
      throw new ClearanceError(
        'payload-too-large',
        `${details.what} is ${declared} bytes, over the ${max} byte cap`,
        {
          details: { ...details, size: declared, max },
        },
      );
    }
    if (!res.body) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > max) {
          await reader.cancel();
          throw new ClearanceError(
            'payload-too-large',
            `${details.what} is over the ${max} byte cap`,
            {
              details: { ...details, max },
            },
          );
        }
        chunks.push(Buffer.from(value));
      }
    } catch (err) {
      if (err instanceof ClearanceError) throw err;
      throw new TransientError(`reading ${details.what} from ${details.registry} failed`, {
        cause: err,
        code: isTimeout(err) ? 'timeout' : 'unavailable',
        details,
      });
    }
    return Buffer.concat(chunks);
  }

  function verify(
    body: Buffer,
    expected: string | null,
    source: string,
    details: Record<string, unknown>,
  ): string {
    if (expected === null) return digestOf(body);
    if (!isDigest(expected)) {
      throw new ClearanceError(
        'integrity',
        `${source} ${JSON.stringify(expected)} is not a valid digest`,
        {
          details: { ...details, expected },
        },
      );
    }
    const actual = digestOf(body, algorithmOf(expected));
    if (actual !== expected) {
      throw new ClearanceError(
        'integrity',
        `content of ${details.what} does not match its ${source}`,
        {
          details: { ...details, expected, actual },
        },
      );
    }
    return actual;
  }

  async function getManifest(
    registry: string,
    repository: string,
    reference: string,
  ): Promise<FetchedManifest> {
    checkName(registry, repository);
    const byDigest = reference.includes(':');
    checkReference(byDigest ? 'digest' : 'tag', reference);
    const what = `manifest ${reference}`;
    const details = context(registry, repository, { what, reference });
    const { res } = await request(registry, repository, `manifests/${reference}`, {
      method: 'GET',
      accept: MANIFEST_ACCEPT,
      what,
    });
    const header = res.headers.get('docker-content-digest');
    const contentType = mediaTypeOf(res.headers.get('content-type'));
    const body = await readCapped(res, maxManifest, details);
    // Both checks: the header proves the transfer, the reference proves it is the image asked for.
    let digest = verify(body, header, 'Docker-Content-Digest', details);
    if (byDigest) digest = verify(body, reference, 'requested digest', details);
    if (algorithmOf(digest) !== 'sha256') digest = digestOf(body);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new InvalidInputError(`${what} from ${registry}/${repository} is not JSON`, {
        cause: err,
        details,
      });
    }
    const declared = (json as { mediaType?: unknown })?.mediaType;
    let mediaType = typeof declared === 'string' ? declared : (contentType ?? '');
    if (!(MANIFEST_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
      const shape = json as { manifests?: unknown; config?: unknown };
      // OCI makes the body's mediaType optional; the shape tells an index from a manifest.
      if (typeof declared !== 'string' && Array.isArray(shape?.manifests)) mediaType = OCI_INDEX;
      else if (typeof declared !== 'string' && shape?.config) mediaType = OCI_MANIFEST;
      else {
        throw new InvalidInputError(`${what} has unsupported media type ${mediaType || '(none)'}`, {
          details: { ...details, mediaType },
        });
      }
    }
    const base = {
      registry,
      repository,
      digest,
      mediaType: mediaType as ManifestMediaType,
      size: body.length,
      body,
    };
    if (INDEX_MEDIA_TYPES.includes(mediaType)) {
      const r = ImageIndex.safeParse(json);
      if (!r.success) throw invalidManifest(what, details, r.error);
      return { ...base, kind: 'index', index: r.data };
    }
    const r = ImageManifest.safeParse(json);
    if (!r.success) throw invalidManifest(what, details, r.error);
    return { ...base, kind: 'manifest', manifest: r.data };
  }

  function invalidManifest(what: string, details: Record<string, unknown>, error: z.ZodError) {
    return new InvalidInputError(
      `${what} from ${details.registry}/${details.repository} is malformed`,
      {
        details: {
          ...details,
          issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        },
      },
    );
  }

  async function resolveTag(
    registry: string,
    repository: string,
    tag: string,
  ): Promise<ResolvedTag> {
    checkName(registry, repository);
    checkReference('tag', tag);
    const { res } = await request(registry, repository, `manifests/${tag}`, {
      method: 'HEAD',
      accept: MANIFEST_ACCEPT,
      what: `tag ${tag}`,
    });
    await res.body?.cancel();
    const header = res.headers.get('docker-content-digest');
    if (header && isDigest(header) && algorithmOf(header) === 'sha256') {
      const length = Number(res.headers.get('content-length') ?? Number.NaN);
      return {
        digest: header,
        mediaType: mediaTypeOf(res.headers.get('content-type')),
        size: Number.isFinite(length) ? length : null,
      };
    }
    // Some registries omit the header on HEAD: the manifest's own bytes give the digest.
    const m = await getManifest(registry, repository, tag);
    return { digest: m.digest, mediaType: m.mediaType, size: m.size };
  }

  async function getBlob(
    registry: string,
    repository: string,
    digest: string,
    o: { maxBytes?: number } = {},
  ): Promise<Buffer> {
    checkName(registry, repository);
    checkReference('digest', digest);
    const what = `blob ${digest}`;
    const { res } = await request(registry, repository, `blobs/${digest}`, { method: 'GET', what });
    const body = await readCapped(
      res,
      o.maxBytes ?? maxConfig,
      context(registry, repository, { what }),
    );
    verify(body, digest, 'digest', context(registry, repository, { what }));
    return body;
  }

  async function getConfig(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<ImageConfig> {
    const body = await getBlob(registry, repository, digest, { maxBytes: maxConfig });
    const details = context(registry, repository, { what: `config ${digest}` });
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new InvalidInputError(`config ${digest} is not JSON`, {
        cause: err,
        details,
      });
    }
    const r = ImageConfig.safeParse(json);
    if (!r.success) throw invalidManifest(`config ${digest}`, details, r.error);
    return r.data;
  }

  async function describeImage(
    registry: string,
    repository: string,
    digest: string,
  ): Promise<ImageDescription> {
    checkReference('digest', digest);
    const m = await getManifest(registry, repository, digest);
    const annotations = (m.kind === 'index' ? m.index.annotations : m.manifest.annotations) ?? {};
    const common = { registry, repository, digest: m.digest, mediaType: m.mediaType, annotations };
    const fromAnnotations = baseFrom(annotations, 'annotation');
    if (m.kind === 'index') {
      const platforms = m.index.manifests
        .filter((d) => !isAttestation(d))
        .map((d) => ({
          digest: d.digest,
          os: nonEmpty(d.platform?.os),
          architecture: nonEmpty(d.platform?.architecture),
          variant: nonEmpty(d.platform?.variant),
        }));
      return {
        ...common,
        kind: 'index',
        platforms,
        platform: null,
        config: null,
        configDigest: null,
        layers: [],
        diffIds: [],
        base: fromAnnotations,
      };
    }
    const cfg = await getConfig(registry, repository, m.manifest.config.digest);
    const labels = cfg.config?.Labels ?? {};
    return {
      ...common,
      kind: 'manifest',
      platforms: [],
      platform: {
        os: nonEmpty(cfg.os),
        architecture: nonEmpty(cfg.architecture),
        variant: nonEmpty(cfg.variant),
      },
      config: {
        created: nonEmpty(cfg.created),
        user: nonEmpty(cfg.config?.User),
        labels,
      },
      configDigest: m.manifest.config.digest,
      layers: m.manifest.layers.map((l) => l.digest),
      diffIds: cfg.rootfs?.diff_ids ?? [],
      base: fromAnnotations ?? baseFrom(labels, 'label'),
    };
  }

  return { getManifest, resolveTag, getBlob, getConfig, describeImage };
}

/**
 * BuildKit lists provenance/SBOM attestation manifests in the index as platform unknown/unknown:
 * only those are left out. A child with a real platform is an image whatever its annotations say
 * (an annotation alone must not hide a runnable image from the verdict).
 */
function isAttestation(d: { platform?: { os: string; architecture: string } }): boolean {
  return d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown';
}

function baseFrom(
  source: Record<string, string>,
  kind: 'annotation' | 'label',
): ImageDescription['base'] {
  const name = nonEmpty(source[BASE_NAME_ANNOTATION]?.trim());
  const rawDigest = nonEmpty(source[BASE_DIGEST_ANNOTATION]?.trim());
  const digest = rawDigest && isDigest(rawDigest) ? rawDigest : null;
  if (!name && !digest) return null;
  return { name, digest, source: kind };
}
