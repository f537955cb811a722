// An HTTP proxy in front of a function server that answers 5xx at random: before forwarding (the function never saw it) or after (the work is done, the acknowledgement is lost).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultProxy {
  url: string;
  /** Probability (0–1) that a request is answered 5xx; change it between phases. */
  rate: number;
  /** 5xx answered without forwarding, and after forwarding (the function's answer replaced). */
  readonly injected: { before: number; after: number };
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `random` is the caller's seeded generator, so a run's faults are reproducible from its seed. */
export async function startFaultProxy(
  target: string,
  random: () => number,
  rate = 0,
): Promise<FaultProxy> {
  const injected = { before: 0, after: 0 };
  const state = { rate };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const payload = await body(req);
      const roll = random();
      if (roll < state.rate / 2) {
        injected.before += 1;
        res.writeHead(503, { 'content-type': 'text/plain' }).end('injected fault (not forwarded)');
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection')
          headers[k] = v;
      }
      const answer = await fetch(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'POST',
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : new Uint8Array(payload),
      });
      const text = Buffer.from(await answer.arrayBuffer());
      if (roll < state.rate) {
        injected.after += 1;
        res.writeHead(502, { 'content-type': 'text/plain' }).end('injected fault (forwarded)');
        return;
      }
      const out: Record<string, string> = {};
      const type = answer.headers.get('content-type');
      if (type) out['content-type'] = type;
      res.writeHead(answer.status, out).end(text);
    })().catch((err) => {
      if (!res.headersSent) res.writeHead(502).end(`proxy: ${String(err)}`);
      else res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get rate() {
      return state.rate;
    },
    set rate(v: number) {
      state.rate = v;
    },
    injected,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
