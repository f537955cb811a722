// A local node:http server playing Google Chat and Slack incoming webhooks, with scripted answers per path.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedMessage {
  /** Path without the query (the part that identifies the space). */
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown>;
  /** The injected clock's time when the request arrived. */
  at: number;
}

export type ScriptedAnswer =
  | { status: number; headers?: Record<string, string>; body?: string }
  | { hang: true };

export interface WebhookServer {
  port: number;
  /** Messages the fake accepted (answered 2xx). */
  accepted: ReceivedMessage[];
  /** Every request, whatever it was answered. */
  requests: ReceivedMessage[];
  /** Answers to give, in order, to the next requests on a path; then 200. */
  script(path: string, answers: ScriptedAnswer[]): void;
  chatUrl(space: string): { url: string; key: string; token: string };
  slackUrl(team: string, bot: string): { url: string; secret: string };
  acceptedOn(path: string): ReceivedMessage[];
  close(): Promise<void>;
}

export async function startWebhookServer(now: () => number): Promise<WebhookServer> {
  const accepted: ReceivedMessage[] = [];
  const requests: ReceivedMessage[] = [];
  const scripts = new Map<string, ScriptedAnswer[]>();
  let port = 0;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.statusCode = 400;
      res.end('invalid_payload');
      return;
    }
    const msg: ReceivedMessage = {
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      body,
      at: now(),
    };
    requests.push(msg);
    const answer = scripts.get(u.pathname)?.shift() ?? { status: 200 };
    if ('hang' in answer) return; // never answers: the client's timeout must end it
    for (const [k, v] of Object.entries(answer.headers ?? {})) res.setHeader(k, v);
    res.statusCode = answer.status;
    if (answer.status >= 200 && answer.status < 300) {
      accepted.push(msg);
      const chat = u.pathname.startsWith('/v1/spaces/');
      res.setHeader('content-type', chat ? 'application/json' : 'text/plain');
      res.end(
        answer.body ??
          (chat ? JSON.stringify({ name: `${u.pathname.slice(4)}/${accepted.length}` }) : 'ok'),
      );
      return;
    }
    res.end(answer.body ?? '');
  };
  const server: Server = createServer((req, res) => {
    handler(req, res).catch(() => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;

  return {
    port,
    accepted,
    requests,
    script(path, answers) {
      scripts.set(path, [...(scripts.get(path) ?? []), ...answers]);
    },
    chatUrl(space) {
      const key = `chatkey${randomBytes(8).toString('hex')}`;
      const token = `chattoken${randomBytes(8).toString('hex')}`;
      return {
        url: `http://127.0.0.1:${port}/v1/spaces/${space}/messages?key=${key}&token=${token}`,
        key,
        token,
      };
    },
    slackUrl(team, bot) {
      const secret = `slacksecret${randomBytes(8).toString('hex')}`;
      return { url: `http://127.0.0.1:${port}/services/${team}/${bot}/${secret}`, secret };
    },
    acceptedOn(path) {
      return accepted.filter((m) => m.path === path || m.path.startsWith(path));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
