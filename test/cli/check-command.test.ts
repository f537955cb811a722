// `clearance check` in-process with its I/O injected: credentials, output and exit codes against a local HTTP server.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckIo, formatAnswer, run } from '../../cli/commands/check.js';

const ANSWER = {
  image: 'us-docker.pkg.dev/p/r/app:1.0',
  digest: `sha256:${'a'.repeat(64)}`,
  environment: 'prod',
  decision: 'allow',
  verdict: 'allow',
  mode: 'enforce',
  reasons: [
    { ruleId: 'image.age', level: 'warn', message: 'image is 80 days old', remediation: 'rebuild' },
  ],
  attestation: {
    format: 'binauthz',
    keyId: 'k1',
    occurrence: 'projects/p/occurrences/o1',
    createdAt: 'c',
  },
  decidedAt: '2026-11-29T09:00:00.000Z',
  policyHash: `sha256:${'c'.repeat(64)}`,
};

describe('clearance check (in-process)', () => {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  let url = '';
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ANSWER));
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const io = (over: Partial<CheckIo> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: {
        out: (s: string) => out.push(s),
        err: (s: string) => err.push(s),
        env: {},
        now: () => new Date(),
        errIsTTY: false,
        outIsTTY: false,
        fetch: globalThis.fetch,
        idToken: async () => 'minted-id-token',
        ...over,
      } satisfies CheckIo,
    };
  };

  it('--id-token sends an ID token minted for the service URL', async () => {
    const audiences: string[] = [];
    const t = io({
      idToken: async (aud) => {
        audiences.push(aud);
        return 'minted-id-token';
      },
    });
    expect(await run([ANSWER.image, '--url', `${url}/`, '--id-token', '--env', 'prod'], t.io)).toBe(
      0,
    );
    expect(audiences).toEqual([url]);
    const last = seen.at(-1);
    expect(last?.headers.authorization).toBe('Bearer minted-id-token');
    expect(last?.url).toBe(`/v1/check?image=${encodeURIComponent(ANSWER.image)}&env=prod`);
  });

  it('exits 2 when no ID token can be had, naming why', async () => {
    const t = io({
      idToken: async () => {
        throw new Error('Could not load the default credentials');
      },
    });
    expect(await run([ANSWER.image, '--url', url, '--id-token'], t.io)).toBe(2);
    expect(t.err.join('')).toContain('Could not load the default credentials');
  });

  it('exits 2 for unknown flags and for a bad timeout', async () => {
    expect(await run([ANSWER.image, '--nope'], io().io)).toBe(2);
    expect(await run([ANSWER.image, '--url', url, '--token', 't', '--timeout', '0'], io().io)).toBe(
      2,
    );
  });

  it('prints warnings with their fix and the attestation', () => {
    const text = formatAnswer(ANSWER as Parameters<typeof formatAnswer>[0]);
    expect(text).toContain('ALLOW  us-docker.pkg.dev/p/r/app:1.0');
    expect(text).toContain('! image.age: image is 80 days old');
    expect(text).toContain('fix: rebuild');
    expect(text).toContain('attestation: binauthz projects/p/occurrences/o1 (k1)');
  });
});
