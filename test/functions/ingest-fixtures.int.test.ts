// Every real-world gcr, occurrence, distribution, Harbor, Trivy, Grype and OpenVEX payload through the real functions into the ledger (or the dead letters).
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GrafeasServer, startGrafeasServer } from '../../scripts/lib/grafeas-server.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { externalDocId } from '../../shared/ledger/collections.js';
import { FirestoreLedger, tagDocId } from '../../shared/ledger/ledger-store.js';
import { fixture, fixtureText } from '../shared/real-world-fixtures.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators } from '../support/integration.js';
import {
  applyTestPolicy,
  auditOf,
  createEffectTopics,
  docData,
  ingestEnv,
  pullAll,
  pushMessage,
  REPORT_TOKEN,
  seedPushedImage,
  testDb,
  useSandboxRegistry,
  WEBHOOK_TOKENS,
} from './support.js';

type Json = Record<string, unknown>;
const ABCDE = `sha256:${'abcde'.repeat(12)}abcd`;
const GCR_TEST = imageDocId('gcr.io', 'sakajunquality-public/test', ABCDE);
const UBUNTU_URI =
  'https://us-west1-docker.pkg.dev/cloudy-demos/test/image@sha256:5ffd30269c7bde2e29453bb9b8d3618814b7034e37aef299e3c071acbb565911';
const UBUNTU_ID = imageDocId(
  'us-west1-docker.pkg.dev',
  'cloudy-demos/test/image',
  'sha256:5ffd30269c7bde2e29453bb9b8d3618814b7034e37aef299e3c071acbb565911',
);

describeWithEmulators('real-world payloads through the ingestion functions', () => {
  let db: Firestore;
  let pubsub: PubSub;
  let grafeas: GrafeasServer;
  let env: Record<string, string>;
  const servers: Record<string, FunctionServer> = {};

  beforeAll(async () => {
    grafeas = await startGrafeasServer();
    env = ingestEnv('fixtures', { CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await applyTestPolicy(db);
    await useSandboxRegistry();
    await import('../../functions/on-registry-push/index.js');
    await import('../../functions/on-scan-complete/index.js');
    await import('../../functions/ingest-webhook/index.js');
    await import('../../functions/ingest-report/index.js');
    for (const name of ['onRegistryPush', 'onScanComplete', 'ingestWebhook', 'ingestReport']) {
      servers[name] = await serveFunction(name);
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.close()));
    await grafeas?.close();
    await Promise.all([db?.terminate(), pubsub?.close()]);
  });

  const gcr = (data: unknown, opts: Parameters<typeof pushMessage>[3] = {}) =>
    pushMessage(servers.onRegistryPush as FunctionServer, 'gcr', data, opts);
  const scan = (data: unknown, opts: Parameters<typeof pushMessage>[3] = {}) =>
    pushMessage(
      servers.onScanComplete as FunctionServer,
      'container-analysis-occurrences-v1',
      data,
      opts,
    );
  /** A dead letter by its id (as a function answered it) or by its `source:messageId` key. */
  const deadLetter = (key: string) =>
    docData(db, `deadLetters/${/^[0-9a-f]{64}$/.test(key) ? key : externalDocId(key)}`);

  async function post(
    server: string,
    path: string,
    body: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${(servers[server] as FunctionServer).url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${server === 'ingestReport' ? REPORT_TOKEN : WEBHOOK_TOKENS[path.slice(1) as keyof typeof WEBHOOK_TOKENS]}`,
        ...headers,
      },
      body,
    });
    return { status: res.status, body: (await res.json()) as Json };
  }

  // ── gcr topic ──
  it('gcr-insert-digest-tag.json: a push recorded with its tag (the abcde… digest is valid sha256, so accepted)', async () => {
    const { status } = await gcr(fixture('gcr/gcr-insert-digest-tag.json'), {
      messageId: 'gcr-insert',
      publishTime: '2026-11-29T10:00:00.000Z',
    });
    expect(status).toBe(204);
    const image = await docData(db, `images/${GCR_TEST}`);
    expect(image).toMatchObject({
      registry: 'gcr.io',
      repository: 'sakajunquality-public/test',
      digest: ABCDE,
      tags: ['xxxx'],
      pushedAt: '2026-11-29T10:00:00.000Z',
      // the registry has no such manifest: recorded without registry details
      mediaType: null,
      state: 'pushed',
    });
    // requireScan: until a scan finishes the prod verdict is pending (not an alert-worthy deny)
    expect((image?.verdicts as Json | undefined)?.prod).toMatchObject({
      decision: 'pending',
      mode: 'enforce',
      reasons: [expect.objectContaining({ ruleId: 'vulnerabilities.scan-required' })],
    });
    const tag = await docData(
      db,
      `tags/${tagDocId('gcr.io', 'sakajunquality-public/test', 'xxxx')}`,
    );
    expect(tag?.pushes).toEqual({ [ABCDE]: '2026-11-29T10:00:00.000Z' });
    const audit = await auditOf(db, GCR_TEST);
    expect(audit.filter((a) => a.kind === 'registry-push')).toHaveLength(1);
    // nothing for attestImage or owners yet
    expect(await pullAll(`${env.CLEARANCE_VERDICTS_TOPIC}-pull`)).toEqual([]);
  });

  it('gcr-delete-digest.json: the same image marked deleted', async () => {
    const { status } = await gcr(fixture('gcr/gcr-delete-digest.json'), {
      messageId: 'gcr-delete-digest',
      publishTime: '2026-11-29T10:05:00.000Z',
    });
    expect(status).toBe(204);
    expect(await docData(db, `images/${GCR_TEST}`)).toMatchObject({
      deletedAt: '2026-11-29T10:05:00.000Z',
      state: 'deleted',
      tags: ['xxxx'],
    });
  });

  it('gcr-delete-tag.json: a tag-only delete stops the tag resolving, no image touched', async () => {
    const { status } = await gcr(fixture('gcr/gcr-delete-tag.json'), {
      messageId: 'gcr-delete-tag',
      publishTime: '2026-11-29T10:06:00.000Z',
    });
    expect(status).toBe(204);
    const tag = await docData(
      db,
      `tags/${tagDocId('gcr.io', 'sakajunquality-public/test', 'xxxxx')}`,
    );
    expect(tag).toMatchObject({
      tag: 'xxxxx',
      tagDeletes: { [externalDocId('gcr-delete-tag')]: '2026-11-29T10:06:00.000Z' },
    });
    expect((await db.collection('images').get()).size).toBe(1);
  });

  it('gcr-pull-insert-digest-tag.decoded.json: rejected ($PROJECT where the project belongs) and dead-lettered', async () => {
    const msg = fixture<{ message: { data: Json; messageId: string; publishTime: string } }>(
      'gcr/gcr-pull-insert-digest-tag.decoded.json',
    );
    const { status } = await gcr(msg.message.data, {
      messageId: msg.message.messageId,
      publishTime: msg.message.publishTime,
    });
    expect(status).toBe(204);
    const dl = await deadLetter('gcr:7309198396944430');
    expect(dl?.reason).toMatch(/unexpanded placeholder/);
    expect((dl?.problems as { path: string }[] | undefined)?.map((p) => p.path)).toEqual([
      'digest',
      'tag',
    ]);
    expect(JSON.parse(String(dl?.raw))).toEqual(msg.message.data);
    expect((await db.collection('images').get()).size).toBe(1);
  });

  it("Google's Pub/Sub test envelopes, posted verbatim: not gcr payloads, dead-lettered", async () => {
    const { projectId } = { projectId: process.env.GOOGLE_CLOUD_PROJECT };
    const res = await fetch(`${servers.onRegistryPush?.url}/projects/${projectId}/topics/gcr`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: fixtureText('pubsub/pubsub-push-envelope-attributes.json'),
    });
    expect(res.status).toBe(204);
    const dl = await deadLetter('gcr:message-id');
    expect(dl).toMatchObject({ raw: 'test message 3', attributes: { attr1: 'attr1-value' } });
    expect(dl?.reason).toMatch(/not JSON/);
    const res2 = await fetch(
      `${servers.onScanComplete?.url}/projects/${projectId}/topics/container-analysis-occurrences-v1`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: fixtureText('pubsub/pubsub-push-envelope-duplicated-fields.json'),
      },
    );
    expect(res2.status).toBe(204);
    expect((await deadLetter('container-analysis:message-id'))?.reason).toMatch(/not JSON/);
  });

  // ── container-analysis-occurrences-v1 ──
  it('ca-notification-occurrence.json: a VULNERABILITY notification is acknowledged and ignored without I/O', async () => {
    const before = grafeas.requests.length;
    const { status } = await scan(fixture('containeranalysis/ca-notification-occurrence.json'));
    expect(status).toBe(204);
    expect(grafeas.requests.length).toBe(before);
    expect(await docData(db, `images/${UBUNTU_ID}`)).toBeUndefined();
  });

  it('ca-notification-occurrence-pull-decoded.json: rejected ($PROJECT) and dead-lettered', async () => {
    const msg = fixture<{ message: { data: Json; messageId: string } }>(
      'containeranalysis/ca-notification-occurrence-pull-decoded.json',
    );
    expect((await scan(msg.message.data, { messageId: msg.message.messageId })).status).toBe(204);
    const dl = await deadLetter(`container-analysis:${msg.message.messageId}`);
    expect(dl?.reason).toMatch(/unexpanded placeholder/);
  });

  it('ca-occurrence-vulnerability-ubuntu.json: listed under a finished DISCOVERY of its image, its finding lands with the scan summary', async () => {
    grafeas.put(fixture('containeranalysis/ca-occurrence-vulnerability-ubuntu.json'));
    // The DISCOVERY occurrence fixture with this image's resourceUri (its own digest is a stand-in).
    const discovery = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    discovery.name = 'projects/cloudy-demos/occurrences/discovery-ubuntu';
    discovery.resourceUri = UBUNTU_URI;
    grafeas.put(discovery);
    const { status } = await scan({
      name: discovery.name,
      kind: 'DISCOVERY',
      notificationTime: '2023-08-23T16:57:35.000Z',
    });
    expect(status).toBe(204);
    const image = await docData(db, `images/${UBUNTU_ID}`);
    expect(image).toMatchObject({
      scan: {
        status: 'finished',
        scanner: 'artifact-analysis',
        completedAt: '2023-08-23T16:57:34.358Z',
        counts: { total: 1 },
      },
      // a scan before any push: the record exists with no push time
      pushedAt: null,
    });
    // one LOW unfixed finding is within the policy: allowed
    expect((image?.verdicts as Json | undefined)?.prod).toMatchObject({ decision: 'allow' });
    const findings = await new FirestoreLedger(db).getFindings({ id: UBUNTU_ID });
    expect(findings).toEqual([
      expect.objectContaining({
        id: 'CVE-2019-7577',
        package: 'libsdl2',
        severity: 'LOW',
        fixState: 'not-fixed',
        source: 'container-analysis',
      }),
    ]);
  });

  it('ca-occurrence-discovery.derived.json as served: rejected (its digest is a 42-hex stand-in) and dead-lettered', async () => {
    const name = grafeas.put(fixture('containeranalysis/ca-occurrence-discovery.derived.json'));
    const { messageId } = await scan({
      name,
      kind: 'DISCOVERY',
      notificationTime: '2023-08-23T16:57:35Z',
    });
    const dl = await deadLetter(`container-analysis:${messageId}`);
    expect(dl?.reason).toMatch(/64 hex characters, got 42/);
  });

  it('the gcloud describe outputs: their DISCOVERY occurrences carry cut or anonymised digests, dead-lettered', async () => {
    for (const [file, reason] of [
      ['containeranalysis/gcloud-describe-vulns-discovery-anonymized.json', /lower-case hex/],
      ['containeranalysis/gcloud-describe-vulns-discovery-debian12.json', /got 42/],
    ] as const) {
      const d = fixture<{
        discovery_summary: { discovery: Json[] };
        package_vulnerability_summary: { vulnerabilities: Record<string, Json[]> };
      }>(file);
      const disc = d.discovery_summary.discovery[0] as Json;
      const name = grafeas.put({
        ...disc,
        name: `projects/test/occurrences/${file.length}-${reason.source.length}`,
      });
      for (const v of Object.values(d.package_vulnerability_summary.vulnerabilities).flat())
        grafeas.put(v);
      const { status, messageId } = await scan({
        name,
        kind: 'DISCOVERY',
        notificationTime: '2024-01-01T00:00:00Z',
      });
      expect(status).toBe(204);
      expect((await deadLetter(`container-analysis:${messageId}`))?.reason).toMatch(reason);
    }
  });

  it('grafeas-docs-occurrence-vulnerability.json listed for an image: the retired v1beta1 occurrence is dead-lettered with its raw JSON, the rest of the scan is kept', async () => {
    const uri = `https://us-docker.pkg.dev/p/r/legacy@sha256:${'7'.repeat(64)}`;
    grafeas.put({
      ...fixture<Json>('containeranalysis/grafeas-docs-occurrence-vulnerability.json'),
      // filed under the scanned image's project and resource, as the API would list it
      name: 'projects/p/occurrences/legacy-vulnerability',
      resourceUri: uri,
    });
    const discovery = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    const name = grafeas.put({
      ...discovery,
      name: 'projects/p/occurrences/legacy-discovery',
      resourceUri: uri,
    });
    const { messageId } = await scan({
      name,
      kind: 'DISCOVERY',
      notificationTime: '2024-01-01T00:00:00Z',
    });
    const dl = await deadLetter(
      `container-analysis-occurrence:${messageId}:projects/p/occurrences/legacy-vulnerability`,
    );
    expect(dl?.reason).toMatch(/retired Grafeas v1beta1 form/);
    expect(JSON.parse(String(dl?.raw)).name).toBe('projects/p/occurrences/legacy-vulnerability');
    const image = await docData(
      db,
      `images/${imageDocId('us-docker.pkg.dev', 'p/r/legacy', `sha256:${'7'.repeat(64)}`)}`,
    );
    expect(image?.scan).toMatchObject({ status: 'finished', counts: { total: 0 } });
  });

  it('notifications of the ATTESTATION and BUILD occurrence fixtures (Tekton Chains, Cloud Build SLSA v0.1 and v1): acknowledged and ignored (not scan results)', async () => {
    const before = (await db.collection('images').get()).size;
    const occurrences = [
      fixture<{ occurrences: Json[] }>('containeranalysis/ca-list-occurrences-attestation.json')
        .occurrences[0],
      fixture<{ occurrences: Json[] }>(
        'containeranalysis/ca-list-occurrences-build-tekton-chains.json',
      ).occurrences[0],
      ...['v0.1', 'v1'].map(
        (v) =>
          fixture<{ provenance_summary: { provenance: Json[] } }>(
            `containeranalysis/ca-build-occurrence-slsa-${v}-cloudbuild.json`,
          ).provenance_summary.provenance[0],
      ),
    ] as Json[];
    for (const occ of occurrences) {
      grafeas.put(occ);
      const { status, messageId } = await scan({
        name: occ.name,
        kind: occ.kind,
        notificationTime: '2024-01-01T00:00:00Z',
      });
      expect(status).toBe(204);
      expect(await deadLetter(`container-analysis:${messageId}`)).toBeUndefined();
    }
    expect((await db.collection('images').get()).size).toBe(before);
  });

  it('grafeas-docs-occurrence-build.json: its name has a project id no project can have (occurrence_example), dead-lettered', async () => {
    const occ = fixture<Json>('containeranalysis/grafeas-docs-occurrence-build.json');
    const { status, messageId } = await scan({ name: occ.name, kind: occ.kind });
    expect(status).toBe(204);
    expect((await deadLetter(`container-analysis:${messageId}`))?.reason).toMatch(
      /must be projects\/P\/occurrences\/ID/,
    );
  });

  // ── other registries (HTTP webhooks) ──
  it('distribution-notification-push-envelope.json: the manifest push recorded, the blob pushes ignored', async () => {
    const res = await post(
      'ingestWebhook',
      '/distribution',
      fixtureText('registry/distribution-notification-push-envelope.json'),
      {
        'content-type': 'application/vnd.docker.distribution.events.v2+json',
      },
    );
    expect(res).toMatchObject({
      status: 200,
      body: { accepted: true, events: 1, outcomes: ['applied'] },
    });
    const id = imageDocId(
      'registrycluster.local',
      'library/test',
      'sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf',
    );
    const image = await docData(db, `images/${id}`);
    expect(image).toMatchObject({ tags: [], state: 'pushed' });
    // Ordered by arrival; the payload's 2006 timestamp is only a claim, clamped to an hour before it.
    const at = Date.parse(String(image?.pushedAt));
    expect(Math.abs(at - Date.now())).toBeLessThan(120_000);
    expect(await auditOf(db, id)).toContainEqual(
      expect.objectContaining({
        kind: 'registry-push',
        source: 'webhook-distribution',
        messageId: 'asdf-asdf-asdf-asdf-0',
        claimedAt: new Date(at - 3_600_000).toISOString(),
        clamped: true,
      }),
    );
  });

  it('distribution-notification-pull.json: a pull is accepted and changes nothing', async () => {
    const before = (await db.collection('images').get()).size;
    const res = await post(
      'ingestWebhook',
      '/distribution',
      fixtureText('registry/distribution-notification-pull.json'),
    );
    expect(res).toMatchObject({ status: 200, body: { accepted: true, events: 0 } });
    expect((await db.collection('images').get()).size).toBe(before);
  });

  it('harbor-push-artifact.json: a push with its tag', async () => {
    const res = await post(
      'ingestWebhook',
      '/harbor',
      fixtureText('registry/harbor-push-artifact.json'),
    );
    expect(res).toMatchObject({
      status: 200,
      body: { accepted: true, events: 1, outcomes: ['applied'] },
    });
    const id = imageDocId(
      'harbor.example.com',
      'example/test',
      'sha256:d72f37f783ed6a8d58ac70b4db052707d1ec9d4ea010ef5ccd84652faf9ed844',
    );
    const image = await docData(db, `images/${id}`);
    expect(image).toMatchObject({ tags: ['latest'] });
    expect(Math.abs(Date.parse(String(image?.pushedAt)) - Date.now())).toBeLessThan(120_000);
  });

  it('harbor-scanning-completed.json: kept in the audit trail, not as a verdict input', async () => {
    const res = await post(
      'ingestWebhook',
      '/harbor',
      fixtureText('registry/harbor-scanning-completed.json'),
    );
    expect(res).toMatchObject({ status: 200, body: { accepted: true, scans: 1 } });
    const id = imageDocId(
      'harbor.xxx.xxxx.com',
      'test/alpine/helm',
      'sha256:b50334049354ed01330403212605dce2f4676a4e787ed113506861d9cf3c5424',
    );
    expect(await docData(db, `images/${id}`)).toMatchObject({ scan: { status: 'none' }, tags: [] });
    expect(await auditOf(db, id)).toEqual([
      expect.objectContaining({
        kind: 'harbor-scan-completed',
        total: 5,
        scanner: 'Trivy v0.20.1',
        source: 'harbor',
      }),
    ]);
  });

  // ── CI scanner reports ──
  const IMG = `us-docker.pkg.dev/acme/apps/api@sha256:${'c'.repeat(64)}`;
  const IMG_ID = imageDocId('us-docker.pkg.dev', 'acme/apps/api', `sha256:${'c'.repeat(64)}`);

  it('trivy-debian-buster.json: findings stored, CRITICAL fixable denies', async () => {
    // Reports count only for images the ledger knows.
    await seedPushedImage(IMG);
    const res = await post(
      'ingestReport',
      `/?image=${encodeURIComponent(IMG)}`,
      fixtureText('scanners/trivy-debian-buster.json'),
    );
    expect(res).toMatchObject({
      status: 202,
      body: { accepted: true, format: 'trivy', findings: 2, outcome: 'applied', image: IMG },
    });
    const image = await docData(db, `images/${IMG_ID}`);
    expect(image).toMatchObject({
      scan: { status: 'finished', scanner: 'trivy dev', counts: { total: 2 } },
      state: 'denied',
    });
    // the denial is published for attestImage and the owners
    const verdicts = await pullAll(`${env.CLEARANCE_VERDICTS_TOPIC}-pull`);
    expect(verdicts.map((m) => m.data).filter((d) => (d as Json).imageId === IMG_ID)).toEqual([
      { imageId: IMG_ID, cause: 'verdict-changed', policyHash: expect.stringMatching(/^sha256:/) },
    ]);
    const alerts = await pullAll(`${env.CLEARANCE_ALERTS_TOPIC}-pull`);
    expect(alerts.map((m) => m.attributes.type)).toEqual(['image-denied']);
    expect((alerts[0]?.data as Json | undefined)?.findings).toContainEqual(
      expect.objectContaining({ id: 'CVE-2019-18224', fixedVersion: '2.0.5-1+deb10u1' }),
    );
    expect(
      (await new FirestoreLedger(db).getFindings({ id: IMG_ID })).map((f) => f.id).sort(),
    ).toEqual(['CVE-2019-18224', 'CVE-2019-18276']);
  });

  it('trivy-debian-10-node-image-all-statuses.json: the newer Trivy scan replaces the older one', async () => {
    const res = await post(
      'ingestReport',
      `/?image=${encodeURIComponent(IMG)}`,
      fixtureText('scanners/trivy-debian-10-node-image-all-statuses.json'),
    );
    expect(res.status).toBe(202);
    const total = res.body.findings as number;
    expect(total).toBeGreaterThan(2);
    const image = await docData(db, `images/${IMG_ID}`);
    expect((image?.scan as Json | undefined)?.counts).toMatchObject({ total });
    // The older scan's findings are gone: the source holds exactly the newer scan's.
    const stored = await new FirestoreLedger(db).getFindings({ id: IMG_ID }, ['trivy']);
    expect(stored.length).toBe(total);
    expect(stored.map((f) => f.id)).not.toContain('CVE-2019-18224');
  });

  it('grype-debian-image.json and the many-vulns Grype report: stored beside the Trivy findings', async () => {
    for (const file of [
      'scanners/grype-debian-image.json',
      'scanners/grype-debian-image-many-vulns-incl-CVE-2005-2541.json',
    ]) {
      const res = await post(
        'ingestReport',
        `/?image=${encodeURIComponent(IMG)}`,
        fixtureText(file),
      );
      expect(res).toMatchObject({ status: 202, body: { format: 'grype', outcome: 'applied' } });
    }
    const image = await docData(db, `images/${IMG_ID}`);
    expect(Object.keys((image?.scanRefs ?? {}) as Json).sort()).toEqual(['grype', 'trivy']);
    const grype = await new FirestoreLedger(db).getFindings({ id: IMG_ID }, ['grype']);
    // the second Grype report replaced the first: 327 distinct matches
    expect(grype.length).toBe(327);
    expect(grype.some((f) => f.id === 'CVE-2005-2541')).toBe(true);
    // and the fleet query finds the image by that CVE
    expect(await new FirestoreLedger(db).imagesWithVulnerability('CVE-2005-2541')).toContain(
      IMG_ID,
    );
  });

  it('the many-vulns Grype report without ?image: it names no repository digest, so 400 and dead-lettered', async () => {
    const raw = fixtureText('scanners/grype-debian-image-many-vulns-incl-CVE-2005-2541.json');
    const res = await post('ingestReport', '/', raw);
    expect(res.status).toBe(400);
    const error = res.body.error as Json;
    expect(error.message).toMatch(/cannot tell which image/);
    // the report is kept (its first 256 KiB: it is larger than that)
    const dl = await deadLetter(String(error.deadLetter));
    expect(dl).toMatchObject({ truncated: true, rawBytes: Buffer.byteLength(raw) });
    expect(raw.startsWith(String(dl?.raw))).toBe(true);
  });

  it('cosign-vuln-predicate.json: rejected (scanner.result is null: no findings to record), 400 with the issues and dead-lettered', async () => {
    const raw = fixtureText('scanners/cosign-vuln-predicate.json');
    const res = await post('ingestReport', `/?image=${encodeURIComponent(IMG)}`, raw);
    expect(res.status).toBe(400);
    const error = res.body.error as Json;
    expect(error.message).toMatch(/scanner\.result is empty/);
    const dl = await deadLetter(String(error.deadLetter));
    expect(dl).toMatchObject({
      source: 'report',
      raw,
      attributes: { caller: 'bearer-token', image: IMG },
    });
  });

  it('openvex-v0.2.0-alpine-openssl.json and -under-investigation.json: statements stored for evaluation', async () => {
    for (const [file, n] of [
      ['vex/openvex-v0.2.0-alpine-openssl.json', 5],
      ['vex/openvex-v0.2.0-under-investigation.json', 1],
    ] as const) {
      const res = await post('ingestReport', '/', fixtureText(file));
      expect(res).toMatchObject({ status: 202, body: { format: 'openvex', vex: n, findings: 0 } });
    }
    const vex = await db.collection('vex').get();
    expect(vex.docs.map((d) => d.get('vulnerability')).sort()).toEqual([
      'CVE-2023-1255',
      'CVE-2023-2650',
      'CVE-2023-2975',
      'CVE-2023-3446',
      'CVE-2023-3817',
      'CVE-9876-54321',
    ]);
  });
});
