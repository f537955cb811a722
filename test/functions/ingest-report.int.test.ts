// ingestReport on the functions-framework server: authentication, body cap, bad reports kept as dead letters, cosign vuln attestations, idempotent re-uploads.
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { COSIGN_VULN_PREDICATE_TYPE } from '../../shared/findings/reports.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { fixture, fixtureText } from '../shared/real-world-fixtures.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { type IdTokenIssuer, startIdTokenIssuer } from '../support/id-tokens.js';
import { describeWithEmulators } from '../support/integration.js';
import {
  createEffectTopics,
  docData,
  ingestEnv,
  REPORT_TOKEN,
  seedPushedImage,
  testDb,
} from './support.js';

type Json = Record<string, unknown>;

describeWithEmulators('ingestReport', () => {
  let db: Firestore;
  let pubsub: PubSub;
  let server: FunctionServer;
  let issuer: IdTokenIssuer;
  const AUDIENCE = 'https://ingest-report.example';

  beforeAll(async () => {
    issuer = await startIdTokenIssuer();
    const env = ingestEnv('report', {
      CLEARANCE_REPORT_AUDIENCES: AUDIENCE,
      CLEARANCE_REPORT_ALLOWED_CALLERS: 'ci@acme.iam.gserviceaccount.com',
      CLEARANCE_CHECK_CERTS_URL: issuer.certsUrl,
    });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await import('../../functions/ingest-report/index.js');
    server = await serveFunction('ingestReport');
  });
  afterAll(async () => {
    await server?.close();
    await issuer?.close();
    await Promise.all([db?.terminate(), pubsub?.close()]);
  });

  async function upload(
    body: string,
    opts: { token?: string | null; query?: string; contentType?: string; method?: string } = {},
  ): Promise<{ status: number; body: Json; text: string }> {
    const token = opts.token === undefined ? REPORT_TOKEN : opts.token;
    const res = await fetch(`${server.url}/${opts.query ?? ''}`, {
      method: opts.method ?? 'POST',
      headers: {
        'content-type': opts.contentType ?? 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(opts.method === 'GET' ? {} : { body }),
    });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as Json, text };
  }

  const trivy = fixtureText('scanners/trivy-debian-buster.json');
  const IMG = `us-docker.pkg.dev/acme/apps/web@sha256:${'d'.repeat(64)}`;

  it('refuses callers without the token, or with a wrong one, and stores nothing', async () => {
    for (const token of [null, 'wrong-token']) {
      const res = await upload(trivy, { token, query: `?image=${encodeURIComponent(IMG)}` });
      expect(res.status).toBe(401);
      expect((res.body.error as Json).code).toBe('unauthenticated');
      expect(res.text).not.toContain(REPORT_TOKEN);
    }
    expect((await db.collection('images').get()).size).toBe(0);
    expect((await db.collection('deadLetters').get()).size).toBe(0);
  });

  it('answers 413 for a body over 1 MiB', async () => {
    const big = JSON.stringify({ SchemaVersion: 2, Results: [], pad: 'x'.repeat(1024 * 1024) });
    const res = await upload(big, { query: `?image=${encodeURIComponent(IMG)}` });
    expect(res.status).toBe(413);
    expect((await db.collection('images').get()).size).toBe(0);
  });

  it('stores a Trivy report sent as text/plain (not only application/json) and answers 202', async () => {
    // Reports count only for images the ledger knows.
    await seedPushedImage(IMG);
    const res = await upload(trivy, {
      query: `?image=${encodeURIComponent(IMG)}`,
      contentType: 'text/plain',
    });
    expect(res).toMatchObject({
      status: 202,
      body: { accepted: true, format: 'trivy', findings: 2, outcome: 'applied' },
    });
    const id = imageDocId('us-docker.pkg.dev', 'acme/apps/web', `sha256:${'d'.repeat(64)}`);
    expect(await docData(db, `images/${id}`)).toMatchObject({
      scan: { status: 'finished', counts: { total: 2 } },
    });
  });

  it('the same report uploaded again is a duplicate, with one audit entry', async () => {
    const res = await upload(trivy, { query: `?image=${encodeURIComponent(IMG)}` });
    expect(res).toMatchObject({ status: 202, body: { outcome: 'duplicate' } });
    const id = imageDocId('us-docker.pkg.dev', 'acme/apps/web', `sha256:${'d'.repeat(64)}`);
    const audit = await db
      .collection(`images/${id}/audit`)
      .where('kind', '==', 'scan-finished')
      .get();
    expect(audit.size).toBe(1);
  });

  it('a cosign vuln attestation embedding Trivy output names its image itself', async () => {
    const predicate = fixture<{ scanner: Json }>('scanners/cosign-vuln-predicate.json');
    predicate.scanner.result = fixture('scanners/trivy-debian-buster.json');
    const digest = 'f'.repeat(64);
    const statement = {
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: COSIGN_VULN_PREDICATE_TYPE,
      subject: [{ name: 'ghcr.io/acme/tool', digest: { sha256: digest } }],
      predicate,
    };
    await seedPushedImage(`ghcr.io/acme/tool@sha256:${digest}`);
    const sent = Date.now();
    const res = await upload(JSON.stringify(statement));
    expect(res).toMatchObject({
      status: 202,
      body: { format: 'cosign-vuln', image: `ghcr.io/acme/tool@sha256:${digest}`, findings: 2 },
    });
    const image = await docData(
      db,
      `images/${imageDocId('ghcr.io', 'acme/tool', `sha256:${digest}`)}`,
    );
    expect(image).toMatchObject({ scan: { status: 'finished' } });
    // The report's own time (2022-04-12T00:10:00Z) is a claim: clamped to an hour before the upload.
    const completed = Date.parse(String((image?.scan as Json | undefined)?.completedAt));
    expect(completed - (sent - 3_600_000)).toBeGreaterThanOrEqual(0);
    expect(completed - (sent - 3_600_000)).toBeLessThan(60_000);
  });

  it('a body that is not JSON, or an image given by tag: 400 with the reason, kept as a dead letter', async () => {
    const bad = await upload('{"SchemaVersion": 2, "Results": [', { contentType: 'text/plain' });
    expect(bad.status).toBe(400);
    const error = bad.body.error as Json;
    expect(error.message).toMatch(/not JSON/);
    expect(await docData(db, `deadLetters/${String(error.deadLetter)}`)).toMatchObject({
      source: 'report',
      raw: '{"SchemaVersion": 2, "Results": [',
    });
    const byTag = await upload(trivy.replace('"SchemaVersion": 2', '"SchemaVersion":2 '), {
      query: '?image=us-docker.pkg.dev/acme/apps/web:latest',
    });
    expect(byTag.status).toBe(400);
    expect((byTag.body.error as Json).message).toMatch(/by digest/);
    expect((await db.collection('deadLetters').get()).size).toBe(2);
  });

  it('accepts a Google ID token from an allowed CI service account, 403 for another, 401 for a forged one', async () => {
    await seedPushedImage(`us-docker.pkg.dev/acme/apps/idtoken@sha256:${'f'.repeat(64)}`);
    const ok = await upload(trivy, {
      token: issuer.mint({ aud: AUDIENCE, email: 'ci@acme.iam.gserviceaccount.com' }),
      query: `?image=${encodeURIComponent(`us-docker.pkg.dev/acme/apps/idtoken@sha256:${'f'.repeat(64)}`)}`,
    });
    expect(ok.status).toBe(202);
    const other = await upload(trivy, {
      token: issuer.mint({ aud: AUDIENCE, email: 'intruder@evil.iam.gserviceaccount.com' }),
    });
    expect(other.status).toBe(403);
    const forged = await upload(trivy, {
      token: issuer.mintWithForeignKey({ aud: AUDIENCE, email: 'ci@acme.iam.gserviceaccount.com' }),
    });
    expect(forged.status).toBe(401);
    expect(forged.text).not.toContain('ci@acme');
  });

  it('only POST is accepted', async () => {
    const res = await upload('', { method: 'GET' });
    expect(res.status).toBe(400);
    expect((res.body.error as Json).message).toBe('use POST');
  });

  it('a report whose bytes are not UTF-8: 400, kept byte for byte; two such reports are two dead letters', async () => {
    // Read leniently, both were the same valid report with U+FFFD in a title: stored, and one id for two inputs.
    const img = `us-docker.pkg.dev/acme/apps/bytes@sha256:${'b'.repeat(64)}`;
    await seedPushedImage(img);
    const cut = trivy.indexOf('"Title": "bash') + '"Title": "bash'.length;
    const withByte = (b: number) =>
      Buffer.concat([
        Buffer.from(trivy.slice(0, cut)),
        Buffer.from([b]),
        Buffer.from(trivy.slice(cut)),
      ]);
    const letters: string[] = [];
    for (const body of [withByte(0xff), withByte(0xfe)]) {
      const res = await fetch(`${server.url}/?image=${encodeURIComponent(img)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${REPORT_TOKEN}` },
        body,
      });
      expect(res.status).toBe(400);
      const error = ((await res.json()) as { error: Json }).error;
      expect(error.message).toMatch(/not valid UTF-8/);
      const dl = await docData(db, `deadLetters/${String(error.deadLetter)}`);
      expect(dl).toMatchObject({ source: 'report', rawEncoding: 'base64', rawBytes: body.length });
      expect(Buffer.from(String(dl?.raw), 'base64').equals(body)).toBe(true);
      letters.push(String(error.deadLetter));
    }
    expect(new Set(letters).size).toBe(2);
    const id = imageDocId('us-docker.pkg.dev', 'acme/apps/bytes', `sha256:${'b'.repeat(64)}`);
    expect(await docData(db, `images/${id}`)).not.toMatchObject({ scan: { status: 'finished' } });
  });
});
