// Bodies before authentication: functions-framework's own CLI serving the compiled functions, each in a child process whose RSS is read from /proc.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/lib/process.js';
import { eventually } from '../../support/function-server.js';

const run = promisify(execFile);
const TOKEN = 'gate-test-bearer-token-0123456789abcdef';
const MIB = 1024 * 1024;
/** Quoted by a JSON parser's error message if the body ever reached one. */
const MARKER = 'RAW-BODY-MARKER-7f3a';

interface Served {
  port: number;
  child: ChildProcess;
  output: string[];
  rssMiB(): number;
  stop(): Promise<void>;
}

/** `functions-framework --target=NAME` over dist/, as Cloud Run functions start it. */
async function serve(target: string, env: Record<string, string> = {}): Promise<Served> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(
    process.execPath,
    [
      'node_modules/@google-cloud/functions-framework/build/src/main.js',
      `--target=${target}`,
      '--source=dist/index.js',
      `--port=${port}`,
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        FUNCTION_TARGET: target,
        NODE_ENV: 'production',
        GOOGLE_CLOUD_PROJECT: 'demo-gate',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let pending = '';
  const collect = (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    output.push(...lines.filter((l) => l.length > 0));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  await eventually(
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return res ? true : undefined;
    },
    60_000,
    `${target} to listen`,
  );
  return {
    port,
    child,
    output,
    rssMiB: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
      return kb / 1024;
    },
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Sends a request over a raw socket: the body goes out 1 MiB at a time and stops as soon as the
 * server answers, as a client whose upload is refused would. Resolves to the status and body.
 */
function post(
  port: number,
  path: string,
  headers: Record<string, string>,
  body: { size: number; chunked?: boolean } | Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = Buffer.alloc(0);
    let answered = false;
    // Complete once the headers and Content-Length bytes of body are in; the upload stops there.
    const complete = () => {
      const text = answer.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return false;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, split))?.[1] ?? 0);
      if (answer.length - split - 4 < length) return false;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      resolve({ status, body: answer.subarray(split + 4, split + 4 + length).toString('utf8') });
      socket.destroy();
      return true;
    };
    socket.on('data', (d: Buffer) => {
      answered = true;
      answer = Buffer.concat([answer, d]);
      complete();
    });
    socket.on('error', (err) => reject(err));
    socket.on('close', () => {
      if (!complete())
        reject(
          new Error(`closed before a full answer: ${answer.toString('latin1').slice(0, 200)}`),
        );
    });
    const size = Buffer.isBuffer(body) ? body.length : body.size;
    const chunked = !Buffer.isBuffer(body) && body.chunked === true;
    const head = [
      `POST ${path} HTTP/1.1`,
      'host: 127.0.0.1',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      chunked ? 'transfer-encoding: chunked' : `content-length: ${size}`,
      '',
      '',
    ].join('\r\n');
    socket.write(head);
    if (Buffer.isBuffer(body)) {
      socket.write(body);
      return;
    }
    const piece = Buffer.alloc(MIB, 'a');
    let sent = 0;
    const pump = () => {
      while (!answered && !socket.destroyed && sent < size) {
        const n = Math.min(MIB, size - sent);
        sent += n;
        const data = chunked
          ? Buffer.concat([
              Buffer.from(`${n.toString(16)}\r\n`),
              piece.subarray(0, n),
              Buffer.from('\r\n'),
            ])
          : piece.subarray(0, n);
        if (!socket.write(data)) return void socket.once('drain', pump);
      }
      if (chunked && sent >= size && !answered && !socket.destroyed) socket.write('0\r\n\r\n');
    };
    pump();
  });
}

function errorCode(body: string): unknown {
  return (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
}

describe('functions-framework body gate (real server, child process)', () => {
  beforeAll(async () => {
    // Tested as deployed: the compiled entry point under functions-framework's own CLI.
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { maxBuffer: 10 * 1024 * 1024 });
  }, 180_000);

  describe('checkImage (HTTP, authenticated)', () => {
    let fn: Served;
    beforeAll(async () => {
      fn = await serve('checkImage', { CLEARANCE_CHECK_BEARER_TOKEN: TOKEN });
    }, 90_000);
    afterAll(() => fn?.stop());

    it('refuses unauthenticated 29 MiB bodies without reading them (RSS stays flat)', async () => {
      // Warm the process so the baseline includes the function's own modules.
      await fetch(`http://127.0.0.1:${fn.port}/healthz`);
      const before = fn.rssMiB();
      const declared = await Promise.all(
        Array.from({ length: 8 }, () =>
          post(fn.port, '/admission', { 'content-type': 'application/json' }, { size: 29 * MIB }),
        ),
      );
      const chunked = await Promise.all(
        Array.from({ length: 8 }, () =>
          post(
            fn.port,
            '/admission',
            { 'content-type': 'application/json' },
            { size: 29 * MIB, chunked: true },
          ),
        ),
      );
      const after = fn.rssMiB();
      // 16 × 29 MiB read into memory would add hundreds of MiB (the issue measured 69 → 1,101 MiB).
      expect(after - before, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`).toBeLessThan(64);
      // A declared length over the cap is refused on the headers; an undeclared one on the missing credential.
      expect(declared.map((r) => r.status)).toEqual(Array(8).fill(413));
      expect(declared.map((r) => errorCode(r.body))).toEqual(Array(8).fill('payload-too-large'));
      expect(chunked.map((r) => r.status)).toEqual(Array(8).fill(401));
      expect(chunked.map((r) => errorCode(r.body))).toEqual(Array(8).fill('unauthenticated'));
    });

    it('caps an authenticated body that declares no length while it streams', async () => {
      const r = await post(
        fn.port,
        '/admission',
        { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        { size: 29 * MIB, chunked: true },
      );
      expect(r.status).toBe(413);
      expect(errorCode(r.body)).toBe('payload-too-large');
    });

    it('authenticates before parsing: an unauthenticated malformed body is 401, not a parse error', async () => {
      const r = await post(
        fn.port,
        '/admission',
        { 'content-type': 'application/json' },
        Buffer.from(`{"x": ${MARKER}`),
      );
      expect(r.status).toBe(401);
      expect(errorCode(r.body)).toBe('unauthenticated');
    });

    it('answers a malformed JSON body with its own code, and nothing raw reaches the logs', async () => {
      const r = await post(
        fn.port,
        '/admission',
        { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        Buffer.from(`{"x": ${MARKER}`),
      );
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toEqual({
        error: {
          code: 'invalid-input',
          message: 'request body is not valid JSON',
          requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        },
      });
      expect(r.body).not.toContain(MARKER);
      await eventually(async () =>
        fn.output.some((l) => l.includes('request refused before the function ran'))
          ? true
          : undefined,
      );
      expect(fn.output.join('\n')).not.toContain(MARKER);
    });

    it('writes every output line as one JSON object', () => {
      expect(fn.output.length).toBeGreaterThan(0);
      for (const line of fn.output) expect(() => JSON.parse(line), line).not.toThrow();
    });
  });

  describe("ingestWebhook (HTTP, the registry's own credential)", () => {
    let fn: Served;
    beforeAll(async () => {
      fn = await serve('ingestWebhook', {
        CLEARANCE_WEBHOOK_DISTRIBUTION_TOKEN: TOKEN,
        CLEARANCE_WEBHOOK_DISTRIBUTION_HOSTS: 'registry.example',
        CLEARANCE_WEBHOOK_GITHUB_SECRET: 'gate-test-github-secret-0123456789abcdef',
        CLEARANCE_WEBHOOK_GITHUB_HOSTS: 'ghcr.io',
      });
    }, 90_000);
    afterAll(() => fn?.stop());

    it('refuses undeclared-length bodies on the headers: wrong token, no GitHub signature, unknown kind', async () => {
      const before = fn.rssMiB();
      const big = { size: 29 * MIB, chunked: true };
      const rs = await Promise.all([
        post(fn.port, '/distribution', { authorization: 'Bearer wrong-token-0123456789' }, big),
        post(
          fn.port,
          '/github',
          { 'content-type': 'application/json', 'x-github-event': 'package' },
          big,
        ),
        post(fn.port, '/nowhere', { 'content-type': 'application/json' }, big),
        post(fn.port, '/distribution', {}, big),
      ]);
      const after = fn.rssMiB();
      expect(after - before, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`).toBeLessThan(64);
      expect(rs.map((r) => r.status)).toEqual([401, 401, 401, 401]);
      expect(rs.map((r) => errorCode(r.body))).toEqual(Array(4).fill('unauthenticated'));
    });
  });

  describe('onRegistryPush (Pub/Sub push, CloudEvent)', () => {
    let fn: Served;
    beforeAll(async () => {
      fn = await serve('onRegistryPush', {
        // Nothing listens here: the handler fails transiently and functions-framework reports it.
        FIRESTORE_EMULATOR_HOST: '127.0.0.1:9',
        CLEARANCE_HANDLER_DEADLINE_MS: '1000',
      });
    }, 90_000);
    afterAll(() => fn?.stop());

    it('refuses an oversized push envelope before parsing it', async () => {
      const before = fn.rssMiB();
      const rs = await Promise.all(
        Array.from({ length: 8 }, () =>
          post(fn.port, '/', { 'content-type': 'application/json' }, { size: 29 * MIB }),
        ),
      );
      const after = fn.rssMiB();
      expect(after - before, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`).toBeLessThan(64);
      expect(rs.map((r) => r.status)).toEqual(Array(8).fill(413));
    });

    it("answers a readiness probe (GET) itself: JSON, never the framework's TypeError", async () => {
      const get = await fetch(`http://127.0.0.1:${fn.port}/`);
      expect(get.status).toBe(200);
      expect(await get.json()).toEqual({ ok: true, function: 'onRegistryPush' });
      const del = await fetch(`http://127.0.0.1:${fn.port}/`, { method: 'DELETE' });
      expect(del.status).toBe(405);
      expect(((await del.json()) as { error: { code: string } }).error.code).toBe(
        'method-not-allowed',
      );
      expect(fn.output.join('\n')).not.toContain("Cannot use 'in' operator");
    });

    it("reports a transient failure (the framework's own crash report included) as one-line JSON", async () => {
      const envelope = {
        message: {
          data: Buffer.from(
            JSON.stringify({ action: 'INSERT', digest: `gcr.io/p/app@sha256:${'a'.repeat(64)}` }),
          ).toString('base64'),
          messageId: 'gate-1',
          publishTime: '2026-11-29T10:00:00Z',
        },
        subscription: 'projects/demo-gate/subscriptions/gcr-push',
      };
      const r = await post(
        fn.port,
        '/',
        { 'content-type': 'application/json' },
        Buffer.from(JSON.stringify(envelope)),
      );
      expect(r.status).toBe(500);
      await eventually(async () =>
        fn.output.some((l) => l.includes('will be redelivered')) ? true : undefined,
      );
      // functions-framework's own report of the failed delivery (console.error(err.stack)).
      await eventually(async () =>
        fn.output.some((l) => l.includes('"source":"console"') && l.includes('TransientError'))
          ? true
          : undefined,
      );
      for (const line of fn.output) expect(() => JSON.parse(line), line).not.toThrow();
    });
  });
});
