// Each input only as far as its source: the attacks of issue 12 refused or without effect, and every allowed path, through the real functions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GrafeasServer, startGrafeasServer } from '../../scripts/lib/grafeas-server.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { tagDocId } from '../../shared/ledger/ledger-store.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { fixture } from '../shared/real-world-fixtures.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { type IdTokenIssuer, startIdTokenIssuer } from '../support/id-tokens.js';
import { describeWithEmulators } from '../support/integration.js';
import {
  createTestSigstore,
  dsseEnvelope,
  GITHUB_ISSUER,
  keylessBundleV03,
  keyPair,
  type TestSigstore,
} from '../support/sigstore-testing.js';
import {
  createEffectTopics,
  docData,
  ingestEnv,
  pullAll,
  pushMessage,
  REPORT_TOKEN,
  testDb,
  useSandboxRegistry,
  WEBHOOK_TOKENS,
} from './support.js';

type Json = Record<string, unknown>;

const AR = 'us-docker.pkg.dev';
const REPO = 'acme/apps/api';
const hex = (c: string) => c.repeat(64);
const digest = (c: string) => `sha256:${hex(c)}`;
const idOf = (d: string, registry = AR, repository = REPO) => imageDocId(registry, repository, d);
const refOf = (d: string) => `${AR}/${REPO}@${d}`;
const CI = 'ci@acme.iam.gserviceaccount.com';
const AUDIENCE = 'https://us-central1-acme.cloudfunctions.net/clearance-ingest-report';
const TRUSTED_BUILDER = 'https://cloudbuild.googleapis.com/GoogleHostedWorker';
const CVE = 'CVE-2019-7577';

const release = keyPair();

function policyYaml(): string {
  const pem = release.publicKeyPem
    .trim()
    .split('\n')
    .map((l) => `        ${l}`)
    .join('\n');
  return `apiVersion: clearance/v1
environments:
  prod:
    mode: enforce
rules:
  vulnerabilities:
    maximumFixableSeverity: HIGH
    maximumUnfixableSeverity: CRITICAL
  provenance:
    trustedBuilders: ['${TRUSTED_BUILDER}*']
    missing: deny
trust:
  signers:
    - name: release
      publicKey: |
${pem}
    - name: acme-ci
      keyless:
        issuer: ${GITHUB_ISSUER}
        subject: https://github.com/acme/**
`;
}

function provenanceStatement(d: string, builder = TRUSTED_BUILDER) {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: `${AR}/${REPO}`, digest: { sha256: d.slice(7) } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://cloudbuild.googleapis.com/CloudBuildYaml@v0.1',
        externalParameters: { source: 'https://github.com/acme/api' },
      },
      runDetails: { builder: { id: builder } },
    },
  };
}

function openVex(d: string) {
  return {
    '@context': 'https://openvex.dev/ns/v0.2.0',
    '@id': `https://acme.example/vex/${d.slice(7, 19)}`,
    author: 'attacker@example.com',
    timestamp: new Date().toISOString(),
    version: 1,
    statements: [
      {
        vulnerability: { name: CVE },
        products: [{ '@id': refOf(d) }],
        status: 'not_affected',
        justification: 'vulnerable_code_not_in_execute_path',
      },
    ],
  };
}

describeWithEmulators('trust: each input only as far as its source', () => {
  let db: Firestore;
  let pubsub: PubSub;
  let grafeas: GrafeasServer;
  let issuer: IdTokenIssuer;
  let sigstore: TestSigstore;
  let env: Record<string, string>;
  let dir: string;
  const servers: Record<string, FunctionServer> = {};

  beforeAll(async () => {
    sigstore = await createTestSigstore();
    dir = mkdtempSync(join(tmpdir(), 'clearance-trust-'));
    const rootFile = join(dir, 'trusted_root.json');
    writeFileSync(rootFile, JSON.stringify(sigstore.trustedRoot));
    issuer = await startIdTokenIssuer();
    grafeas = await startGrafeasServer();
    env = ingestEnv('trust', {
      CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url,
      CLEARANCE_TRUSTED_ROOT_FILE: rootFile,
      CLEARANCE_REPORT_AUDIENCES: AUDIENCE,
      CLEARANCE_REPORT_ALLOWED_CALLERS: CI,
      CLEARANCE_CHECK_CERTS_URL: issuer.certsUrl,
    });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await storePolicy(db, {
      source: policyYaml(),
      format: 'yaml',
      appliedBy: 'test',
      now: new Date(Date.now() - 60_000),
    });
    await useSandboxRegistry();
    await import('../../functions/on-registry-push/index.js');
    await import('../../functions/on-scan-complete/index.js');
    await import('../../functions/ingest-webhook/index.js');
    await import('../../functions/ingest-report/index.js');
    await import('../../functions/reevaluate/index.js');
    for (const name of [
      'onRegistryPush',
      'onScanComplete',
      'ingestWebhook',
      'ingestReport',
      'reevaluate',
    ])
      servers[name] = await serveFunction(name);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.close()));
    await grafeas?.close();
    await issuer?.close();
    await Promise.all([db?.terminate(), pubsub?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const server = (name: string) => servers[name] as FunctionServer;
  const image = (id: string) => docData(db, `images/${id}`);
  const prod = async (id: string) =>
    ((await image(id))?.verdicts as Json | undefined)?.prod as Json;
  const ruleIds = (v: Json | undefined) =>
    ((v?.reasons as Json[] | undefined) ?? []).map((r) => `${r.level}:${r.ruleId}`);

  async function gcrPush(d: string, tag: string | null = null) {
    const { status } = await pushMessage(server('onRegistryPush'), 'gcr', {
      action: 'INSERT',
      digest: refOf(d),
      ...(tag ? { tag: `${AR}/${REPO}:${tag}` } : {}),
    });
    expect(status).toBe(204);
  }

  /** An Artifact Analysis scan of the image: one CRITICAL fixable finding, or none. */
  async function aaScan(d: string, critical: boolean) {
    const uri = `https://${refOf(d)}`;
    if (critical) {
      const vuln = fixture<Json>('containeranalysis/ca-occurrence-vulnerability-ubuntu.json');
      const v = vuln.vulnerability as Json;
      const issue = (v.packageIssue as Json[])[0] as Json;
      issue.fixedVersion = { kind: 'NORMAL', name: '2.0.9', fullName: '2.0.9' };
      issue.effectiveSeverity = 'CRITICAL';
      v.effectiveSeverity = 'CRITICAL';
      v.fixAvailable = true;
      grafeas.put({
        ...vuln,
        name: `projects/acme/occurrences/vuln-${d.slice(7, 19)}`,
        resourceUri: uri,
      });
    }
    const discovery = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    const name = `projects/acme/occurrences/discovery-${d.slice(7, 19)}`;
    grafeas.put({ ...discovery, name, resourceUri: uri, updateTime: new Date().toISOString() });
    const { status } = await pushMessage(
      server('onScanComplete'),
      'container-analysis-occurrences-v1',
      {
        name,
        kind: 'DISCOVERY',
        notificationTime: new Date().toISOString(),
      },
    );
    expect(status).toBe(204);
    await settleReevaluations();
  }

  /** Delivers what the functions published on the reevaluate topic to reevaluate, as the push subscription would. */
  async function settleReevaluations(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const messages = await pullAll(`${env.CLEARANCE_REEVALUATE_TOPIC}-pull`);
      if (messages.length === 0) return;
      for (const m of messages) {
        const { status } = await pushMessage(
          server('reevaluate'),
          env.CLEARANCE_REEVALUATE_TOPIC as string,
          m.data,
          { attributes: m.attributes },
        );
        expect(status).toBe(204);
      }
    }
  }

  async function upload(
    body: unknown,
    opts: { token?: string; image?: string } = {},
  ): Promise<{ status: number; body: Json; retryAfter: string | null }> {
    const query = opts.image ? `?image=${encodeURIComponent(opts.image)}` : '';
    const res = await fetch(`${server('ingestReport').url}/${query}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${opts.token ?? REPORT_TOKEN}`,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const answer = {
      status: res.status,
      body: (await res.json()) as Json,
      retryAfter: res.headers.get('retry-after'),
    };
    await settleReevaluations();
    return answer;
  }

  async function webhook(
    kind: 'distribution',
    body: unknown,
  ): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${server('ingestWebhook').url}/${kind}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${WEBHOOK_TOKENS[kind]}`,
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Json };
  }

  const verdictMessages = async (id: string) =>
    (await pullAll(`${env.CLEARANCE_VERDICTS_TOPIC}-pull`))
      .map((m) => m.data as Json)
      .filter((m) => m.imageId === id);

  // ── the attacks, holding only a webhook registry's token (and, beyond it, a report token) ──

  it('attack: unsigned SLSA provenance claiming a trusted builder does not clear provenance.missing', async () => {
    const d = digest('1');
    await gcrPush(d);
    await aaScan(d, false);
    expect(ruleIds(await prod(idOf(d)))).toContain('deny:provenance.missing');
    // The webhook token cannot upload at all.
    const withWebhookToken = await upload(provenanceStatement(d), {
      token: WEBHOOK_TOKENS.distribution,
      image: refOf(d),
    });
    expect(withWebhookToken.status).toBe(401);
    // An allowed uploader's unsigned claim is kept and shown, never obeyed.
    const unsigned = await upload(provenanceStatement(d), { image: refOf(d) });
    expect(unsigned).toMatchObject({ status: 202, body: { accepted: true, verified: false } });
    const v = await prod(idOf(d));
    expect(v.decision).toBe('deny');
    expect(ruleIds(v)).toEqual(
      expect.arrayContaining(['deny:provenance.missing', 'warn:evidence.unverified']),
    );
    expect((await image(idOf(d)))?.provenance).toBeNull();
    // Signed by a key the policy does not name: the same.
    const stranger = keyPair();
    const foreign = await upload(dsseEnvelope(provenanceStatement(d), stranger.privateKey), {
      image: refOf(d),
    });
    expect(foreign).toMatchObject({ status: 202, body: { verified: false } });
    expect((await image(idOf(d)))?.provenance).toBeNull();
  });

  it('attack: a self-written OpenVEX not_affected for a CRITICAL fixable CVE leaves the image denied and unattested', async () => {
    const d = digest('2');
    await gcrPush(d);
    await aaScan(d, true);
    await upload(dsseEnvelope(provenanceStatement(d), release.privateKey), { image: refOf(d) });
    expect((await prod(idOf(d))).decision).toBe('deny');
    await verdictMessages(idOf(d));
    expect((await upload(openVex(d), { token: WEBHOOK_TOKENS.distribution })).status).toBe(401);
    const res = await upload(openVex(d));
    expect(res).toMatchObject({ status: 202, body: { accepted: true, verified: false } });
    const v = await prod(idOf(d));
    expect(v.decision).toBe('deny');
    expect(ruleIds(v)).toEqual(
      expect.arrayContaining(['deny:vulnerabilities.fixable-severity', 'warn:evidence.unverified']),
    );
    // Nothing asked attestImage to sign it.
    expect((await verdictMessages(idOf(d))).filter((m) => m.decision === 'allow')).toEqual([]);
  });

  it('attack: an empty Trivy report for a digest the ledger never saw creates nothing (409, retry after the push); for a known one it does not satisfy requireScan', async () => {
    const empty = {
      SchemaVersion: 2,
      ArtifactName: 'x',
      ArtifactType: 'container_image',
      Results: [],
    };
    const unseen = digest('3');
    expect(
      (await upload(empty, { token: WEBHOOK_TOKENS.distribution, image: refOf(unseen) })).status,
    ).toBe(401);
    // A CI job often uploads before its push event is recorded: "retry", not a final refusal.
    const early = await upload(empty, { image: refOf(unseen) });
    expect(early.status).toBe(409);
    expect(early.retryAfter).toBe('5');
    expect(early.body).toMatchObject({ error: { code: 'image-not-recorded' } });
    expect(JSON.stringify(early.body)).toMatch(/not in the ledger yet/);
    expect(await image(idOf(unseen))).toBeUndefined();
    // Once the push is recorded the same upload is taken.
    await gcrPush(unseen);
    expect((await upload(empty, { image: refOf(unseen) })).status).toBe(202);

    const known = digest('4');
    await gcrPush(known);
    await upload(dsseEnvelope(provenanceStatement(known), release.privateKey), {
      image: refOf(known),
    });
    // The same bytes for another image are another event: the idempotency key is per image.
    const res = await upload(empty, { image: refOf(known) });
    expect(res.status).toBe(202);
    const rec = await image(idOf(known));
    // Recorded, with the scanner that produced it, but only Artifact Analysis counts by default.
    expect((rec?.scans as Json | undefined)?.trivy).toMatchObject({
      status: 'finished',
      uploader: 'bearer-token',
    });
    expect((rec?.verdicts as Json | undefined)?.prod).toMatchObject({ decision: 'pending' });
    expect((await verdictMessages(idOf(known))).filter((m) => m.decision === 'allow')).toEqual([]);
  });

  it('attack: a distribution webhook naming an Artifact Registry host, action delete, dated 2099: refused, nothing deleted', async () => {
    const d = digest('5');
    await gcrPush(d, 'v1');
    const res = await webhook('distribution', {
      events: [
        {
          id: 'forged-delete',
          timestamp: '2099-01-01T00:00:00Z',
          action: 'delete',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: d,
            repository: REPO,
          },
          request: { host: AR },
        },
      ],
    });
    expect(res).toMatchObject({ status: 202, body: { accepted: false } });
    expect(String(res.body.reason)).toMatch(/only from the gcr topic/);
    expect(await image(idOf(d))).toMatchObject({
      state: expect.not.stringMatching(/deleted/),
      deletedAt: null,
    });
  });

  it('attack: a push or delete dated 2099 on a registry the webhook may speak for neither pins a tag nor outlasts a later push', async () => {
    const host = 'registry.example.com';
    const repo = 'team/app';
    const [a, b] = [digest('6'), digest('7')];
    const event = (
      id: string,
      action: string,
      d: string,
      tag: string | null,
      timestamp: string,
    ) => ({
      id,
      timestamp,
      action,
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: d,
        repository: repo,
        ...(tag ? { tag } : {}),
      },
      request: { host },
    });
    expect(
      (
        await webhook('distribution', {
          events: [event('f1', 'push', a, 'prod', '2099-01-01T00:00:00Z')],
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await webhook('distribution', {
          events: [event('g1', 'push', b, 'prod', new Date().toISOString())],
        })
      ).status,
    ).toBe(200);
    const tag = await docData(db, `tags/${tagDocId(host, repo, 'prod')}`);
    const pushes = tag?.pushes as Record<string, string>;
    // Ordered by arrival: the genuine later push is the newer one.
    expect(Date.parse(pushes[b] as string)).toBeGreaterThanOrEqual(Date.parse(pushes[a] as string));
    expect(Date.parse(pushes[a] as string)).toBeLessThan(Date.parse('2098-01-01'));

    expect(
      (
        await webhook('distribution', {
          events: [event('f2', 'delete', b, null, '2099-01-01T00:00:00Z')],
        })
      ).status,
    ).toBe(200);
    expect(await image(idOf(b, host, repo))).toMatchObject({ state: 'deleted' });
    await new Promise((r) => setTimeout(r, 20));
    expect(
      (
        await webhook('distribution', {
          events: [event('g2', 'push', b, 'prod', new Date().toISOString())],
        })
      ).status,
    ).toBe(200);
    expect((await image(idOf(b, host, repo)))?.state).not.toBe('deleted');
  });

  // ── the allowed paths ──

  it('allowed: provenance signed with a policy key is recorded with its signer and counts', async () => {
    const d = digest('8');
    await gcrPush(d);
    await aaScan(d, false);
    const res = await upload(dsseEnvelope(provenanceStatement(d), release.privateKey), {
      image: refOf(d),
    });
    expect(res).toMatchObject({ status: 202, body: { verified: true, signer: 'release' } });
    expect((await image(idOf(d)))?.provenance).toMatchObject({
      builderId: TRUSTED_BUILDER,
      source: 'slsa',
      signer: 'release',
    });
    expect(await prod(idOf(d))).toMatchObject({ decision: 'allow' });
  });

  it('allowed: a keyless Sigstore bundle under the generated trusted root', async () => {
    const d = digest('9');
    await gcrPush(d);
    await aaScan(d, false);
    const bundle = await keylessBundleV03(
      sigstore,
      provenanceStatement(d),
      'https://github.com/acme/api/.github/workflows/release.yml@refs/heads/main',
    );
    const res = await upload(bundle, { image: refOf(d) });
    expect(res).toMatchObject({ status: 202, body: { verified: true, signer: 'acme-ci' } });
    expect(await prod(idOf(d))).toMatchObject({ decision: 'allow' });
    // The same statement from an identity the policy does not name is kept, unverified.
    const other = digest('a');
    await gcrPush(other);
    const stranger = await keylessBundleV03(
      sigstore,
      provenanceStatement(other),
      'https://github.com/mallory/api/.github/workflows/release.yml@refs/heads/main',
    );
    expect(await upload(stranger, { image: refOf(other) })).toMatchObject({
      status: 202,
      body: { verified: false },
    });
    expect((await image(idOf(other)))?.provenance).toBeNull();
  });

  it('allowed: an Artifact Analysis scan satisfies requireScan, and signed VEX from a policy signer clears a finding', async () => {
    const d = digest('b');
    await gcrPush(d);
    await upload(dsseEnvelope(provenanceStatement(d), release.privateKey), { image: refOf(d) });
    expect(await prod(idOf(d))).toMatchObject({ decision: 'pending' });
    await aaScan(d, true);
    expect((await image(idOf(d)))?.scans).toMatchObject({
      'artifact-analysis': { status: 'finished' },
    });
    expect(await prod(idOf(d))).toMatchObject({ decision: 'deny' });
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `${AR}/${REPO}`, digest: { sha256: d.slice(7) } }],
      predicateType: 'https://openvex.dev/ns/v0.2.0',
      predicate: openVex(d),
    };
    const res = await upload(dsseEnvelope(statement, release.privateKey));
    expect(res).toMatchObject({ status: 202, body: { verified: true, signer: 'release' } });
    expect(await prod(idOf(d))).toMatchObject({ decision: 'allow' });
  });

  it('allowed: a CI uploader with an ID token for ingestReport’s own audience', async () => {
    const d = digest('c');
    await gcrPush(d);
    const trivy = fixture<Json>('scanners/trivy-debian-buster.json');
    const token = issuer.mint({ aud: AUDIENCE, email: CI });
    const res = await upload(trivy, { token, image: refOf(d) });
    expect(res).toMatchObject({ status: 202, body: { accepted: true, format: 'trivy' } });
    expect(((await image(idOf(d)))?.scans as Json | undefined)?.trivy).toMatchObject({
      uploader: CI,
    });
    // A token minted for another function's audience, or for a caller not on the list, is refused.
    const otherAudience = issuer.mint({ aud: 'https://check.example', email: CI });
    expect((await upload(trivy, { token: otherAudience, image: refOf(d) })).status).toBe(401);
    const stranger = issuer.mint({ aud: AUDIENCE, email: 'x@acme.iam.gserviceaccount.com' });
    expect((await upload(trivy, { token: stranger, image: refOf(d) })).status).toBe(403);
  });
});
