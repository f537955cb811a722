// Idempotency, concurrency and event order through the real functions: duplicates, 50 concurrent tags via the Pub/Sub emulator, scan-before-push, DELETE-before-INSERT.
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GrafeasServer, startGrafeasServer } from '../../scripts/lib/grafeas-server.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { externalDocId } from '../../shared/ledger/collections.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { fixture } from '../shared/real-world-fixtures.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';
import {
  applyTestPolicy,
  auditOf,
  createEffectTopics,
  docData,
  ingestEnv,
  pushMessage,
  testDb,
  useSandboxRegistry,
} from './support.js';

type Json = Record<string, unknown>;
const REGISTRY = 'us-docker.pkg.dev';
const digestOf = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

describeWithEmulators('ingestion order, duplicates and concurrency', () => {
  const projectId = emulators?.projectId ?? 'none';
  let db: Firestore;
  let pubsub: PubSub;
  let grafeas: GrafeasServer;
  let push: FunctionServer;
  let scanServer: FunctionServer;

  beforeAll(async () => {
    grafeas = await startGrafeasServer();
    const env = ingestEnv('ordering', { CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await applyTestPolicy(db);
    await useSandboxRegistry();
    await import('../../functions/on-registry-push/index.js');
    await import('../../functions/on-scan-complete/index.js');
    push = await serveFunction('onRegistryPush');
    scanServer = await serveFunction('onScanComplete');
  });
  afterAll(async () => {
    await Promise.all([push?.close(), scanServer?.close(), grafeas?.close()]);
    await Promise.all([db?.terminate(), pubsub?.close()]);
  });

  const gcrInsert = (repo: string, digest: string, tag?: string) => ({
    action: 'INSERT',
    digest: `${REGISTRY}/${repo}@${digest}`,
    ...(tag ? { tag: `${REGISTRY}/${repo}:${tag}` } : {}),
  });

  it('a gcr message published to the topic reaches the ledger through a push subscription', async () => {
    const topic = `gcr-ordering-${process.pid}`;
    const [t] = await pubsub.createTopic(topic);
    await t.createSubscription(`${topic}-push`, {
      pushConfig: { pushEndpoint: `${push.url}/projects/${projectId}/topics/gcr` },
      ackDeadlineSeconds: 10,
      retryPolicy: { minimumBackoff: { seconds: 0 }, maximumBackoff: { seconds: 1 } },
    });
    const id = imageDocId(REGISTRY, 'p/r/via-pubsub', digestOf(1));
    const messageId = await t.publishMessage({
      json: gcrInsert('p/r/via-pubsub', digestOf(1), 'v1'),
    });
    const image = await eventually(() => docData(db, `images/${id}`), 20_000, 'the pushed image');
    expect(image).toMatchObject({ tags: ['v1'], state: 'pushed' });
    // One entry for the event, which records the first verdict it caused (pending a scan), and
    // one for the registry read after it (the sandbox holds no pkg.dev image: unreadable).
    const audit = await eventually(
      async () => {
        const a = await auditOf(db, id);
        return a.length === 2 ? a : undefined;
      },
      20_000,
      'the push and its registry read',
    );
    expect(audit.sort((x, y) => String(x.kind).localeCompare(String(y.kind)))).toEqual([
      expect.objectContaining({
        kind: 'registry-push',
        source: 'gcr',
        messageId,
        verdictChanges: [{ environment: 'prod', from: null, to: 'pending' }],
      }),
      expect.objectContaining({ kind: 'registry-unreadable', source: 'enrichment', attempts: 1 }),
    ]);
    await t.subscription(`${topic}-push`).delete();
  });

  it('three deliveries of the same message (in turn, then at once) leave one audit entry', async () => {
    const id = imageDocId(REGISTRY, 'p/r/dup', digestOf(2));
    const body = gcrInsert('p/r/dup', digestOf(2), 'v1');
    const opts = { messageId: 'dup-1', publishTime: '2026-11-29T10:00:00.000Z' };
    for (let i = 0; i < 3; i++)
      expect((await pushMessage(push, 'gcr', body, opts)).status).toBe(204);
    const statuses = await Promise.all(
      [1, 2, 3].map(() =>
        pushMessage(push, 'gcr', body, { ...opts, messageId: 'dup-2' }).then((r) => r.status),
      ),
    );
    // a delivery that lost a transaction race may answer 5xx (Pub/Sub would redeliver): redeliver it
    for (const s of statuses)
      if (s !== 204)
        expect((await pushMessage(push, 'gcr', body, { ...opts, messageId: 'dup-2' })).status).toBe(
          204,
        );
    const audit = (await auditOf(db, id)).filter((a) => a.kind === 'registry-push');
    expect(audit.map((a) => a.messageId).sort()).toEqual(['dup-1', 'dup-2']);
    const image = await docData(db, `images/${id}`);
    // two applied events (the second adds nothing new but is recorded once), and one registry
    // read (unreadable in the sandbox, final: the second push does not read again)
    expect(image).toMatchObject({ tags: ['v1'], version: 3, enrichment: { status: 'failed' } });
    expect(await docData(db, `events/${externalDocId('gcr:dup-1')}`)).toMatchObject({
      messageId: 'dup-1',
    });
  });

  it('50 concurrent deliveries adding different tags to one digest leave all 50 tags', async () => {
    const topic = `gcr-tags-${process.pid}`;
    const [t] = await pubsub.createTopic(topic);
    await t.createSubscription(`${topic}-push`, {
      pushConfig: { pushEndpoint: `${push.url}/projects/${projectId}/topics/gcr` },
      ackDeadlineSeconds: 10,
      retryPolicy: { minimumBackoff: { seconds: 0 }, maximumBackoff: { seconds: 1 } },
    });
    const digest = digestOf(3);
    const id = imageDocId(REGISTRY, 'p/r/tags', digest);
    const tags = Array.from({ length: 50 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    await Promise.all(
      tags.map((tag) => t.publishMessage({ json: gcrInsert('p/r/tags', digest, tag) })),
    );
    const image = await eventually(
      async () => {
        const d = await docData(db, `images/${id}`);
        return (d?.tags as string[] | undefined)?.length === 50 ? d : undefined;
      },
      60_000,
      'all 50 tags',
    );
    expect(image?.tags).toEqual(tags);
    // 50 pushes and one registry read (final, whichever delivery made it)
    await eventually(
      async () => ((await docData(db, `images/${id}`))?.version === 51 ? true : undefined),
      20_000,
      'the registry read after the pushes',
    );
    const audit = await auditOf(db, id);
    expect(audit.filter((a) => a.kind === 'registry-push')).toHaveLength(50);
    const tagDocs = await db.collection('tags').where('repository', '==', 'p/r/tags').get();
    expect(tagDocs.size).toBe(50);
    await t.subscription(`${topic}-push`).delete();
  }, 90_000);

  /** A finished scan of one image: its DISCOVERY occurrence and one vulnerability (from the ubuntu fixture). */
  function serveScan(repo: string, digest: string): string {
    const uri = `https://${REGISTRY}/${repo}@${digest}`;
    const vuln = fixture<Json>('containeranalysis/ca-occurrence-vulnerability-ubuntu.json');
    grafeas.put({
      ...vuln,
      name: `projects/p/occurrences/vuln-${repo.replaceAll('/', '-')}`,
      resourceUri: uri,
    });
    const discovery = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    return grafeas.put({
      ...discovery,
      name: `projects/p/occurrences/discovery-${repo.replaceAll('/', '-')}`,
      resourceUri: uri,
    });
  }

  /** The record without what necessarily differs between two images (identity, wall-clock times). */
  function comparable(rec: Json | undefined): Json {
    const { id: _id, repository: _r, digest: _d, updatedAt: _u, verdicts, ...rest } = rec ?? {};
    // When the registry was read is the clock's, not the events'.
    const { lastAttemptAt: _l, nextAttemptAt: _n, ...enrichment } = (rest.enrichment ?? {}) as Json;
    return {
      ...rest,
      enrichment,
      verdicts: Object.fromEntries(
        Object.entries(verdicts as Record<string, Json>).map(([k, v]) => {
          const { evaluatedAt: _e, ...keep } = v;
          return [k, keep];
        }),
      ),
    };
  }

  async function findingsOf(id: string): Promise<Json[]> {
    const findings = await new FirestoreLedger(db).getFindings({ id });
    return findings.sort((a, b) => a.id.localeCompare(b.id));
  }

  it('scan-before-push converges to the same documents as push-then-scan', async () => {
    const digest = digestOf(4);
    const natural = { repo: 'p/r/natural', id: imageDocId(REGISTRY, 'p/r/natural', digest) };
    const reversed = { repo: 'p/r/reversed', id: imageDocId(REGISTRY, 'p/r/reversed', digest) };
    const pushAt = '2026-11-29T10:00:00.000Z';
    const scanOf = (repo: string) => ({
      name: serveScan(repo, digest),
      kind: 'DISCOVERY',
      notificationTime: '2026-11-29T10:01:00Z',
    });
    // natural order: push, then the scan completes
    expect(
      (
        await pushMessage(push, 'gcr', gcrInsert(natural.repo, digest, 'v1'), {
          publishTime: pushAt,
        })
      ).status,
    ).toBe(204);
    expect((await pushMessage(scanServer, 'occ', scanOf(natural.repo))).status).toBe(204);
    // reversed: the scan's notification arrives first
    expect((await pushMessage(scanServer, 'occ', scanOf(reversed.repo))).status).toBe(204);
    expect(
      (
        await pushMessage(push, 'gcr', gcrInsert(reversed.repo, digest, 'v1'), {
          publishTime: pushAt,
        })
      ).status,
    ).toBe(204);

    const a = await docData(db, `images/${natural.id}`);
    const b = await docData(db, `images/${reversed.id}`);
    expect(a).toMatchObject({
      tags: ['v1'],
      pushedAt: pushAt,
      scan: { status: 'finished' },
      state: 'evaluated',
    });
    expect((a?.verdicts as Json | undefined)?.prod).toMatchObject({ decision: 'allow' });
    expect(comparable(b)).toEqual(comparable(a));
    expect((await findingsOf(natural.id)).length).toBeGreaterThan(0);
    expect(await findingsOf(reversed.id)).toEqual(await findingsOf(natural.id));
  });

  it('DELETE-before-INSERT converges to the same documents as INSERT-then-DELETE', async () => {
    const digest = digestOf(5);
    const natural = {
      repo: 'p/r/del-natural',
      id: imageDocId(REGISTRY, 'p/r/del-natural', digest),
    };
    const reversed = {
      repo: 'p/r/del-reversed',
      id: imageDocId(REGISTRY, 'p/r/del-reversed', digest),
    };
    const insertAt = '2026-11-29T10:00:00.000Z';
    const deleteAt = '2026-11-29T10:10:00.000Z';
    const del = (repo: string) => ({ action: 'DELETE', digest: `${REGISTRY}/${repo}@${digest}` });
    await pushMessage(push, 'gcr', gcrInsert(natural.repo, digest, 'v1'), {
      publishTime: insertAt,
    });
    await pushMessage(push, 'gcr', del(natural.repo), { publishTime: deleteAt });
    // reversed: the delete (published later) is delivered first
    await pushMessage(push, 'gcr', del(reversed.repo), { publishTime: deleteAt });
    expect(await docData(db, `images/${reversed.id}`)).toMatchObject({
      state: 'deleted',
      pushedAt: null,
    });
    await pushMessage(push, 'gcr', gcrInsert(reversed.repo, digest, 'v1'), {
      publishTime: insertAt,
    });

    const a = await docData(db, `images/${natural.id}`);
    const b = await docData(db, `images/${reversed.id}`);
    expect(a).toMatchObject({
      state: 'deleted',
      pushedAt: insertAt,
      deletedAt: deleteAt,
      tags: ['v1'],
    });
    expect(comparable(b)).toEqual(comparable(a));
  });
});
