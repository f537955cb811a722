// Splits image references (host/repo:tag@digest) into the parts the registry API needs, rejecting placeholders and malformed names.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { Digest, RegistryHost, RepositoryName, TagName } from './schemas.js';

export const ImageReference = z.object({
  registry: RegistryHost,
  repository: RepositoryName,
  tag: TagName.nullable(),
  digest: Digest.nullable(),
});
export type ImageReference = z.infer<typeof ImageReference>;

/** Docker Hub's logical name; the API lives at registry-1.docker.io. */
export const DOCKER_HUB = 'docker.io';

/**
 * Parses `[host/]repo[:tag][@digest]` the way Docker does: the first component is a host when
 * it has a dot or a port or is `localhost`; otherwise the image is on Docker Hub, where a
 * single-component name lives under `library/`.
 */
export function parseImageReference(ref: string): ImageReference {
  const input = ref.trim().replace(/^(?:https?|docker):\/\//, '');
  let rest = input;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  let registry: string;
  let repository: string;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first.toLowerCase();
    repository = rest.slice(slash + 1);
  } else {
    registry = DOCKER_HUB;
    repository = slash >= 0 ? rest : `library/${rest}`;
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  const parsed = ImageReference.safeParse({ registry, repository, tag, digest });
  if (!parsed.success) {
    throw new InvalidInputError(`invalid image reference ${JSON.stringify(ref)}`, {
      details: {
        reference: ref,
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      },
    });
  }
  return parsed.data;
}

/** `host/repo`, `host/repo:tag`, `host/repo@digest` or both. */
export function formatImageReference(ref: {
  registry: string;
  repository: string;
  tag?: string | null;
  digest?: string | null;
}): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
