// A local HTTP server answering Secret Manager's REST `versions/*:access`, for tests through the real client.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32c } from '@aws-crypto/crc32c';

export interface SecretManagerServer {
  port: number;
  /** Requests seen: method, path and the Authorization header. */
  requests: { method: string; path: string; authorization: string | undefined }[];
  secrets: Map<string, string>;
  /** Names whose next answers carry a wrong CRC32C. */
  corrupt: Set<string>;
  close(): Promise<void>;
}

export async function startSecretManagerServer(
  secrets: Record<string, string>,
): Promise<SecretManagerServer> {
  const state = {
    requests: [] as SecretManagerServer['requests'],
    secrets: new Map(Object.entries(secrets)),
    corrupt: new Set<string>(),
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    state.requests.push({
      method: req.method ?? '',
      path,
      authorization: req.headers.authorization,
    });
    req.resume();
    const m = path.match(/^\/v1\/(projects\/[^/]+\/secrets\/[^/]+\/versions\/[^/:]+):access$/);
    const value = m ? state.secrets.get(m[1]) : undefined;
    res.setHeader('content-type', 'application/json');
    if (req.method !== 'GET' || !m || value === undefined) {
      res.statusCode = 404;
      res.end(
        JSON.stringify({
          error: {
            code: 404,
            message: `Secret [${m?.[1] ?? path}] not found`,
            status: 'NOT_FOUND',
          },
        }),
      );
      return;
    }
    const data = Buffer.from(value, 'utf8');
    const crc = crc32c(data) + (state.corrupt.has(m[1]) ? 1 : 0);
    res.end(
      JSON.stringify({
        name: m[1].replace(/versions\/latest$/, 'versions/3'),
        payload: { data: data.toString('base64'), dataCrc32c: String(crc) },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    ...state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
