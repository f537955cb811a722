// A local stand-in for Google Chat and Slack incoming webhooks: keeps every message it receives.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatMessage {
  kind: 'google-chat' | 'slack';
  path: string;
  body: unknown;
  receivedAt: string;
}

export interface ChatSink {
  url: string;
  /** Webhook URLs in each product's shape; their query/path parts stand in for the secret. */
  googleChatUrl: string;
  slackUrl: string;
  messages: ChatMessage[];
  close(): Promise<void>;
}

export async function startChatSink(
  options: { port?: number; logFile?: string; onMessage?: (m: ChatMessage) => void } = {},
): Promise<ChatSink> {
  const messages: ChatMessage[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end('bad json');
        return;
      }
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const m: ChatMessage = {
        kind: path.startsWith('/services/') ? 'slack' : 'google-chat',
        path,
        body,
        receivedAt: new Date().toISOString(),
      };
      messages.push(m);
      if (options.logFile) appendFileSync(options.logFile, `${JSON.stringify(m)}\n`);
      options.onMessage?.(m);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(m.kind === 'slack' ? '"ok"' : '{"name":"spaces/local/messages/1"}');
    });
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    googleChatUrl: `${url}/v1/spaces/LOCAL/messages?key=local-key&token=local-token`,
    slackUrl: `${url}/services/T0LOCAL/B0LOCAL/localsecret`,
    messages,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
