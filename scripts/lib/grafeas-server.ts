// A local stand-in for the Container Analysis (Grafeas v1) REST API: occurrences in memory, served the way the real API pages them.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GrafeasServer {
  url: string;
  host: string;
  port: number;
  /** Occurrences by full name (projects/P/occurrences/ID). */
  occurrences: Map<string, Record<string, unknown>>;
  /** Every request seen, for assertions (method, path, authorization header). */
  requests: { method: string; path: string; authorization: string | undefined }[];
  put(occurrence: Record<string, unknown>): string;
  close(): Promise<void>;
}

/** Evaluates the small filter subset Clearance sends: `a="x" AND b="y"` over top-level fields. */
function matches(o: Record<string, unknown>, filter: string | null): boolean {
  if (!filter) return true;
  for (const clause of filter.split(/\s+AND\s+/i)) {
    const m = clause.trim().match(/^(\w+)\s*=\s*"([^"]*)"$/);
    if (!m) continue;
    const [, field, want] = m;
    const key = field === 'resourceUrl' ? 'resourceUri' : (field as string);
    if (String(o[key] ?? '') !== want) return false;
  }
  return true;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startGrafeasServer(
  options: { port?: number; defaultPageSize?: number } = {},
): Promise<GrafeasServer> {
  const occurrences = new Map<string, Record<string, unknown>>();
  const requests: GrafeasServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        authorization: req.headers.authorization,
      });
      const one = url.pathname.match(/^\/v1\/(projects\/[^/]+\/occurrences\/[^/:]+)$/);
      const list = url.pathname.match(/^\/v1\/(projects\/[^/]+)\/occurrences$/);
      if (one && req.method === 'GET') {
        const o = occurrences.get(decodeURIComponent(one[1] as string));
        return o
          ? send(res, 200, o)
          : send(res, 404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
      }
      if (one && req.method === 'DELETE') {
        const existed = occurrences.delete(decodeURIComponent(one[1] as string));
        return existed
          ? send(res, 200, {})
          : send(res, 404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
      }
      if (list && req.method === 'GET') {
        const filter = url.searchParams.get('filter');
        const size = Number(url.searchParams.get('pageSize') || options.defaultPageSize || 100);
        const start = Number(url.searchParams.get('pageToken') || 0);
        const all = [...occurrences.values()].filter(
          (o) => String(o.name).startsWith(`${list[1]}/`) && matches(o, filter),
        );
        const page = all.slice(start, start + size);
        const next = start + size < all.length ? String(start + size) : '';
        return send(res, 200, { occurrences: page, nextPageToken: next });
      }
      if (list && req.method === 'POST') {
        const body = JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>;
        const name = `${list[1]}/occurrences/${randomUUID()}`;
        const o = { ...body, name, createTime: new Date().toISOString() };
        occurrences.set(name, o);
        return send(res, 200, o);
      }
      return send(res, 404, {
        error: {
          code: 404,
          message: `no route ${req.method} ${url.pathname}`,
          status: 'NOT_FOUND',
        },
      });
    })().catch((err) => send(res, 500, { error: { code: 500, message: String(err) } }));
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    occurrences,
    requests,
    put: (o) => {
      const name = String(o.name);
      occurrences.set(name, o);
      return name;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
