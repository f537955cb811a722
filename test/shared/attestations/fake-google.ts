// Local HTTP stand-ins for Cloud KMS and Container Analysis (REST), driven through Google's own client libraries in fallback mode.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32c } from '@aws-crypto/crc32c';
import { signDigest } from './openssl.js';

export const FIXED_TOKEN = 'test-access-token-9f8e7d';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  body: unknown;
}

interface Reply {
  status: number;
  body: unknown;
}

type Handler = (req: RecordedRequest) => Promise<Reply> | Reply;

export interface FakeServer {
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

function googleError(status: number, code: string, message: string): Reply {
  return { status, body: { error: { code: status, message, status: code } } };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** Serves `handler` on 127.0.0.1; any request without `Authorization: Bearer FIXED_TOKEN` gets 401. */
async function serve(handler: Handler): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const recorded: RecordedRequest = {
        method: req.method ?? 'GET',
        path: decodeURIComponent(url.pathname),
        query: url.searchParams,
        authorization: req.headers.authorization,
        body: await readBody(req),
      };
      requests.push(recorded);
      let reply: Reply;
      if (recorded.authorization !== `Bearer ${FIXED_TOKEN}`) {
        reply = googleError(401, 'UNAUTHENTICATED', 'missing or wrong bearer token');
      } else {
        try {
          reply = await handler(recorded);
        } catch (err) {
          reply = googleError(500, 'INTERNAL', String(err));
        }
      }
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export interface FakeKms extends FakeServer {
  keyVersionName: string;
  publicKeyPem: string;
  /** Misbehaviours to switch on per test. */
  faults: { signatureCrc?: boolean; pemCrc?: boolean; skipDigestCheck?: boolean };
}

/**
 * Cloud KMS v1 REST: `POST /v1/{name}:asymmetricSign` and `GET /v1/{name}/publicKey` over a real
 * P-256 key, with the CRC32C fields KMS sends (int64 as JSON strings).
 */
export async function startFakeKms(keyVersionName: string): Promise<FakeKms> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  // The handler reads `fake.faults`, so tests may replace the object between calls.
  let fake: FakeKms | undefined;
  const server = await serve(async (req) => {
    const faults = fake?.faults ?? {};
    if (req.method === 'POST' && req.path === `/v1/${keyVersionName}:asymmetricSign`) {
      const body = req.body as { digest?: { sha256?: string }; digestCrc32c?: string };
      const digest = Buffer.from(body.digest?.sha256 ?? '', 'base64');
      if (digest.length !== 32) return googleError(400, 'INVALID_ARGUMENT', 'digest.sha256');
      const verified = !faults.skipDigestCheck && body.digestCrc32c === String(crc32c(digest));
      if (!faults.skipDigestCheck && body.digestCrc32c !== undefined && !verified) {
        return googleError(400, 'INVALID_ARGUMENT', 'digest_crc32c mismatch');
      }
      const signature = await signDigest(privatePem, digest);
      const crc = crc32c(signature) + (faults.signatureCrc ? 1 : 0);
      return {
        status: 200,
        body: {
          signature: signature.toString('base64'),
          signatureCrc32c: String(crc),
          verifiedDigestCrc32c: verified,
          name: keyVersionName,
          protectionLevel: 'HSM',
        },
      };
    }
    if (req.method === 'GET' && req.path === `/v1/${keyVersionName}/publicKey`) {
      const crc = crc32c(Buffer.from(publicKeyPem)) + (faults.pemCrc ? 1 : 0);
      return {
        status: 200,
        body: {
          pem: publicKeyPem,
          pemCrc32c: String(crc),
          algorithm: 'EC_SIGN_P256_SHA256',
          name: keyVersionName,
          protectionLevel: 'HSM',
        },
      };
    }
    return googleError(404, 'NOT_FOUND', `no route ${req.method} ${req.path}`);
  });
  fake = { ...server, keyVersionName, publicKeyPem, faults: {} };
  return fake;
}

export interface StoredOccurrence {
  name: string;
  resourceUri: string;
  noteName: string;
  kind: string;
  attestation: {
    serializedPayload: string;
    signatures: { signature: string; publicKeyId: string }[];
  };
}

export interface FakeGrafeas extends FakeServer {
  occurrences: Map<string, StoredOccurrence>;
  /** Filters the server was asked, verbatim. */
  filters: string[];
}

const FILTER_CLAUSE = /^(resourceUrl|noteProjectId|noteId|kind)="((?:[^"\\]|\\.)*)"$/;

/**
 * Container Analysis v1 REST for occurrences: create, list (with the filter keys our writer uses,
 * paged two at a time so pagination is exercised) and delete (404 NOT_FOUND when absent).
 */
export async function startFakeGrafeas(projectId: string): Promise<FakeGrafeas> {
  const occurrences = new Map<string, StoredOccurrence>();
  const filters: string[] = [];
  const collection = `/v1/projects/${projectId}/occurrences`;
  const server = await serve((req) => {
    if (req.method === 'POST' && req.path === collection) {
      const body = req.body as Omit<StoredOccurrence, 'name' | 'kind'>;
      if (!body.noteName || !body.resourceUri || !body.attestation?.serializedPayload) {
        return googleError(400, 'INVALID_ARGUMENT', 'noteName, resourceUri, attestation required');
      }
      const name = `projects/${projectId}/occurrences/${randomUUID()}`;
      const stored: StoredOccurrence = { ...body, name, kind: 'ATTESTATION' };
      occurrences.set(name, stored);
      return { status: 200, body: stored };
    }
    if (req.method === 'GET' && req.path === collection) {
      const filter = req.query.get('filter') ?? '';
      filters.push(filter);
      const wanted: Record<string, string> = {};
      for (const clause of filter.split(' AND ')) {
        const m = FILTER_CLAUSE.exec(clause.trim());
        if (!m) return googleError(400, 'INVALID_ARGUMENT', `bad filter clause ${clause}`);
        wanted[m[1]] = m[2].replace(/\\(.)/g, '$1');
      }
      const matching = [...occurrences.values()].filter((o) => {
        const [, noteProject, , noteId] = o.noteName.split('/');
        return (
          (wanted.resourceUrl === undefined || wanted.resourceUrl === o.resourceUri) &&
          (wanted.noteProjectId === undefined || wanted.noteProjectId === noteProject) &&
          (wanted.noteId === undefined || wanted.noteId === noteId) &&
          (wanted.kind === undefined || wanted.kind === o.kind)
        );
      });
      const start = Number(req.query.get('pageToken') || '0');
      const page = matching.slice(start, start + 2);
      const next = start + 2 < matching.length ? String(start + 2) : '';
      return { status: 200, body: { occurrences: page, nextPageToken: next } };
    }
    if (req.method === 'DELETE' && req.path.startsWith(`${collection}/`)) {
      const name = req.path.slice('/v1/'.length);
      if (!occurrences.delete(name)) return googleError(404, 'NOT_FOUND', `${name} not found`);
      return { status: 200, body: {} };
    }
    return googleError(404, 'NOT_FOUND', `no route ${req.method} ${req.path}`);
  });
  return { ...server, occurrences, filters };
}
