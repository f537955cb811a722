// Registry auth against real local servers: the anonymous bearer challenge and Google's oauth2accesstoken flows, in front of the real docker-registry.
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../../scripts/lib/local-registry.js';
import { skopeoCopy, type WrittenImage, writeOciImage } from '../../../scripts/lib/oci-image.js';
import { fixedClock } from '../../../shared/clock.js';
import { ClearanceError } from '../../../shared/errors.js';
import { createRegistryClient } from '../../../shared/registry/client.js';
import { anonymousTokenSource, googleTokenSource } from '../../../shared/registry/tokens.js';
import { startProxy, startServer, type TestServer } from './http-servers.js';

const ACCESS_TOKEN = 'ya29.fake-access-token-for-tests';
const GOOGLE_BASIC = `Basic ${Buffer.from(`oauth2accesstoken:${ACCESS_TOKEN}`).toString('base64')}`;

async function failure(p: Promise<unknown>): Promise<ClearanceError<string>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ClearanceError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A token service like Docker Hub's: issues tokens per scope, optionally only to a Basic credential. */
async function startTokenService(
  opts: { requireBasic?: string; status?: number; lifetime?: number } = {},
) {
  const issued = new Map<string, string>();
  const requests: {
    service: string | null;
    scope: string | null;
    authorization: string | undefined;
  }[] = [];
  let n = 0;
  const server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({
      service: url.searchParams.get('service'),
      scope: url.searchParams.get('scope'),
      authorization: req.headers.authorization,
    });
    if (opts.status) return void res.writeHead(opts.status).end('{"errors":[]}');
    if (opts.requireBasic && req.headers.authorization !== opts.requireBasic) {
      return void res.writeHead(401).end('{"details":"bad credentials"}');
    }
    const token = `t-${++n}`;
    issued.set(token, url.searchParams.get('scope') ?? '');
    // Docker Hub answers both names; some registries only one.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: opts.lifetime ?? 300 }));
  });
  return { server, issued, requests };
}

type TokenService = Awaited<ReturnType<typeof startTokenService>>;

describe('registry auth', () => {
  let registry: LocalRegistry;
  let layout: string;
  let app: WrittenImage;
  let other: WrittenImage;
  const servers: TestServer[] = [];

  beforeAll(async () => {
    registry = await startLocalRegistry({
      port: 'free',
      group: `test-${process.pid}`,
      ephemeral: true,
    });
    layout = mkdtempSync(join(tmpdir(), 'clearance-oci-'));
    app = writeOciImage(layout, { ref: 'app', config: { user: 'app' } });
    other = writeOciImage(layout, { ref: 'other', files: { 'o.txt': 'other\n' } });
    await skopeoCopy(layout, `${registry.host}/team/app:v1`, { ref: 'app' });
    await skopeoCopy(layout, `${registry.host}/team/other:v1`, { ref: 'other' });
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await registry?.stop();
    if (layout) rmSync(layout, { recursive: true, force: true });
  });

  async function tokenService(
    opts?: Parameters<typeof startTokenService>[0],
  ): Promise<TokenService> {
    const t = await startTokenService(opts);
    servers.push(t.server);
    return t;
  }

  /** The real registry behind a gate that demands a bearer token issued for the path's repository. */
  async function bearerGate(
    tokens: TokenService,
    opts: { denyAll?: boolean; revoked?: Set<string> } = {},
  ) {
    const challenges: string[] = [];
    const gate = await startProxy(registry.url, {
      gate: (req: IncomingMessage, res: ServerResponse) => {
        const repo = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(req.url ?? '')?.[1] ?? '';
        const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
        const scope = `repository:${repo}:pull`;
        const valid = tokens.issued.get(token) === scope && !opts.revoked?.has(token);
        if (valid && !opts.denyAll) return false;
        challenges.push(req.headers.authorization ?? '(none)');
        if (valid) {
          res.writeHead(403).end('{"errors":[{"code":"DENIED"}]}');
          return true;
        }
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${tokens.server.url}/token",service="test-registry",scope="${scope}"`,
        });
        res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return true;
      },
    });
    servers.push(gate);
    return { gate, challenges };
  }

  it('follows the anonymous bearer challenge and caches the token per scope until it expires', async () => {
    const tokens = await tokenService({ lifetime: 300 });
    const { gate, challenges } = await bearerGate(tokens);
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const client = createRegistryClient({ tokens: anonymousTokenSource({ clock }) });

    const d = await client.describeImage(gate.host, 'team/app', app.manifestDigest);
    expect(d.config?.user).toBe('app');
    expect(tokens.requests).toEqual([
      { service: 'test-registry', scope: 'repository:team/app:pull', authorization: undefined },
    ]);
    // Manifest and config each went through with the token; only the very first request was challenged.
    expect(challenges).toEqual(['(none)']);

    await client.resolveTag(gate.host, 'team/app', 'v1');
    expect(tokens.requests).toHaveLength(1);

    // Another repository on the same registry: a token for its own scope, asked for up front.
    expect((await client.resolveTag(gate.host, 'team/other', 'v1')).digest).toBe(
      other.manifestDigest,
    );
    expect(tokens.requests.map((r) => r.scope)).toEqual([
      'repository:team/app:pull',
      'repository:team/other:pull',
    ]);
    expect(challenges).toEqual(['(none)']);

    clock.advance(300_000);
    await client.resolveTag(gate.host, 'team/app', 'v1');
    expect(tokens.requests).toHaveLength(3);
    expect(challenges).toEqual(['(none)']);
  });

  it('fetches a new token when the registry refuses a cached one', async () => {
    const tokens = await tokenService();
    const revoked = new Set<string>();
    const { gate, challenges } = await bearerGate(tokens, { revoked });
    const client = createRegistryClient({ tokens: anonymousTokenSource() });
    await client.resolveTag(gate.host, 'team/app', 'v1');
    for (const t of tokens.issued.keys()) revoked.add(t);
    expect((await client.resolveTag(gate.host, 'team/app', 'v1')).digest).toBe(app.manifestDigest);
    expect(tokens.requests).toHaveLength(2);
    expect(challenges).toEqual(['(none)', 'Bearer t-1']);
  });

  it('is forbidden when the token service or the registry refuses', async () => {
    const refusing = await tokenService({ status: 403 });
    const { gate } = await bearerGate(refusing);
    const client = createRegistryClient({ tokens: anonymousTokenSource() });
    const e1 = await failure(client.resolveTag(gate.host, 'team/app', 'v1'));
    expect(e1.code).toBe('forbidden');
    expect(e1.retryable).toBe(false);

    const tokens = await tokenService();
    const { gate: denying } = await bearerGate(tokens, { denyAll: true });
    const e2 = await failure(client.getManifest(denying.host, 'team/app', 'v1'));
    expect(e2.code).toBe('forbidden');
    expect(tokens.requests).toHaveLength(1);
  });

  it('is unauthenticated when the registry wants Basic credentials and there are none', async () => {
    const gate = await startProxy(registry.url, {
      gate: (_req, res) => {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="private"' }).end();
        return true;
      },
    });
    servers.push(gate);
    const err = await failure(createRegistryClient().resolveTag(gate.host, 'team/app', 'v1'));
    expect(err.code).toBe('unauthenticated');
  });

  describe('Google registries (oauth2accesstoken)', () => {
    function counter() {
      let calls = 0;
      return {
        get calls() {
          return calls;
        },
        getAccessToken: async () => {
          calls++;
          return ACCESS_TOKEN;
        },
      };
    }

    it('trades the access token at the bearer realm with Basic oauth2accesstoken', async () => {
      const tokens = await tokenService({ requireBasic: GOOGLE_BASIC });
      const { gate } = await bearerGate(tokens);
      const access = counter();
      const client = createRegistryClient({
        tokens: googleTokenSource(access.getAccessToken, {
          isGoogleHost: (h) => h.startsWith('127.0.0.1:'),
        }),
      });
      const d = await client.describeImage(gate.host, 'team/app', app.manifestDigest);
      expect(d.digest).toBe(app.manifestDigest);
      expect(tokens.requests).toEqual([
        {
          service: 'test-registry',
          scope: 'repository:team/app:pull',
          authorization: GOOGLE_BASIC,
        },
      ]);
      expect(access.calls).toBe(1);
    });

    it('answers a Basic challenge with oauth2accesstoken directly', async () => {
      const seen: (string | undefined)[] = [];
      const gate = await startProxy(registry.url, {
        gate: (req, res) => {
          seen.push(req.headers.authorization);
          if (req.headers.authorization === GOOGLE_BASIC) return false;
          res.writeHead(401, { 'www-authenticate': 'Basic realm="Artifact Registry"' }).end();
          return true;
        },
      });
      servers.push(gate);
      const access = counter();
      const client = createRegistryClient({
        tokens: googleTokenSource(access.getAccessToken, { isGoogleHost: (h) => h === gate.host }),
      });
      expect((await client.resolveTag(gate.host, 'team/app', 'v1')).digest).toBe(
        app.manifestDigest,
      );
      expect(seen).toEqual([undefined, GOOGLE_BASIC]);
    });

    it('never sends the Google access token to a registry or realm that is not Google', async () => {
      const tokens = await tokenService({ requireBasic: GOOGLE_BASIC });
      const { gate } = await bearerGate(tokens);
      const access = counter();
      // Default host test: 127.0.0.1 is not gcr.io or *.pkg.dev, so the anonymous flow is used.
      const plain = createRegistryClient({ tokens: googleTokenSource(access.getAccessToken) });
      expect((await failure(plain.resolveTag(gate.host, 'team/app', 'v1'))).code).toBe('forbidden');
      expect(tokens.requests.map((r) => r.authorization)).toEqual([undefined]);

      // A "Google" registry whose challenge points at a realm on another host.
      const misdirected = createRegistryClient({
        tokens: googleTokenSource(access.getAccessToken, { isGoogleHost: (h) => h === gate.host }),
      });
      expect((await failure(misdirected.resolveTag(gate.host, 'team/app', 'v1'))).code).toBe(
        'forbidden',
      );
      expect(tokens.requests).toHaveLength(1);
      expect(access.calls).toBe(0);
    });

    it('treats a failing access-token getter as transient', async () => {
      const tokens = await tokenService({ requireBasic: GOOGLE_BASIC });
      const { gate } = await bearerGate(tokens);
      const client = createRegistryClient({
        tokens: googleTokenSource(
          async () => {
            throw new Error('metadata server unavailable');
          },
          { isGoogleHost: (h) => h.startsWith('127.0.0.1:') },
        ),
      });
      const err = await failure(client.resolveTag(gate.host, 'team/app', 'v1'));
      expect(err.retryable).toBe(true);
    });
  });
});
