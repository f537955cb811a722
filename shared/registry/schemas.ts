// Shapes of what registries send (manifests, indexes, image configs, token answers), parsed with zod at the boundary.
import { z } from 'zod';
import { isDigest } from '../image-ref/image-ref.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** Every manifest kind we read, in preference order: what the Accept header lists. */
export const MANIFEST_MEDIA_TYPES = [
  OCI_INDEX,
  OCI_MANIFEST,
  DOCKER_LIST,
  DOCKER_MANIFEST,
] as const;
export type ManifestMediaType = (typeof MANIFEST_MEDIA_TYPES)[number];
export const INDEX_MEDIA_TYPES: readonly string[] = [OCI_INDEX, DOCKER_LIST];

export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export const BASE_NAME_ANNOTATION = 'org.opencontainers.image.base.name';
export const BASE_DIGEST_ANNOTATION = 'org.opencontainers.image.base.digest';

/** sha256 and sha512 digests, the two algorithms the OCI spec registers (image-ref's grammar). */
export const Digest = z.string().refine(isDigest, 'expected sha256:<64 hex> or sha512:<128 hex>');
export type Digest = z.infer<typeof Digest>;

export const Platform = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof Platform>;

const Annotations = z.record(z.string(), z.string());

export const Descriptor = z.object({
  mediaType: z.string().optional(),
  digest: Digest,
  size: z.number().int().nonnegative(),
  annotations: Annotations.optional(),
  platform: Platform.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof Descriptor>;

export const ImageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: Descriptor,
  layers: z.array(Descriptor),
  subject: Descriptor.optional(),
  annotations: Annotations.optional(),
});
export type ImageManifest = z.infer<typeof ImageManifest>;

export const ImageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(Descriptor),
  subject: Descriptor.optional(),
  annotations: Annotations.optional(),
});
export type ImageIndex = z.infer<typeof ImageIndex>;

/**
 * The parts of an image config (OCI or Docker v1) that the ledger keeps. Go's encoding/json (which
 * writes and reads these configs in Docker, BuildKit and containerd) takes `null` for any field as
 * "absent", so `"User": null`, `"Labels": null` or `"rootfs": null` are valid configs here too.
 */
export const ImageConfig = z.object({
  created: z.string().nullish(),
  architecture: z.string().nullish(),
  os: z.string().nullish(),
  variant: z.string().nullish(),
  config: z
    .object({
      User: z.string().nullish(),
      Labels: z.record(z.string(), z.string()).nullish(),
    })
    .nullish(),
  rootfs: z
    .object({ type: z.string().nullish(), diff_ids: z.array(z.string()).nullish() })
    .nullish(),
});
export type ImageConfig = z.infer<typeof ImageConfig>;

/** Docker token-service answer: `token` and/or `access_token`, lifetime in seconds (default 60). */
export const TokenResponse = z
  .object({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().int().positive().optional(),
    issued_at: z.string().optional(),
  })
  .refine((t) => t.token !== undefined || t.access_token !== undefined, {
    message: 'token response has neither token nor access_token',
  });
export type TokenResponse = z.infer<typeof TokenResponse>;
