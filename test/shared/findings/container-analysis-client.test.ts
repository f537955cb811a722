// Feeds occurrences through Google's own Node client (REST transport, against a local HTTP server)
// so the parsers see the exact shape getGrafeasClient() hands to the handler: defaults filled in,
// enums as strings, timestamps as {seconds, nanos}.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ContainerAnalysisClient } from '@google-cloud/containeranalysis';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findingsFromVulnerabilityOccurrence,
  parseDiscoveryOccurrence,
} from '../../../shared/findings/container-analysis.js';
import { fixture } from '../real-world-fixtures.js';

type Json = Record<string, unknown>;
const DIGEST = 'sha256:d2eecb48a0d1c6be1ec96d2d0a52c3b95936c4cdde2208299c04d6106b769658';

const occurrences = new Map<string, Json>();
const vuln = fixture<Json>('containeranalysis/ca-occurrence-vulnerability-ubuntu.json');
occurrences.set('projects/cloudy-demos/occurrences/vuln', vuln);
const discovery = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
// The fixture's own digest is a 42-digit stand-in (rejected elsewhere); give it a real one.
discovery.resourceUri = `https://northamerica-northeast1-docker.pkg.dev/testing/test-docker/test-image@${DIGEST}`;
occurrences.set('projects/test/occurrences/disc', discovery);

type ClientOptions = NonNullable<ConstructorParameters<typeof ContainerAnalysisClient>[0]>;

let server: Server;
let client: ContainerAnalysisClient;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}`);
    const body = occurrences.get(path.replace(/^\/v1\//, ''));
    res.setHeader('content-type', 'application/json');
    if (!body) {
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 404, message: 'not found', status: 'NOT_FOUND' } }));
      return;
    }
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new ContainerAnalysisClient({
    fallback: true,
    apiEndpoint: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    protocol: 'http',
    // gax bundles its own copy of google-auth-library, whose types differ only nominally.
    authClient: new PassThroughClient() as unknown as ClientOptions['authClient'],
  });
});

afterAll(async () => {
  await client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('occurrences as the Node client returns them', () => {
  it('VULNERABILITY: defaults such as fixAvailable=false and cvssV2=null do not change the finding', async () => {
    const [occ] = await client.getGrafeasClient().getOccurrence({
      name: 'projects/cloudy-demos/occurrences/vuln',
    });
    // The client really did fill in defaults (REST JSON had none of these).
    expect(occ.vulnerability?.fixAvailable).toBe(false);
    expect(occ.vulnerability?.cvssVersion).toBe('CVSS_VERSION_UNSPECIFIED');
    expect(findingsFromVulnerabilityOccurrence(occ)).toEqual(
      findingsFromVulnerabilityOccurrence(vuln),
    );
    expect(requests).toContain('GET /v1/projects/cloudy-demos/occurrences/vuln');
  });

  it('DISCOVERY: {seconds, nanos} timestamps read like RFC 3339 strings', async () => {
    const [occ] = await client.getGrafeasClient().getOccurrence({
      name: 'projects/test/occurrences/disc',
    });
    expect(typeof occ.updateTime).toBe('object');
    // The client names FINISHED_SUCCESS by its alias COMPLETE (same enum number).
    expect(occ.discovery?.analysisStatus).toBe('COMPLETE');
    const parsed = parseDiscoveryOccurrence(occ);
    expect(parsed).toMatchObject({
      status: 'success',
      isVulnerabilityScan: true,
      completedAt: '2023-08-23T16:57:34.358Z',
    });
    expect(parsed).toEqual(parseDiscoveryOccurrence(discovery));
  });
});
