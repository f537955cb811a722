// Writes, finds and deletes Binary Authorization ATTESTATION occurrences through Container Analysis (Grafeas v1).
import { ClearanceError, InvalidInputError, isRetryable, TransientError } from '../errors.js';
import type { AttestationOccurrence } from './binauthz.js';

type ContainerAnalysisClientOptions = ConstructorParameters<
  typeof import('@google-cloud/containeranalysis').ContainerAnalysisClient
>[0];

export interface AttestationWriter {
  create(occurrence: AttestationOccurrence): Promise<{ name: string }>;
  /** Deleting an occurrence that is already gone succeeds. */
  delete(name: string): Promise<void>;
  /**
   * Names of the ATTESTATION occurrences on `noteName` for `resourceUri`; with `publicKeyId`, only
   * those carrying a signature by that key (so a retry adopts our own occurrence, not a stranger's).
   */
  findExisting(resourceUri: string, noteName: string, publicKeyId?: string): Promise<string[]>;
}

interface OccurrenceLike {
  name?: string | null;
  resourceUri?: string | null;
  noteName?: string | null;
  attestation?: { signatures?: { publicKeyId?: string | null }[] | null } | null;
}

/** The three calls of the Grafeas client used here; tests may pass the real client. */
export interface GrafeasClient {
  createOccurrence(request: {
    parent: string;
    occurrence: AttestationOccurrence;
  }): Promise<readonly [OccurrenceLike, ...unknown[]]>;
  deleteOccurrence(request: { name: string }): Promise<readonly unknown[]>;
  listOccurrences(request: {
    parent: string;
    filter: string;
    pageSize?: number;
  }): Promise<readonly [OccurrenceLike[], ...unknown[]]>;
}

const NOTE_NAME = /^projects\/([^/]+)\/notes\/([^/]+)$/;
const OCCURRENCE_NAME = /^projects\/[^/]+\/occurrences\/[^/]+$/;
const GRPC_NOT_FOUND = 5;

function parseNote(noteName: string): { projectId: string; noteId: string } {
  const m = NOTE_NAME.exec(noteName);
  if (!m) {
    throw new ClearanceError('invalid-config', 'attestor note must look like projects/P/notes/N', {
      details: { noteName },
    });
  }
  return { projectId: m[1], noteId: m[2] };
}

/** A Container Analysis filter string literal: double-quoted, with `\` and `"` escaped. */
function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The filter Container Analysis accepts for one image's attestations on one note:
 * `resourceUrl="https://…@sha256:…" AND noteProjectId="P" AND noteId="N" AND kind="ATTESTATION"`.
 */
export function attestationFilter(resourceUri: string, noteName: string): string {
  const { projectId, noteId } = parseNote(noteName);
  return [
    `resourceUrl=${quote(resourceUri)}`,
    `noteProjectId=${quote(projectId)}`,
    `noteId=${quote(noteId)}`,
    'kind="ATTESTATION"',
  ].join(' AND ');
}

function wrap(what: string, err: unknown, details: Record<string, unknown>): never {
  const grpcCode = (err as { code?: unknown })?.code;
  if (isRetryable(err)) {
    throw new TransientError(`Container Analysis ${what} failed`, {
      cause: err,
      details: { ...details, grpcCode },
    });
  }
  throw new ClearanceError('invalid-config', `Container Analysis ${what} failed`, {
    cause: err,
    details: { ...details, grpcCode },
  });
}

/**
 * AttestationWriter over `@google-cloud/containeranalysis` (loaded on first use). Occurrences
 * live in `projects/<projectId>`, by default the attestor note's project, which is where
 * `gcloud container binauthz attestations create` puts them and where Binary Authorization looks.
 */
export function grafeasAttestationWriter(
  options: {
    projectId?: string;
    client?: GrafeasClient;
    /** Passed to `new ContainerAnalysisClient(...)`, e.g. `{ fallback: true, apiEndpoint, port, protocol, auth }`. */
    clientOptions?: ContainerAnalysisClientOptions;
  } = {},
): AttestationWriter {
  let clientPromise: Promise<GrafeasClient> | undefined;
  const client = (): Promise<GrafeasClient> => {
    clientPromise ??= options.client
      ? Promise.resolve(options.client)
      : import('@google-cloud/containeranalysis').then(
          (ca) =>
            new ca.ContainerAnalysisClient(
              options.clientOptions,
            ).getGrafeasClient() as unknown as GrafeasClient,
        );
    return clientPromise;
  };
  const parentFor = (noteName: string): string =>
    `projects/${options.projectId ?? parseNote(noteName).projectId}`;

  return {
    async create(occurrence) {
      const parent = parentFor(occurrence.noteName);
      let created: OccurrenceLike;
      try {
        [created] = await (await client()).createOccurrence({ parent, occurrence });
      } catch (err) {
        wrap('createOccurrence', err, { parent, resourceUri: occurrence.resourceUri });
      }
      if (!created?.name || !OCCURRENCE_NAME.test(created.name)) {
        throw new TransientError('Container Analysis created an occurrence without a name', {
          details: { parent, resourceUri: occurrence.resourceUri },
        });
      }
      return { name: created.name };
    },

    async delete(name) {
      if (!OCCURRENCE_NAME.test(name)) {
        throw new InvalidInputError('not an occurrence name', { details: { name } });
      }
      try {
        await (await client()).deleteOccurrence({ name });
      } catch (err) {
        if ((err as { code?: unknown })?.code === GRPC_NOT_FOUND) return;
        wrap('deleteOccurrence', err, { name });
      }
    },

    async findExisting(resourceUri, noteName, publicKeyId) {
      const parent = parentFor(noteName);
      const filter = attestationFilter(resourceUri, noteName);
      let found: OccurrenceLike[];
      try {
        [found] = await (await client()).listOccurrences({ parent, filter });
      } catch (err) {
        wrap('listOccurrences', err, { parent, resourceUri });
      }
      return (
        found
          // The server filters already; checking again keeps a lenient server from handing us
          // another image's occurrence to adopt or delete.
          .filter((o) => o.resourceUri === resourceUri && o.noteName === noteName)
          .filter(
            (o) =>
              publicKeyId === undefined ||
              (o.attestation?.signatures ?? []).some((s) => s.publicKeyId === publicKeyId),
          )
          .map((o) => o.name)
          .filter((n): n is string => typeof n === 'string' && OCCURRENCE_NAME.test(n))
      );
    },
  };
}
