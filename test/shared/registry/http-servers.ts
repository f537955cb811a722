// Real HTTP servers on 127.0.0.1 for registry tests: stand-ins for token services and a proxy that can tamper with answers.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface TestServer {
  readonly port: number;
  /** `127.0.0.1:PORT` */
  readonly host: string;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
) => void | Promise<void>;

export async function startServer(handler: Handler, port = 0): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      Promise.resolve(handler(req, res, Buffer.concat(chunks))).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port: actual,
    host: `127.0.0.1:${actual}`,
    url: `http://127.0.0.1:${actual}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Upstream {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Forwards every request to `target` (the real registry) and lets `tamper` change the answer
 * before it goes back; `gate` may answer instead (e.g. an auth challenge).
 */
export function startProxy(
  target: string,
  opts: {
    tamper?: (req: IncomingMessage, upstream: Upstream) => Upstream;
    gate?: (req: IncomingMessage, res: ServerResponse) => boolean;
  } = {},
): Promise<TestServer> {
  return startServer(async (req, res) => {
    if (opts.gate?.(req, res)) return;
    const headers: Record<string, string> = {};
    if (req.headers.accept) headers.accept = String(req.headers.accept);
    const up = await fetch(`${target}${req.url}`, { method: req.method, headers });
    let answer: Upstream = {
      status: up.status,
      headers: Object.fromEntries(
        [...up.headers].filter(
          // A HEAD answer keeps its length; a GET body may be rewritten, so Node recounts it.
          ([k]) =>
            !['transfer-encoding', 'connection'].includes(k) &&
            (k !== 'content-length' || req.method === 'HEAD'),
        ),
      ),
      body: Buffer.from(await up.arrayBuffer()),
    };
    if (opts.tamper) answer = opts.tamper(req, answer);
    res.writeHead(answer.status, answer.headers);
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  });
}

/** Collects distribution notification envelopes posted to it. */
export async function startNotificationSink(port = 0): Promise<
  TestServer & {
    events: NotificationEvent[];
    envelopes: { headers: IncomingMessage['headers']; events: NotificationEvent[] }[];
    waitFor(
      pred: (e: NotificationEvent) => boolean,
      timeoutMs?: number,
    ): Promise<NotificationEvent>;
  }
> {
  const events: NotificationEvent[] = [];
  const envelopes: { headers: IncomingMessage['headers']; events: NotificationEvent[] }[] = [];
  const waiters: {
    pred: (e: NotificationEvent) => boolean;
    resolve: (e: NotificationEvent) => void;
  }[] = [];
  const server = await startServer((req, res, body) => {
    const parsed = JSON.parse(body.toString('utf8')) as { events: NotificationEvent[] };
    envelopes.push({ headers: req.headers, events: parsed.events });
    for (const e of parsed.events) {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
    res.end('ok');
  }, port);
  return {
    ...server,
    events,
    envelopes,
    waitFor(pred, timeoutMs = 30_000) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(
            new Error(
              `no matching notification within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => [e.action, e.target.repository, e.target.tag, e.target.mediaType]))}`,
            ),
          );
        }, timeoutMs);
        const entry = {
          pred,
          resolve: (e: NotificationEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        waiters.push(entry);
      });
    },
  };
}

export interface NotificationEvent {
  id: string;
  action: string;
  target: {
    mediaType: string;
    digest: string;
    repository: string;
    tag?: string;
    size?: number;
    references?: { mediaType: string; digest: string }[];
  };
  request?: { method: string; useragent?: string };
}
