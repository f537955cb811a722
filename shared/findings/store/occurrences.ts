// Reads Container Analysis occurrences through Google's Grafeas client (lazily loaded), or a local stand-in.
import type { Logger } from '../../logging/logger.js';

export interface OccurrenceReader {
  getOccurrence(name: string): Promise<unknown>;
  /** Every VULNERABILITY occurrence of one image, across all pages. */
  listVulnerabilities(project: string, resourceUri: string): Promise<unknown[]>;
  /** The image's BUILD occurrences (Cloud Build provenance), across all pages. */
  listBuilds(project: string, resourceUri: string): Promise<unknown[]>;
}

export interface GrafeasClientOptions {
  /** e.g. http://127.0.0.1:8290 for a local stand-in; unset = the real API with default credentials. */
  endpoint?: string | undefined;
  /** A fixed access token for local endpoints (the stand-in only checks that one is sent). */
  token?: string;
  pageSize?: number;
  logger?: Logger;
}

/**
 * Client options for a local endpoint: REST fallback over http with a fixed token. The Container
 * Analysis client runs on google-gax 4, which spreads `getRequestHeaders()` into a plain object; a
 * google-auth-library 10 client returns `Headers` there (spreading to nothing), so a minimal auth
 * object returning a plain record stands in.
 */
export function localClientOptions(
  endpoint: string,
  token = 'local-token',
): Record<string, unknown> {
  const url = new URL(endpoint);
  return {
    fallback: true,
    apiEndpoint: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    protocol: url.protocol.replace(':', ''),
    auth: { getRequestHeaders: async () => ({ Authorization: `Bearer ${token}` }) },
  };
}

export function grafeasOccurrenceReader(options: GrafeasClientOptions = {}): OccurrenceReader {
  type Grafeas = {
    getOccurrence(req: { name: string }): Promise<[unknown, ...unknown[]]>;
    listOccurrences(
      req: { parent: string; filter: string; pageSize: number; pageToken?: string },
      opts: { autoPaginate: false },
    ): Promise<[unknown[], { pageToken?: string } | null, ...unknown[]]>;
  };
  let client: Promise<Grafeas> | undefined;
  const grafeas = () => {
    client ??= (async () => {
      const { ContainerAnalysisClient } = await import('@google-cloud/containeranalysis');
      const opts = options.endpoint
        ? await localClientOptions(options.endpoint, options.token)
        : {};
      return new ContainerAnalysisClient(
        opts as ConstructorParameters<typeof ContainerAnalysisClient>[0],
      ).getGrafeasClient() as unknown as Grafeas;
    })();
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
  const listAll = async (project: string, resourceUri: string, kind: 'VULNERABILITY' | 'BUILD') => {
    const g = await grafeas();
    const out: unknown[] = [];
    let pageToken: string | undefined;
    const filter = `resourceUrl="${resourceUri.replaceAll('"', '')}" AND kind="${kind}"`;
    // Pages are walked explicitly so a huge image never needs more than one page in flight.
    for (let page = 0; page < 10_000; page += 1) {
      const [items, next] = await g.listOccurrences(
        {
          parent: `projects/${project}`,
          filter,
          pageSize: options.pageSize ?? 1000,
          ...(pageToken ? { pageToken } : {}),
        },
        { autoPaginate: false },
      );
      out.push(...items);
      pageToken = next?.pageToken || undefined;
      if (!pageToken) break;
    }
    return out;
  };
  return {
    async getOccurrence(name) {
      const [occ] = await (await grafeas()).getOccurrence({ name });
      return occ;
    },
    listVulnerabilities: (project, resourceUri) => listAll(project, resourceUri, 'VULNERABILITY'),
    listBuilds: (project, resourceUri) => listAll(project, resourceUri, 'BUILD'),
  };
}
