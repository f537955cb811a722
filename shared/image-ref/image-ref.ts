// The one parser/normaliser of image references (distribution reference grammar) and of the ids derived from them.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';

export const ImageRef = z.object({
  /** Lower-case host[:port], Docker Hub aliases folded into docker.io. */
  registry: z.string(),
  /** Path below the host, e.g. p/r/img or library/nginx. */
  repository: z.string(),
  tag: z.string().nullable(),
  digest: z.string().nullable(),
  /** registry/repository */
  name: z.string(),
});
export type ImageRef = z.infer<typeof ImageRef>;

/** Docker Hub's logical name; its API is served from registry-1.docker.io. */
export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** distribution's NameTotalLengthMax: registry/repository. */
export const MAX_NAME_LENGTH = 255;
/** name (255) + ':' + tag (128) + '@' + 'sha512:' + 128 hex: nothing longer can be valid, so refuse before any regex runs. */
export const MAX_REFERENCE_LENGTH = 520;

const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };
const TAG_RE = /^\w[\w.-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT_RE = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_RE = /^\[[a-fA-F0-9:.]+(?:%[a-zA-Z0-9]+)?\]$/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

function fail(input: string, reason: string): never {
  const shown = JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input);
  throw new InvalidInputError(`invalid image reference ${shown}: ${reason}`, {
    details: { reason },
  });
}

/** Characters that no part of a reference may contain; reported by position so hostile input is easy to spot. */
function checkCharacters(value: string, input: string = value): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) {
      fail(input, `contains whitespace, a control or a non-ASCII character at index ${i}`);
    }
  }
  if (value.includes('$')) {
    fail(input, "contains '$': an unexpanded placeholder such as $PROJECT");
  }
  if (value.includes('{') || value.includes('}')) {
    fail(input, 'contains braces: an unexpanded template placeholder');
  }
  if (SCHEME_RE.test(value)) {
    fail(input, 'is a URL with a scheme; give registry/repository[:tag][@digest] without one');
  }
  if (value.includes('?') || value.includes('#')) {
    fail(input, 'contains a query string or fragment');
  }
}

/** Why `digest` is not a digest we accept, or null when it is one. */
function digestProblem(digest: string): string | null {
  const colon = digest.indexOf(':');
  if (colon <= 0) return 'digest must look like sha256:<64 hex>';
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (want === undefined) {
    return `unsupported digest algorithm ${JSON.stringify(algorithm.slice(0, 20))} (sha256 or sha512)`;
  }
  if (!/^[a-f0-9]*$/.test(hex)) return `${algorithm} digest must be lower-case hex`;
  if (hex.length !== want) {
    return `${algorithm} digest must have ${want} hex characters, got ${hex.length}`;
  }
  return null;
}

/** True when `s` is `sha256:` + 64 lower-case hex or `sha512:` + 128. */
export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 7 + 128 && digestProblem(s) === null;
}

/** Whether `tag` fits the tag grammar: a word character, then up to 127 of [A-Za-z0-9_.-]. */
export function isValidTag(tag: unknown): boolean {
  return typeof tag === 'string' && TAG_RE.test(tag);
}

/** Validates host[:port] and returns it lower-cased with Docker Hub's aliases folded into docker.io. */
export function normaliseRegistry(host: string, input: string = host): string {
  if (host.length === 0) fail(input, 'registry host is empty');
  if (host.length > MAX_NAME_LENGTH) fail(input, 'registry host is too long');
  checkCharacters(host, input);
  let hostname = host;
  let port: string | null = null;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) fail(input, 'unterminated IPv6 address in registry host');
    hostname = host.slice(0, close + 1);
    const rest = host.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) fail(input, 'unexpected characters after IPv6 address');
      port = rest.slice(1);
    }
    if (!IPV6_RE.test(hostname)) fail(input, 'invalid IPv6 address in registry host');
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) {
      hostname = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
    if (hostname === '') fail(input, 'registry host is empty');
    for (const component of hostname.split('.')) {
      if (!DOMAIN_COMPONENT_RE.test(component)) {
        fail(
          input,
          `invalid registry host ${JSON.stringify(hostname)} (letters, digits and inner '-' per dot-separated label)`,
        );
      }
    }
  }
  if (port !== null) {
    const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : Number.NaN;
    if (!(n >= 1 && n <= 65535)) fail(input, `invalid registry port ${JSON.stringify(port)}`);
  }
  const lower = (port === null ? hostname : `${hostname}:${port}`).toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/** Validates a repository path (no registry defaults applied) and returns it unchanged. */
export function validateRepository(repository: string, input: string = repository): string {
  if (repository === '') fail(input, 'repository path is empty');
  if (repository.length > MAX_NAME_LENGTH) fail(input, 'repository path is too long');
  checkCharacters(repository, input);
  if (repository.startsWith('/') || repository.endsWith('/') || repository.includes('//')) {
    fail(input, "repository path has an empty component ('//' or a leading/trailing '/')");
  }
  for (const component of repository.split('/')) {
    if (component === '.' || component === '..') {
      fail(input, `repository path component ${JSON.stringify(component)} is not allowed`);
    }
    if (!PATH_COMPONENT_RE.test(component)) {
      if (component !== component.toLowerCase()) {
        fail(input, `repository path must be lower case: ${JSON.stringify(component)}`);
      }
      fail(
        input,
        `invalid repository path component ${JSON.stringify(component)} (lower-case letters and digits, joined by '.', '_', '__' or '-')`,
      );
    }
  }
  return repository;
}

/** Whether `first` would be read as a registry host when it leads a reference (docker's rule). */
export function looksLikeHost(first: string): boolean {
  return (
    first.includes('.') ||
    first.includes(':') ||
    first === 'localhost' ||
    first.toLowerCase() !== first
  );
}

/** Docker Hub's `library/` default for a single-component repository on an already normalised registry. */
export function dockerHubRepository(registry: string, repository: string): string {
  return registry === DOCKER_HUB && !repository.includes('/')
    ? `library/${repository}`
    : repository;
}

function build(
  registry: string,
  repository: string,
  tag: string | null,
  digest: string | null,
  input: string,
): ImageRef {
  const reg = normaliseRegistry(registry, input);
  if (!looksLikeHost(reg)) {
    // `Foo/bar` names host `foo`, which would read back as Docker Hub's foo/bar: refuse the ambiguity.
    fail(input, `registry host ${JSON.stringify(reg)} needs a '.' or ':' or to be localhost`);
  }
  validateRepository(repository, input);
  const repo = dockerHubRepository(reg, repository);
  const name = `${reg}/${repo}`;
  if (name.length > MAX_NAME_LENGTH) {
    fail(input, `name is ${name.length} characters long, the limit is ${MAX_NAME_LENGTH}`);
  }
  if (tag !== null && !TAG_RE.test(tag)) {
    fail(
      input,
      `invalid tag ${JSON.stringify(tag.slice(0, 140))} (a word character, then up to 127 of [A-Za-z0-9_.-])`,
    );
  }
  if (digest !== null) {
    const problem = digestProblem(digest);
    if (problem) fail(input, problem);
  }
  return { registry: reg, repository: repo, tag, digest, name };
}

/**
 * Parses `registry/repo[:tag][@sha256:…]`, applying Docker Hub's defaults (`nginx` →
 * `docker.io/library/nginx`). Throws InvalidInputError with the reason for anything else.
 */
export function parseImageRef(input: string): ImageRef {
  if (typeof input !== 'string') {
    throw new InvalidInputError('invalid image reference: not a string', {
      details: { reason: 'not a string' },
    });
  }
  if (input.length === 0) fail(input, 'is empty');
  if (input.length > MAX_REFERENCE_LENGTH) {
    fail(input, `is ${input.length} characters long, the limit is ${MAX_REFERENCE_LENGTH}`);
  }
  checkCharacters(input);

  let rest = input;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (rest.indexOf('@', at + 1) >= 0) fail(input, "contains more than one '@'");
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest === '') fail(input, "has an empty digest after '@'");
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') fail(input, "has an empty tag after ':'");
  }
  if (rest === '') fail(input, 'has no repository name');
  if (rest.startsWith('/') || rest.endsWith('/') || rest.includes('//')) {
    fail(input, "has an empty path component ('//' or a leading/trailing '/')");
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? rest : rest.slice(0, slash);
  if (slash >= 0 && looksLikeHost(first)) {
    return build(first, rest.slice(slash + 1), tag, digest, input);
  }
  return build(DOCKER_HUB, rest, tag, digest, input);
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * The one Docker Hub rule for names compared or used as keys (VEX products, policy repository
 * globs, store keys): `index.docker.io`, `registry-1.docker.io` and `docker.io` are one host,
 * a name without a host is on Docker Hub, and a single-component Docker Hub path is under
 * `library/`. Takes `host/path` or a glob over it (no tag or digest); parts it cannot read
 * safely (a glob in the host, a `**` path) are left as written. The host is lower-cased.
 */
export function canonicalImageName(name: string): string {
  const slash = name.indexOf('/');
  if (slash < 0) {
    // `nginx` is docker.io/library/nginx; a bare glob (`*`, `**`) is left alone.
    return name === '' || GLOB_CHARS.test(name) ? name : `${DOCKER_HUB}/library/${name}`;
  }
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  if (GLOB_CHARS.test(first)) return name;
  if (!looksLikeHost(first)) return `${DOCKER_HUB}/${name}`;
  const host = first.toLowerCase();
  if (!DOCKER_HUB_ALIASES.has(host)) return `${host}/${rest}`;
  const single = rest !== '' && !rest.includes('/') && !rest.includes('**');
  return `${DOCKER_HUB}/${single ? `library/${rest}` : rest}`;
}

/**
 * The image reference a `pkg:docker/…` or `pkg:oci/…` purl names, as text parseImageRef reads:
 * BuildKit names provenance subjects `pkg:docker/<registry>/<image>@<tag or digest>?platform=…`,
 * OCI purls name the repository in `repository_url`. Null for other purls or when no name can be
 * formed; the result is not validated here (parseImageRef does that).
 */
export function referenceFromPurl(purl: string): string | null {
  const m = /^pkg:(docker|oci)\/([^?#]+)(?:\?([^#]*))?/i.exec(purl);
  if (!m) return null;
  const decode = (x: string) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  };
  const type = (m[1] ?? '').toLowerCase();
  let path = m[2] ?? '';
  let version: string | null = null;
  const at = path.lastIndexOf('@');
  if (at >= 0) {
    version = decode(path.slice(at + 1));
    path = path.slice(0, at);
  }
  const qualifiers = new URLSearchParams(m[3] ?? '');
  let name = path.split('/').map(decode).join('/');
  if (type === 'oci') {
    const repo = qualifiers.get('repository_url');
    if (!repo) return null;
    name = repo;
  }
  if (name === '') return null;
  if (version === null || version === '') return name;
  return version.includes(':') && digestProblem(version) === null
    ? `${name}@${version}`
    : `${name}:${version}`;
}

/** Fully qualified text form: registry/repository[:tag][@digest]. */
export function formatImageRef(
  ref: Pick<ImageRef, 'registry' | 'repository' | 'tag' | 'digest'>,
): string {
  const tag = ref.tag === null ? '' : `:${ref.tag}`;
  const digest = ref.digest === null ? '' : `@${ref.digest}`;
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

/** Validates and normalises the parts of a digest-pinned image; a registry must be recognisable as a host. */
function canonicalParts(
  registry: string,
  repository: string,
  digest: string,
): { registry: string; repository: string; digest: string } {
  const input = `${registry}/${repository}@${digest}`;
  if (!looksLikeHost(registry)) {
    fail(
      input,
      `registry ${JSON.stringify(registry)} is not a host (needs a '.' or ':' or localhost)`,
    );
  }
  if (input.length > MAX_REFERENCE_LENGTH) {
    fail(input, `is ${input.length} characters long, the limit is ${MAX_REFERENCE_LENGTH}`);
  }
  checkCharacters(input);
  const ref = build(registry, repository, null, digest, input);
  return { registry: ref.registry, repository: ref.repository, digest };
}

/**
 * Ledger document id of one image: `registry/repository@digest` with `/` replaced by `~`.
 * Neither hosts nor repository paths may contain `~`, so the mapping is reversible.
 */
export function imageDocId(registry: string, repository: string, digest: string): string {
  const p = canonicalParts(registry, repository, digest);
  return `${p.registry}/${p.repository}@${p.digest}`.replaceAll('/', '~');
}

export function parseImageDocId(id: string): {
  registry: string;
  repository: string;
  digest: string;
} {
  if (typeof id !== 'string' || id.includes('/')) {
    throw new InvalidInputError(`invalid image document id: must not contain '/'`);
  }
  const ref = parseImageRef(id.replaceAll('~', '/'));
  if (ref.digest === null || ref.tag !== null) {
    fail(id, 'an image document id names a digest and no tag');
  }
  if (imageDocId(ref.registry, ref.repository, ref.digest) !== id) {
    fail(id, 'is not in canonical form');
  }
  return { registry: ref.registry, repository: ref.repository, digest: ref.digest };
}

/** Container Analysis resource URI: https://REGISTRY/REPO@sha256:… */
export function resourceUri(ref: Pick<ImageRef, 'registry' | 'repository' | 'digest'>): string {
  if (ref.digest === null) {
    throw new InvalidInputError(
      `no resource URI for ${ref.registry}/${ref.repository}: it has no digest`,
    );
  }
  const p = canonicalParts(ref.registry, ref.repository, ref.digest);
  return `https://${p.registry}/${p.repository}@${p.digest}`;
}

/** Reads a Container Analysis resource URI, with or without the https:// of the older form. */
export function parseResourceUri(uri: string): ImageRef & { digest: string } {
  if (typeof uri !== 'string') throw new InvalidInputError('invalid resource URI: not a string');
  const bare = uri.startsWith('https://') ? uri.slice('https://'.length) : uri;
  const ref = parseImageRef(bare);
  if (ref.digest === null) fail(uri, 'a resource URI must name a digest');
  if (ref.tag !== null) fail(uri, 'a resource URI must not carry a tag');
  return { ...ref, digest: ref.digest };
}
