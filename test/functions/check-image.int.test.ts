// checkImage through functions-framework's server, the Firestore and Pub/Sub emulators and real AdmissionReview requests.
import { get } from 'node:http';
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAKGLASS_ANNOTATION } from '../../shared/check/admission.js';
import { ADMISSION_SETTINGS_DOC } from '../../shared/check/firestore-store.js';
import { fixedClock } from '../../shared/clock.js';
import type { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { externalDocId } from '../../shared/ledger/collections.js';
import { tagDocId } from '../../shared/ledger/ledger-store.js';
import { createLogger } from '../../shared/logging/logger.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { createRoot } from '../../shared/runtime/root.js';
import { attestation, denyReason, HASH, record, verdict } from '../shared/check/records.js';
import {
  asCronJob,
  asDeployment,
  CHARLIE,
  CHARLIE_DIGEST,
  podReview,
  podWithInitReview,
  type Review,
  withAnnotations,
} from '../shared/check/workloads.js';
import { fixture } from '../shared/real-world-fixtures.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { type IdTokenIssuer, startIdTokenIssuer } from '../support/id-tokens.js';
import { describeWithEmulators, emulators } from '../support/integration.js';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
type Json = Record<string, any>;

const TOKEN = 'check-bearer-token-for-tests-0123456789';
const AUDIENCE = 'https://check-image.example.run.app';
const DEPLOYER = 'deployer@demo.iam.gserviceaccount.com';
const POLICY = `apiVersion: clearance/v1
environments:
  prod:
    mode: enforce
    breakglass: true
  staging:
    mode: enforce
  dev:
    mode: dryrun
admission:
  unknownImage: deny
  requireAttestation: true
`;

const CHARLIE_REPO = {
  registry: 'docker.io',
  repository: 'securesystemsengineering/charlie-image',
};
const NGINX_REPO = { registry: 'docker.io', repository: 'library/nginx' };
const NGINX_DIGEST = `sha256:${'d'.repeat(64)}`;
const CHARLIE_ID = imageDocId(CHARLIE_REPO.registry, CHARLIE_REPO.repository, CHARLIE_DIGEST);

const allowed = (over: Partial<ImageRecord> = {}) => ({
  verdicts: {
    prod: verdict(),
    staging: verdict({ environment: 'staging' }),
    dev: verdict({ environment: 'dev', mode: 'dryrun' }),
  },
  attestations: [attestation()],
  ...over,
});
const denied = (over: Partial<ImageRecord> = {}) => ({
  state: 'denied' as const,
  verdicts: {
    prod: verdict({ decision: 'deny', reasons: [denyReason] }),
    staging: verdict({ environment: 'staging', decision: 'deny', reasons: [denyReason] }),
    dev: verdict({
      environment: 'dev',
      mode: 'dryrun',
      reasons: [
        { ...denyReason, level: 'warn', message: `dry-run, would deny: ${denyReason.message}` },
      ],
    }),
  },
  attestations: [],
  ...over,
});

describeWithEmulators('checkImage (functions-framework, Firestore and Pub/Sub emulators)', () => {
  const projectId = emulators?.projectId ?? 'none';
  const db = new Firestore({ projectId });
  const pubsub = new PubSub({ projectId });
  const alerts: Message[] = [];
  let issuer: IdTokenIssuer;
  let server: FunctionServer;
  let hanging: FunctionServer;
  let ttlServer: FunctionServer;
  const clock = fixedClock('2026-11-29T10:00:00Z');
  let failingBreakglass: FunctionServer;

  // Every ledger write bumps the record's version (the check's cache key), as FirestoreLedger does.
  let version = 100;
  async function putImage(
    where: { registry: string; repository: string },
    digest: string,
    over: Partial<ImageRecord>,
  ) {
    version += 1;
    const rec = record({ version, ...over }, { ...where, digest });
    await db.collection('images').doc(rec.id).set(rec);
    return rec;
  }
  async function putTag(
    where: { registry: string; repository: string },
    tag: string,
    digest: string,
  ) {
    await db
      .collection('tags')
      .doc(tagDocId(where.registry, where.repository, tag))
      .set({ pushes: { [digest]: '2026-11-29T08:00:00.000Z' } });
  }

  beforeAll(async () => {
    issuer = await startIdTokenIssuer();
    Object.assign(process.env, {
      CLEARANCE_CHECK_BEARER_TOKEN: TOKEN,
      CLEARANCE_CHECK_AUDIENCES: AUDIENCE,
      CLEARANCE_CHECK_ALLOWED_CALLERS: DEPLOYER,
      CLEARANCE_CHECK_CERTS_URL: issuer.certsUrl,
      // Each test writes the ledger first; a zero TTL keeps the shared instance from answering from an earlier test.
      CLEARANCE_CHECK_CACHE_TTL_MS: '0',
      CLEARANCE_DEFAULT_ENV: 'prod',
      CLEARANCE_ALERTS_TOPIC: 'clearance-alerts',
    });
    const mod = await import('../../functions/check-image/index.js');
    const quiet = createLogger({ sink: () => {} });
    ff.http(
      'checkImageHangingStore',
      mod.buildCheckImage({
        getRoot: () => hangingRoot,
        store: async () => ({
          getImage: () => new Promise(() => {}),
          resolveTag: () => new Promise(() => {}),
          getAdmissionSettings: () => new Promise(() => {}),
        }),
      }) as unknown as ff.HttpFunction,
    );
    const hangingRoot = createRoot(
      { ...process.env, CLEARANCE_CHECK_TIMEOUT_MS: '200' },
      { logger: quiet },
    );
    const ttlRoot = createRoot(
      { ...process.env, CLEARANCE_CHECK_CACHE_TTL_MS: '5000' },
      { logger: quiet, clock },
    );
    ff.http(
      'checkImageFixedClock',
      mod.buildCheckImage({ getRoot: () => ttlRoot }) as unknown as ff.HttpFunction,
    );
    const failingRoot = createRoot(process.env, { logger: quiet });
    ff.http(
      'checkImageFailingAudit',
      mod.buildCheckImage({
        getRoot: () => failingRoot,
        breakglass: () => ({
          record: async () => {
            throw new Error('PERMISSION_DENIED: cannot write breakglass');
          },
        }),
      }) as unknown as ff.HttpFunction,
    );
    [server, hanging, ttlServer, failingBreakglass] = await Promise.all([
      serveFunction('checkImage'),
      serveFunction('checkImageHangingStore'),
      serveFunction('checkImageFixedClock'),
      serveFunction('checkImageFailingAudit'),
    ]);
    await storePolicy(db, {
      source: POLICY,
      format: 'yaml',
      appliedBy: 'test',
      now: new Date('2026-11-29T08:00:00Z'),
    });
    // The records below carry verdicts made under HASH: make it the current policy's, so they are not stale.
    await db.collection('policies').doc(ADMISSION_SETTINGS_DOC).update({ policyHash: HASH });
    const [topic] = await pubsub.createTopic('clearance-alerts');
    const [sub] = await topic.createSubscription('clearance-alerts-test');
    sub.on('message', (m: Message) => {
      alerts.push(m);
      m.ack();
    });
  });

  afterAll(async () => {
    await Promise.all([
      server?.close(),
      hanging?.close(),
      ttlServer?.close(),
      failingBreakglass?.close(),
    ]);
    await issuer?.close();
    await Promise.all([db.terminate(), pubsub.close()]);
  });

  const call = async (
    base: string,
    path: string,
    init: { body?: unknown; token?: string | null; method?: string } = {},
  ) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const token = init.token === undefined ? TOKEN : init.token;
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${base}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as Json, text, res };
  };
  const admit = async (review: Review, query = '', base = server.url) => {
    const r = await call(base, `/admission${query}`, { body: review });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(r.body.response.uid).toBe(review.request.uid);
    return r.body.response as {
      uid: string;
      allowed: boolean;
      status?: { code: number; message: string };
      warnings?: string[];
    };
  };

  it('stores the admission settings next to the policy when it is applied', async () => {
    const snap = await db.collection('policies').doc(ADMISSION_SETTINGS_DOC).get();
    expect(snap.data()).toMatchObject({
      unknownImage: 'deny',
      requireAttestation: true,
      environments: {
        prod: { mode: 'enforce', breakglass: true },
        staging: { mode: 'enforce', breakglass: false },
        dev: { mode: 'dryrun', breakglass: false },
      },
    });
  });

  describe('AdmissionReview (real requests from connaisseur)', () => {
    it('allows the Pod whose digest-pinned image is allowed and attested', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
      const r = await admit(podReview());
      expect(r.allowed).toBe(true);
      expect(r.status).toBeUndefined();
    });

    it('denies the Pod whose image is denied, 403 naming the image and the rule', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const r = await admit(podReview());
      expect(r.allowed).toBe(false);
      expect(r.status?.code).toBe(403);
      expect(r.status?.message).toContain(CHARLIE);
      expect(r.status?.message).toContain('vulnerabilities.fixable');
    });

    it('answers an admission.k8s.io/v1beta1 review in v1beta1 (admissionReviewVersions: [v1beta1])', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const review = fixture<Review>('k8s/admissionreview-v1beta1-pod-create.derived.json');
      const r = await call(server.url, '/admission', { body: review });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        apiVersion: 'admission.k8s.io/v1beta1',
        kind: 'AdmissionReview',
        response: { uid: review.request.uid, allowed: false, status: { code: 403 } },
      });
    });

    it('denies an image unknown to the ledger (fail closed)', async () => {
      await db.collection('images').doc(CHARLIE_ID).delete();
      const r = await admit(podReview());
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('check.unknown-image');
    });

    it('regression: never allows an allowed verdict with zero attestations where attestation is required', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed({ attestations: [] }));
      const r = await admit(podReview());
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('check.attestation-required');
    });

    it('allows in a dry-run environment (?env=dev) with short warnings', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const r = await admit(podReview(), '?env=dev');
      expect(r.allowed).toBe(true);
      expect(r.warnings?.length).toBeGreaterThan(0);
      expect(r.warnings?.join('\n')).toContain('vulnerabilities.fixable');
      expect(r.warnings?.every((w) => w.length <= 120)).toBe(true);
    });

    it('Deployment with an init container (fixture Pod wrapped in memory): allowed when both images are', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
      await putImage(NGINX_REPO, NGINX_DIGEST, allowed());
      await putTag(NGINX_REPO, 'latest', NGINX_DIGEST);
      const r = await admit(asDeployment(podWithInitReview()));
      expect(r.allowed).toBe(true);
    });

    it('Deployment with an init container (fixture wrapped in memory): the denied init container denies', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
      await putImage(NGINX_REPO, NGINX_DIGEST, denied());
      await putTag(NGINX_REPO, 'latest', NGINX_DIGEST);
      const r = await admit(asDeployment(podWithInitReview()));
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('nginx: vulnerabilities.fixable');
      expect(r.status?.message).not.toContain(CHARLIE);
    });

    it('CronJob (fixture wrapped in memory): an init container with an unknown tag denies', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
      await db
        .collection('tags')
        .doc(tagDocId(NGINX_REPO.registry, NGINX_REPO.repository, 'latest'))
        .delete();
      const r = await admit(asCronJob(podWithInitReview()));
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('nginx: check.unknown-image');
    });

    it('break-glass: allows a denied Pod in prod, records it in the audit trail and raises an alert', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const review = withAnnotations(podReview(), {
        [BREAKGLASS_ANNOTATION]: 'true',
        'clearance.dev/break-glass-reason': 'INC-4711 hotfix',
      });
      review.request.uid = 'bg-0c3331b6-1812-11ea-b3fc-02897404852e';
      const r = await admit(review);
      expect(r.allowed).toBe(true);
      expect(r.warnings?.[0]).toContain('break-glass used');
      const record = await db.collection('breakglass').doc(externalDocId(review.request.uid)).get();
      expect(record.data()).toMatchObject({
        environment: 'prod',
        actor: 'system:serviceaccount:kube-system:replicaset-controller',
        caller: 'bearer-token',
        justification: 'INC-4711 hotfix',
        workload: { kind: 'Pod', namespace: 'test-connaisseur' },
        images: [{ image: CHARLIE, digest: CHARLIE_DIGEST, ruleIds: ['vulnerabilities.fixable'] }],
      });
      const audit = await db
        .collection('images')
        .doc(CHARLIE_ID)
        .collection('audit')
        .doc(externalDocId(`breakglass:${review.request.uid}`))
        .get();
      expect(audit.data()).toMatchObject({ kind: 'breakglass', source: 'checkImage' });
      const alert = await eventually(async () =>
        alerts.find(
          (m) => JSON.parse(m.data.toString()).workload?.name === 'charlie-deployment-76fbf58b7d-',
        ),
      );
      expect(JSON.parse(alert.data.toString())).toMatchObject({
        type: 'breakglass-used',
        environment: 'prod',
        image: { ...CHARLIE_REPO, digest: CHARLIE_DIGEST },
        images: [CHARLIE],
        justification: 'INC-4711 hotfix',
      });
      expect(alert.attributes.type).toBe('breakglass-used');
    });

    it('break-glass of an image unknown to the ledger, by tag: admitted, recorded and alerted with the workload as subject', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
      await db
        .collection('tags')
        .doc(tagDocId(NGINX_REPO.registry, NGINX_REPO.repository, 'latest'))
        .delete();
      const review = withAnnotations(podWithInitReview(), {
        [BREAKGLASS_ANNOTATION]: 'true',
        'clearance.dev/break-glass-reason': 'INC-4712 unknown image',
      });
      review.request.uid = 'bg-unknown-by-tag-1';
      const r = await admit(review);
      expect(r.allowed).toBe(true);
      expect(r.warnings?.[0]).toContain('break-glass used');
      const record = await db
        .collection('breakglass')
        .doc(externalDocId('bg-unknown-by-tag-1'))
        .get();
      expect(record.data()).toMatchObject({
        alert: 'published',
        images: [{ image: 'nginx', digest: null }],
      });
      // No digest to name: the alert's subject is the workload, and it still goes out.
      const alert = await eventually(async () =>
        alerts.find(
          (m) => JSON.parse(m.data.toString()).justification === 'INC-4712 unknown image',
        ),
      );
      const body = JSON.parse(alert.data.toString());
      expect(body).toMatchObject({
        type: 'breakglass-used',
        environment: 'prod',
        images: ['nginx'],
        workload: { kind: 'Pod', namespace: review.request.namespace },
      });
      expect(body.image).toBeUndefined();
      expect(body.useId).toMatch(/^[0-9a-f]{32}$/);
      expect(alert.attributes).toMatchObject({ type: 'breakglass-used' });
      expect(alert.attributes.subject).toContain('workload');
    });

    it('break-glass where the environment does not permit it denies and records nothing', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const review = withAnnotations(podReview(), { [BREAKGLASS_ANNOTATION]: 'true' });
      review.request.uid = 'bg-staging-1';
      const r = await admit(review, '?env=staging');
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('break-glass is not permitted in environment staging');
      expect(
        (await db.collection('breakglass').doc(externalDocId('bg-staging-1')).get()).exists,
      ).toBe(false);
    });

    it("break-glass in the API server's dry run allows without recording (sideEffects: NoneOnDryRun)", async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const review = withAnnotations(podReview(), { [BREAKGLASS_ANNOTATION]: 'true' });
      review.request.uid = 'bg-dry-run-1';
      review.request.dryRun = true;
      const r = await admit(review);
      expect(r.allowed).toBe(true);
      expect(r.warnings?.[0]).toContain('dry run: not recorded');
      expect(
        (await db.collection('breakglass').doc(externalDocId('bg-dry-run-1')).get()).exists,
      ).toBe(false);
    });

    it('break-glass that cannot be recorded denies (an unaudited bypass is no bypass)', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      const review = withAnnotations(podReview(), { [BREAKGLASS_ANNOTATION]: 'true' });
      const r = await admit(review, '', failingBreakglass.url);
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('break-glass could not be recorded');
    });

    it('regression: a store that does not answer in time denies (fail closed), never allows', async () => {
      const r = await admit(podReview(), '', hanging.url);
      expect(r.allowed).toBe(false);
      expect(r.status?.message).toContain('check.unavailable');
      const rest = await call(hanging.url, `/v1/check?image=${encodeURIComponent(CHARLIE)}`);
      expect(rest.body).toMatchObject({ decision: 'deny' });
    });
  });

  it('regression: a verdict changed in the ledger is served within the cache TTL', async () => {
    await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed({ version: 10 }));
    const ask = async () =>
      (await call(ttlServer.url, `/v1/check?image=${encodeURIComponent(CHARLIE)}&env=prod`)).body;
    expect((await ask()).decision).toBe('allow');
    await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied({ version: 11 }));
    clock.advance(4_000);
    expect((await ask()).decision).toBe('allow'); // cached, inside the 5 s TTL
    clock.advance(1_000);
    const after = await ask();
    expect(after.decision).toBe('deny');
    expect(after.reasons[0]).toMatchObject({ ruleId: 'vulnerabilities.fixable' });
  });

  describe('REST /v1/check', () => {
    it('answers a tag with the digest it judged, the attestation, decided-at and policy hash', async () => {
      await putImage(NGINX_REPO, NGINX_DIGEST, allowed());
      await putTag(NGINX_REPO, '1.27', NGINX_DIGEST);
      const r = await call(server.url, '/v1/check?image=nginx:1.27&env=prod');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        image: 'nginx:1.27',
        digest: NGINX_DIGEST,
        environment: 'prod',
        decision: 'allow',
        mode: 'enforce',
        decidedAt: '2026-11-29T09:00:00.000Z',
        attestation: { format: 'binauthz', occurrence: 'projects/p/occurrences/att-1' },
      });
      expect(r.body.policyHash).toMatch(/^sha256:/);
    });

    it('with a cache TTL, a repeated GET (a cache hit) gets the same bytes, JSON, an ETag and its own request id; a matching If-None-Match gets 304', async () => {
      const digest = `sha256:${'e'.repeat(64)}`;
      await putImage(NGINX_REPO, digest, allowed());
      const path = `/v1/check?image=${encodeURIComponent(`nginx@${digest}`)}&env=prod`;
      const first = await call(ttlServer.url, path);
      const second = await call(ttlServer.url, path);
      expect(second.status).toBe(200);
      expect(second.text).toBe(first.text);
      expect(second.body).toMatchObject({ digest, decision: 'allow' });
      expect(second.res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(second.res.headers.get('content-length')).toBe(String(Buffer.byteLength(second.text)));
      const etag = second.res.headers.get('etag');
      expect(etag).toMatch(/^W\/".+"$/);
      const ids = [first, second].map((r) => r.res.headers.get('x-request-id'));
      for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(ids[0]).not.toBe(ids[1]);
      // node:http, not fetch: fetch adds Cache-Control: no-cache to a request with If-None-Match.
      const revalidated = await new Promise<{ status: number; body: string }>((done, fail) => {
        get(
          `${ttlServer.url}${path}`,
          { headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': etag ?? '' } },
          (res) => {
            let body = '';
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => done({ status: res.statusCode ?? 0, body }));
          },
        ).on('error', fail);
      });
      expect(revalidated).toEqual({ status: 304, body: '' });
    });

    it('POST one image, or a list (denied if any is denied), with reasons and remediation', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, denied());
      await putImage(NGINX_REPO, NGINX_DIGEST, allowed());
      const one = await call(server.url, '/v1/check', { body: { image: CHARLIE } });
      expect(one.body).toMatchObject({ decision: 'deny', reasons: [denyReason] });
      const nginx = `docker.io/library/nginx@${NGINX_DIGEST}`;
      const many = await call(server.url, '/v1/check', {
        body: { images: [nginx, CHARLIE], env: 'prod' },
      });
      expect(many.body.decision).toBe('deny');
      expect(many.body.results.map((a: { decision: string }) => a.decision)).toEqual([
        'allow',
        'deny',
      ]);
    });

    it('refuses a malformed reference with 400 and the reason', async () => {
      const r = await call(server.url, '/v1/check?image=UPPER/Case:tag');
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid-input' });
      expect(r.body.error.requestId).toBe(r.res.headers.get('x-request-id'));
    });
  });

  it('Gatekeeper provider: one item per key, idempotent', async () => {
    await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
    const r = await call(server.url, '/gatekeeper', {
      body: {
        apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
        kind: 'ProviderRequest',
        request: {
          keys: [CHARLIE, `docker.io/library/unknown@sha256:${'e'.repeat(64)}`, 'Bad Ref'],
        },
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.response.idempotent).toBe(true);
    const [a, b, c] = r.body.response.items;
    expect(a).toMatchObject({
      key: CHARLIE,
      value: { decision: 'allow', digest: CHARLIE_DIGEST },
      error: '',
    });
    expect(b).toMatchObject({ value: { decision: 'deny' }, error: '' });
    expect(c.key).toBe('Bad Ref');
    expect(c.error).not.toBe('');
  });

  describe('authentication and limits', () => {
    const path = `/v1/check?image=${encodeURIComponent(CHARLIE)}`;

    it('401 without credentials, 401 for a wrong bearer token; /healthz needs none', async () => {
      expect((await call(server.url, path, { token: null })).status).toBe(401);
      expect((await call(server.url, path, { token: 'wrong' })).status).toBe(401);
      expect((await call(server.url, '/healthz', { token: null })).status).toBe(200);
    });

    it('accepts a Google ID token of an allowed caller; 403 for a caller not allowed', async () => {
      await putImage(CHARLIE_REPO, CHARLIE_DIGEST, allowed());
      const ok = await call(server.url, path, {
        token: issuer.mint({ aud: AUDIENCE, email: DEPLOYER }),
      });
      expect(ok.status).toBe(200);
      expect(ok.body.decision).toBe('allow');
      const stranger = issuer.mint({
        aud: AUDIENCE,
        email: 'intruder@demo.iam.gserviceaccount.com',
      });
      const no = await call(server.url, path, { token: stranger });
      expect(no.status).toBe(403);
      expect(no.text).not.toContain(stranger);
    });

    it('413 for a body over 1 MiB, with a request id and no stack trace or secret', async () => {
      const big = { images: ['x'.repeat(1024 * 1024)] };
      const r = await call(server.url, '/v1/check', { body: big });
      expect(r.status).toBe(413);
      expect(r.body.error.requestId).toMatch(/[0-9a-f-]{36}/);
      expect(r.text).not.toMatch(/at .*\.js:\d+/);
      expect(r.text).not.toContain(TOKEN);
    });

    it('404 for an unknown route, with the routes it offers', async () => {
      const r = await call(server.url, '/v2/nothing');
      expect(r.status).toBe(404);
      expect(r.body.error.message).toContain('/admission');
    });
  });
});
