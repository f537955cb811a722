// onScanComplete with Google's Container Analysis client in REST fallback mode against a local server: 1,200 occurrences over several pages, failed scans, and a rescan.
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GrafeasServer, startGrafeasServer } from '../../scripts/lib/grafeas-server.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { fixture } from '../shared/real-world-fixtures.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators } from '../support/integration.js';
import {
  applyTestPolicy,
  createEffectTopics,
  docData,
  ingestEnv,
  pullAll,
  pushMessage,
  testDb,
} from './support.js';

type Json = Record<string, unknown>;
const DIGEST = `sha256:${'9'.repeat(64)}`;
const URI = `https://europe-docker.pkg.dev/p/r/big@${DIGEST}`;
const ID = imageDocId('europe-docker.pkg.dev', 'p/r/big', DIGEST);

describeWithEmulators('onScanComplete reading occurrences through the real client', () => {
  let db: Firestore;
  let pubsub: PubSub;
  let grafeas: GrafeasServer;
  let server: FunctionServer;
  let env: Record<string, string>;

  /** The ubuntu fixture occurrence as CVE number `n` of this image (unfixed unless `fixedIn`). */
  function vulnerability(n: number, severity = 'LOW', fixedIn?: string): Json {
    const o = fixture<Json>('containeranalysis/ca-occurrence-vulnerability-ubuntu.json');
    const v = o.vulnerability as Json;
    const id = `CVE-2024-${String(10000 + n)}`;
    return {
      ...o,
      name: `projects/p/occurrences/vuln-${n}`,
      resourceUri: URI,
      noteName: `projects/goog-vulnz/notes/${id}`,
      vulnerability: {
        ...v,
        shortDescription: id,
        effectiveSeverity: severity,
        packageIssue: (v.packageIssue as Json[]).map((p) => ({
          ...p,
          effectiveSeverity: severity,
          ...(fixedIn
            ? {
                fixedVersion: { kind: 'NORMAL', name: fixedIn, fullName: fixedIn },
                fixAvailable: true,
              }
            : {}),
        })),
      },
    };
  }

  function discovery(name: string, status: string, updateTime: string): string {
    const d = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    return grafeas.put({
      ...d,
      name,
      resourceUri: URI,
      updateTime,
      discovery: { ...(d.discovery as Json), analysisStatus: status },
    });
  }

  beforeAll(async () => {
    grafeas = await startGrafeasServer();
    env = ingestEnv('paging', { CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await applyTestPolicy(db);
    await import('../../functions/on-scan-complete/index.js');
    server = await serveFunction('onScanComplete');
  });
  afterAll(async () => {
    await Promise.all([server?.close(), grafeas?.close()]);
    await Promise.all([db?.terminate(), pubsub?.close()]);
  });

  it('1,200 VULNERABILITY occurrences over several pages all land as findings', async () => {
    for (let i = 0; i < 1200; i++) grafeas.put(vulnerability(i));
    // another image's occurrence must not be listed
    grafeas.put({
      ...vulnerability(5000),
      name: 'projects/p/occurrences/other',
      resourceUri: `https://europe-docker.pkg.dev/p/r/other@${DIGEST}`,
    });
    const name = discovery(
      'projects/p/occurrences/discovery-1',
      'FINISHED_SUCCESS',
      '2026-11-29T10:00:00Z',
    );
    const { status } = await pushMessage(server, 'occ', { name, kind: 'DISCOVERY' });
    expect(status).toBe(204);
    const lists = grafeas.requests.filter(
      (r) => r.method === 'GET' && r.path === '/v1/projects/p/occurrences',
    );
    // pageSize 1000: two pages, the second asked for with the first's token
    expect(lists.length).toBeGreaterThanOrEqual(2);
    expect(lists.every((r) => r.authorization === 'Bearer local-token')).toBe(true);
    const image = await docData(db, `images/${ID}`);
    expect(image).toMatchObject({
      scan: { status: 'finished', counts: { total: 1200, bySeverity: { LOW: 1200 } } },
      scanRefs: { 'container-analysis': expect.stringMatching(/^2023-08-23T16:57:34.358Z#/) },
    });
    expect((image?.verdicts as Json | undefined)?.prod).toMatchObject({ decision: 'allow' });
    const findings = await new FirestoreLedger(db).getFindings({ id: ID });
    expect(new Set(findings.map((f) => f.id)).size).toBe(1200);
    // 1,200 findings take two chunk documents (at most 1,000 to a chunk).
    expect((await db.collection(`images/${ID}/findingChunks`).count().get()).data().count).toBe(2);
  });

  it('a rescan with fewer findings, one CRITICAL with a fix, replaces the old ones and flips the verdict', async () => {
    for (let i = 0; i < 1200; i++) grafeas.occurrences.delete(`projects/p/occurrences/vuln-${i}`);
    for (let i = 0; i < 3; i++)
      grafeas.put(i === 0 ? vulnerability(i, 'CRITICAL', '2.0.9') : vulnerability(i));
    const d = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    const name = grafeas.put({
      ...d,
      name: 'projects/p/occurrences/discovery-2',
      resourceUri: URI,
      updateTime: '2026-11-29T11:00:00Z',
      discovery: { ...(d.discovery as Json), lastScanTime: '2026-11-29T11:00:00Z' },
    });
    expect((await pushMessage(server, 'occ', { name, kind: 'DISCOVERY' })).status).toBe(204);
    const image = await docData(db, `images/${ID}`);
    expect(image).toMatchObject({ scan: { counts: { total: 3 } }, state: 'denied' });
    const findings = await new FirestoreLedger(db).getFindings({ id: ID });
    expect(findings.map((f) => f.id).sort()).toEqual([
      'CVE-2024-10000',
      'CVE-2024-10001',
      'CVE-2024-10002',
    ]);
    const alerts = await pullAll(`${env.CLEARANCE_ALERTS_TOPIC}-pull`);
    expect(alerts.map((a) => a.attributes.type)).toContain('image-denied');
  });

  it('a failed scan is recorded as such and alerts the owners', async () => {
    const other = `sha256:${'8'.repeat(64)}`;
    const d = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    const name = grafeas.put({
      ...d,
      name: 'projects/p/occurrences/discovery-failed',
      resourceUri: `https://europe-docker.pkg.dev/p/r/failing@${other}`,
      discovery: {
        analysisStatus: 'FINISHED_UNSUPPORTED',
        analysisStatusError: { message: 'unsupported OS' },
      },
    });
    expect((await pushMessage(server, 'occ', { name, kind: 'DISCOVERY' })).status).toBe(204);
    const image = await docData(
      db,
      `images/${imageDocId('europe-docker.pkg.dev', 'p/r/failing', other)}`,
    );
    expect(image).toMatchObject({
      scan: {
        status: 'failed',
        failureReason: expect.stringMatching(/FINISHED_UNSUPPORTED: unsupported OS/),
      },
    });
    const alerts = await pullAll(`${env.CLEARANCE_ALERTS_TOPIC}-pull`);
    // One event, one alert: the failure, not also a denial for it.
    expect(alerts.map((a) => a.attributes.type)).toEqual(['scan-failed']);
  });
});
