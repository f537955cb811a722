// Malformed input of every kind the ingestion functions receive: each is acknowledged (2xx), dead-lettered with its reason, and never reaches the ledger.
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type GrafeasServer, startGrafeasServer } from '../../scripts/lib/grafeas-server.js';
import { externalDocId } from '../../shared/ledger/collections.js';
import { fixture, fixtureText } from '../shared/real-world-fixtures.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';
import {
  createEffectTopics,
  docData,
  ingestEnv,
  pushMessage,
  testDb,
  useSandboxRegistry,
  WEBHOOK_TOKENS,
} from './support.js';

type Json = Record<string, unknown>;
const D = `sha256:${'1'.repeat(64)}`;
const IMG = `us-docker.pkg.dev/p/r/img@${D}`;

interface Sent {
  status: number;
  /** The dead letter's id where the function tells it (messageId-based, or in the webhook's answer). */
  deadLetter?: string;
}

describeWithEmulators('malformed input is dead-lettered and acknowledged', () => {
  const projectId = emulators?.projectId ?? 'none';
  let db: Firestore;
  let pubsub: PubSub;
  let grafeas: GrafeasServer;
  const s: Record<string, FunctionServer> = {};

  beforeAll(async () => {
    grafeas = await startGrafeasServer();
    const env = ingestEnv('malformed', { CLEARANCE_CONTAINER_ANALYSIS_ENDPOINT: grafeas.url });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await useSandboxRegistry();
    await import('../../functions/on-registry-push/index.js');
    await import('../../functions/on-scan-complete/index.js');
    await import('../../functions/ingest-webhook/index.js');
    for (const n of ['onRegistryPush', 'onScanComplete', 'ingestWebhook'])
      s[n] = await serveFunction(n);
    // Occurrences the malformed notifications below point at.
    const discovery = fixture<Json>('containeranalysis/ca-occurrence-discovery.derived.json');
    grafeas.put({
      ...discovery,
      name: 'projects/p/occurrences/bad-uri',
      resourceUri: 'https://us-docker.pkg.dev/p/r/img:latest',
    });
    grafeas.put({
      ...discovery,
      name: 'projects/p/occurrences/bad-status',
      resourceUri: `https://${IMG}`,
      discovery: { analysisStatus: 42 },
    });
  });
  afterAll(async () => {
    await Promise.all(Object.values(s).map((x) => x.close()));
    await grafeas?.close();
    await Promise.all([db?.terminate(), pubsub?.close()]);
  });

  let n = 0;
  const gcr = async (data: unknown, rawData?: string): Promise<Sent> => {
    const messageId = `bad-gcr-${++n}`;
    const r = await pushMessage(s.onRegistryPush as FunctionServer, 'gcr', data, {
      messageId,
      ...(rawData !== undefined ? { rawData } : {}),
    });
    return { status: r.status, deadLetter: externalDocId(`gcr:${messageId}`) };
  };
  const occ = async (data: unknown): Promise<Sent> => {
    const messageId = `bad-occ-${++n}`;
    const r = await pushMessage(s.onScanComplete as FunctionServer, 'occ', data, { messageId });
    return { status: r.status, deadLetter: externalDocId(`container-analysis:${messageId}`) };
  };
  const raw = async (
    server: string,
    path: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<Sent> => {
    const res = await fetch(`${(s[server] as FunctionServer).url}${path}`, {
      method: 'POST',
      headers,
      body,
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as { deadLetter?: string }) : {};
    return { status: res.status, ...(parsed.deadLetter ? { deadLetter: parsed.deadLetter } : {}) };
  };
  const webhook = (kind: string, body: string, contentType = 'application/json') =>
    raw('ingestWebhook', `/${kind}`, body, {
      'content-type': contentType,
      authorization: `Bearer ${WEBHOOK_TOKENS[kind as keyof typeof WEBHOOK_TOKENS]}`,
    });
  const manifestPush = (repository: string, digest = D) =>
    JSON.stringify({
      events: [
        {
          id: `e-${repository.length}-${digest.length}`,
          action: 'push',
          target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, repository },
          request: { host: 'registry.example.com' },
        },
      ],
    });

  const cases: [string, () => Promise<Sent>, RegExp][] = [
    // gcr topic (onRegistryPush)
    ['gcr: data that is not base64', () => gcr(null, '***not base64***'), /not base64/],
    // functions-framework converts a push envelope only when it has data: an empty message reaches
    // the handler as the bare envelope, is decoded all the same and dead-lettered under its id.
    ['gcr: empty data', () => gcr(null, ''), /message data is empty/],
    ['gcr: data that is not JSON', () => gcr('test message 3'), /not JSON/],
    ['gcr: JSON that is not an object', () => gcr(['INSERT', IMG]), /expected object/],
    ['gcr: unknown action', () => gcr({ action: 'UPDATE', digest: IMG }), /action/],
    ['gcr: neither digest nor tag', () => gcr({ action: 'INSERT' }), /needs a digest or a tag/],
    [
      'gcr: a tag in the digest field',
      () => gcr({ action: 'INSERT', digest: 'us-docker.pkg.dev/p/r/img:1' }),
      /must be REGISTRY\/REPO@sha256/,
    ],
    [
      'gcr: a digest of 3 hex characters',
      () => gcr({ action: 'DELETE', digest: 'gcr.io/a@sha256:123' }),
      /64 hex characters/,
    ],
    [
      'gcr: digest and tag of different images',
      () => gcr({ action: 'INSERT', digest: IMG, tag: 'gcr.io/other:1' }),
      /digest names .* but tag names/,
    ],
    [
      'gcr: $PROJECT where the project belongs',
      () => gcr({ action: 'INSERT', digest: `us-docker.pkg.dev/$PROJECT/r/img@${D}` }),
      /unexpanded placeholder/,
    ],
    [
      'gcr: upper-case repository',
      () => gcr({ action: 'INSERT', digest: `us-docker.pkg.dev/P/R/Img@${D}` }),
      /lower case/,
    ],
    [
      'gcr: a path trick in the repository',
      () => gcr({ action: 'INSERT', digest: `us-docker.pkg.dev/p/../img@${D}` }),
      /"\.\." is not allowed/,
    ],
    [
      'gcr: a tag-only push whose tag the registry does not have',
      () => gcr({ action: 'INSERT', tag: 'us-docker.pkg.dev/p/r/img:gone' }),
      /no longer exists/,
    ],
    [
      'gcr: data over the 1 MiB cap',
      () => gcr(null, Buffer.alloc(1024 * 1024 + 10, 'a').toString('base64')),
      /larger than/,
    ],
    [
      'gcr: a POST that is not a Pub/Sub CloudEvent',
      () =>
        raw('onRegistryPush', '/', JSON.stringify({ hello: 'world' }), {
          'content-type': 'application/json',
        }),
      /not a Pub\/Sub CloudEvent/,
    ],
    [
      'gcr: a Pub/Sub CloudEvent without a message',
      () =>
        raw('onRegistryPush', '/', JSON.stringify({ subscription: 'x' }), {
          'content-type': 'application/json',
          'ce-specversion': '1.0',
          'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
          'ce-source': `//pubsub.googleapis.com/projects/${projectId}/topics/gcr`,
          'ce-id': 'no-message-1',
        }).then((r) => ({ ...r, deadLetter: externalDocId('gcr:no-message-1') })),
      /not a push envelope/,
    ],
    // container-analysis-occurrences-v1 (onScanComplete)
    [
      'occurrences: a name that is not projects/P/occurrences/ID',
      () => occ({ name: 'occurrences/1', kind: 'DISCOVERY' }),
      /must be projects\/P\/occurrences\/ID/,
    ],
    [
      'occurrences: a kind that is no Grafeas kind',
      () => occ({ name: 'projects/p/occurrences/1', kind: 'discovery!' }),
      /Grafeas note kind/,
    ],
    [
      'occurrences: a DISCOVERY naming an occurrence that does not exist',
      () => occ({ name: 'projects/p/occurrences/missing', kind: 'DISCOVERY' }),
      /not found|NOT_FOUND/i,
    ],
    [
      'occurrences: a DISCOVERY whose resourceUri has no digest',
      () => occ({ name: 'projects/p/occurrences/bad-uri', kind: 'DISCOVERY' }),
      /resourceUri|digest/,
    ],
    [
      'occurrences: a DISCOVERY with a malformed analysis status',
      () => occ({ name: 'projects/p/occurrences/bad-status', kind: 'DISCOVERY' }),
      /analysisStatus/,
    ],
    // webhooks (ingestWebhook)
    [
      'webhook: distribution body that is not JSON',
      () =>
        webhook(
          'distribution',
          '{"events": [',
          'application/vnd.docker.distribution.events.v2+json',
        ),
      /not JSON/,
    ],
    [
      'webhook: distribution push of an upper-case repository',
      () => webhook('distribution', manifestPush('Team/App')),
      /lower case/,
    ],
    [
      'webhook: distribution push with a bad digest',
      () => webhook('distribution', manifestPush('team/app', 'sha256:xyz')),
      /digest/,
    ],
    [
      'webhook: Harbor push without event data',
      () => webhook('harbor', JSON.stringify({ type: 'PUSH_ARTIFACT' })),
      /event_data/,
    ],
    [
      'webhook: a distribution push naming a host that webhook may not speak for',
      () =>
        webhook(
          'distribution',
          manifestPush('team/app').replace('registry.example.com', 'registry.elsewhere.example'),
        ),
      /may not speak for/,
    ],
    [
      'webhook: a distribution push naming a Google registry',
      () =>
        webhook(
          'distribution',
          manifestPush('team/app').replace('registry.example.com', 'us-docker.pkg.dev'),
        ),
      /only from the gcr topic/,
    ],
  ];

  it.each(cases)('%s', async (_label, send, reason) => {
    const before = (await db.collection('deadLetters').get()).size;
    const sent = await send();
    expect(sent.status).toBeGreaterThanOrEqual(200);
    expect(sent.status).toBeLessThan(300);
    const after = await db.collection('deadLetters').get();
    expect(after.size).toBe(before + 1);
    const dl = sent.deadLetter
      ? await docData(db, `deadLetters/${sent.deadLetter}`)
      : after.docs.map((d) => d.data()).find((d) => reason.test(String(d.reason)));
    expect(dl, 'dead letter').toBeDefined();
    expect(String(dl?.reason)).toMatch(reason);
    expect(typeof dl?.raw).toBe('string');
  });

  it('an unknown webhook path has no credential: 401, nothing written', async () => {
    const before = (await db.collection('deadLetters').get()).size;
    const sent = await raw('ingestWebhook', '/quay', JSON.stringify({ a: 1 }), {
      'content-type': 'application/json',
      authorization: `Bearer ${WEBHOOK_TOKENS.distribution}`,
    });
    expect(sent.status).toBe(401);
    expect((await db.collection('deadLetters').get()).size).toBe(before);
  });

  it(`none of the ${cases.length} reached the ledger`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
    for (const col of ['images', 'tags', 'events', 'vex']) {
      expect((await db.collection(col).get()).size, col).toBe(0);
    }
    expect((await db.collection('deadLetters').get()).size).toBe(cases.length);
  });
});

describeWithEmulators('a webhook body that is not UTF-8', () => {
  const s: Record<string, FunctionServer> = {};
  let db: Firestore;
  beforeAll(async () => {
    ingestEnv('malformed-bytes');
    db = testDb();
    await import('../../functions/ingest-webhook/index.js');
    s.ingestWebhook = await serveFunction('ingestWebhook');
  });
  afterAll(async () => {
    await s.ingestWebhook?.close();
    await db?.terminate();
  });

  /** Posts `body` as a distribution notification; expects it dead-lettered byte for byte (base64). */
  const deadLettered = async (body: Buffer): Promise<{ reason: string; deadLetter: string }> => {
    const res = await fetch(`${(s.ingestWebhook as FunctionServer).url}/distribution`, {
      method: 'POST',
      headers: {
        'content-type': 'application/vnd.docker.distribution.events.v2+json',
        authorization: `Bearer ${WEBHOOK_TOKENS.distribution}`,
      },
      body: new Uint8Array(body),
    });
    expect(res.status).toBe(202);
    const out = (await res.json()) as { reason: string; deadLetter: string };
    const dl = await docData(db, `deadLetters/${out.deadLetter}`);
    expect(dl).toMatchObject({ rawEncoding: 'base64', rawBytes: body.length });
    expect(Buffer.from(String(dl?.raw), 'base64').equals(body)).toBe(true);
    return out;
  };

  it('is dead-lettered byte for byte, as base64', async () => {
    await deadLettered(
      Buffer.concat([
        Buffer.from('{"events":['),
        Buffer.from([0xff, 0xc0, 0xaf]),
        Buffer.from(']}'),
      ]),
    );
  });

  it('a JSON body with a byte that is not UTF-8 inside a string is dead-lettered, each such body apart', async () => {
    // Read leniently, the useragent "test/0.1\uFFFD" was accepted and the push recorded; and two
    // such bodies hashed to one delivery id, so the second was taken for a duplicate.
    const text = fixtureText('registry/distribution-notification-push-envelope.json');
    const cut = text.indexOf('"useragent": "test/0.1') + '"useragent": "test/0.1'.length;
    const letters: string[] = [];
    for (const b of [0xff, 0xfe]) {
      const body = Buffer.concat([
        Buffer.from(text.slice(0, cut)),
        Buffer.from([b]),
        Buffer.from(text.slice(cut)),
      ]);
      const out = await deadLettered(body);
      expect(out.reason).toMatch(/not valid UTF-8/);
      letters.push(out.deadLetter);
    }
    expect(new Set(letters).size).toBe(2);
    expect((await db.collection('images').get()).size).toBe(0);
  });
});
