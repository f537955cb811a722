import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import { type Message, PubSub, type Subscription } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createWatchBaseImagesHandler } from '../../functions/watch-base-images/index.js';
import { type LocalRegistry, startLocalRegistry } from '../../scripts/lib/local-registry.js';
import { skopeoCopy, writeOciImage } from '../../scripts/lib/oci-image.js';
import type { Clock } from '../../shared/clock.js';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { createLogger } from '../../shared/logging/logger.js';
import { baseDocId, TrackedBase } from '../../shared/pipeline/base-watcher.js';
import { createRoot } from '../../shared/runtime/root.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';

const TOKEN = 'watch-test-token';
const hex = (c: string) => `sha256:${c.repeat(64)}`;

/** Collects every message of a pull subscription; `settle` waits for a sentinel so "nothing else" can be asserted. */
function collect(sub: Subscription) {
  const seen: Message[] = [];
  sub.on('message', (m: Message) => {
    seen.push(m);
    m.ack();
  });
  return {
    seen,
    async settle(topicPublish: (s: string) => Promise<string>): Promise<Message[]> {
      const sentinel = `sentinel-${seen.length}-${Math.random()}`;
      await topicPublish(sentinel);
      await eventually(
        async () => (seen.some((m) => m.attributes.sentinel === sentinel) ? true : undefined),
        20_000,
        'sentinel',
      );
      return seen.filter((m) => !m.attributes.sentinel);
    },
  };
}

describeWithEmulators('watchBaseImages: a base tag moves in the local registry', () => {
  const projectId = emulators?.projectId ?? 'none';
  const db = new Firestore({ projectId });
  const pubsub = new PubSub({ projectId });
  const times = { now: new Date('2026-11-29T10:00:00Z') };
  const clock: Clock = { now: () => times.now };
  let registry: LocalRegistry;
  let layout: string;
  let server: FunctionServer;
  let baseName: string;
  let alerts: ReturnType<typeof collect>;
  let reevals: ReturnType<typeof collect>;
  const publishTo = (topic: string) => (s: string) =>
    pubsub.topic(topic).publishMessage({ json: {}, attributes: { sentinel: s } });
  let d1: string;
  let d2: string;

  const ids = {
    a: '',
    b: '',
    other: '',
    digestOnly: '',
    ancient: '',
    late: '',
    fresh: '',
    lateDigestOnly: '',
  };

  async function seed(
    key: keyof typeof ids,
    n: string,
    base: { name: string | null; digest: string },
  ): Promise<void> {
    const registryHost = 'us-docker.pkg.dev';
    const repository = `acme/apps/${key.toLowerCase()}`;
    const digest = hex(n);
    const id = imageDocId(registryHost, repository, digest);
    ids[key] = id;
    await db
      .collection('images')
      .doc(id)
      .set(
        ImageRecord.parse({
          id,
          registry: registryHost,
          repository,
          digest,
          tags: ['v1'],
          labels: { team: 'payments' },
          base: { ...base, status: 'unknown', source: 'annotation' },
          state: 'evaluated',
          version: 3,
          updatedAt: '2026-11-01T00:00:00.000Z',
        }),
      );
  }

  const image = async (key: keyof typeof ids) =>
    ImageRecord.parse((await db.collection('images').doc(ids[key]).get()).data());

  async function runWatcher(auth = `Bearer ${TOKEN}`) {
    const res = await fetch(`${server.url}/`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: '{}',
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  beforeAll(async () => {
    registry = await startLocalRegistry({
      port: 'free',
      group: `test-${process.pid}`,
      ephemeral: true,
    });
    layout = mkdtempSync(join(tmpdir(), 'clearance-base-'));
    baseName = `${registry.host}/base/debian12:latest`;
    writeOciImage(layout, { ref: 'v1', files: { 'etc/os-release': 'debian 12.1\n' } });
    d1 = await skopeoCopy(layout, baseName, { ref: 'v1' });

    const alertsTopic = 'watch-alerts';
    const reevalTopic = 'watch-reevaluate';
    for (const t of [alertsTopic, reevalTopic]) await pubsub.createTopic(t);
    const [as] = await pubsub.topic(alertsTopic).createSubscription('watch-alerts-pull');
    const [rs] = await pubsub.topic(reevalTopic).createSubscription('watch-reevaluate-pull');
    alerts = collect(as);
    reevals = collect(rs);

    const root = createRoot(
      {
        ...process.env,
        CLEARANCE_BASE_IMAGES: `${baseName}, ${registry.host}/base/missing:1`,
        CLEARANCE_WATCH_TOKEN: TOKEN,
        CLEARANCE_ALERTS_TOPIC: alertsTopic,
        CLEARANCE_REEVALUATE_TOPIC: reevalTopic,
      },
      { clock, logger: createLogger({ sink: () => {} }) },
    );
    ff.http('watchBaseImagesTest', createWatchBaseImagesHandler(() => root) as never);
    server = await serveFunction('watchBaseImagesTest');

    await seed('a', 'a', { name: baseName, digest: d1 });
    await seed('b', 'b', { name: baseName, digest: d1 });
    await seed('other', 'c', { name: 'gcr.io/distroless/static-debian12:nonroot', digest: d1 });
    await seed('digestOnly', 'd', { name: null, digest: d1 });
    await seed('ancient', 'e', { name: baseName, digest: hex('0') });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await registry?.stop();
    if (layout) rmSync(layout, { recursive: true, force: true });
    await Promise.all([db.terminate(), pubsub.close()]);
  });

  it('refuses a caller without credentials', async () => {
    const res = await runWatcher('');
    expect(res.status).toBe(401);
    expect((await db.collection('bases').get()).size).toBe(0);
  });

  it('first sight: records the digest, marks images on it current and older ones stale', async () => {
    const res = await runWatcher();
    // The second tracked tag does not exist in the registry: reported, the first still processed.
    const bases = res.body.bases as { name: string; change: string; markedStale: number }[];
    expect(bases.map((b) => b.change)).toEqual(['first', 'error']);
    expect(bases[0]).toMatchObject({ name: baseName, markedStale: 1, markedCurrent: 3 });

    const tracked = TrackedBase.parse(
      (await db.collection('bases').doc(baseDocId(baseName)).get()).data(),
    );
    expect(tracked).toEqual({
      name: baseName,
      digest: d1,
      seenAt: times.now.toISOString(),
      history: [],
      settledDigest: d1,
    });

    expect((await image('a')).base).toMatchObject({ status: 'current', currentDigest: d1 });
    expect((await image('b')).base?.status).toBe('current');
    // A digest-only base is matched through the tracked digests and named after the tag.
    expect((await image('digestOnly')).base).toMatchObject({ name: baseName, status: 'current' });
    expect((await image('other')).base?.status).toBe('unknown');
    expect((await image('other')).version).toBe(3);
    const ancient = await image('ancient');
    expect(ancient.base).toMatchObject({
      status: 'stale',
      currentDigest: d1,
      supersededAt: times.now.toISOString(),
    });
    expect(ancient.state).toBe('evaluated');
    expect(ancient.version).toBe(4);

    const alerted = await alerts.settle(publishTo('watch-alerts'));
    expect(alerted.map((m) => JSON.parse(m.data.toString()))).toEqual([
      expect.objectContaining({
        type: 'rebuild-needed',
        image: expect.objectContaining({ digest: hex('e'), repository: 'acme/apps/ancient' }),
        base: {
          name: baseName,
          oldDigest: hex('0'),
          newDigest: d1,
          since: times.now.toISOString(),
        },
      }),
    ]);
    const queued = await reevals.settle(publishTo('watch-reevaluate'));
    expect(queued.map((m) => JSON.parse(m.data.toString()))).toEqual([
      { kind: 'image', imageId: ids.ancient },
    ]);
  });

  it('the tag moves: dependents on the old digest become stale, alerts name old and new digests', async () => {
    writeOciImage(layout, { ref: 'v2', files: { 'etc/os-release': 'debian 12.2 (patched)\n' } });
    d2 = await skopeoCopy(layout, baseName, { ref: 'v2' });
    expect(d2).not.toBe(d1);
    const firstSeen = times.now.toISOString();
    times.now = new Date('2026-11-30T06:00:00Z');
    const moved = times.now.toISOString();
    alerts.seen.length = 0;
    reevals.seen.length = 0;

    const res = await runWatcher();
    expect((res.body.bases as { change: string }[])[0]?.change).toBe('moved');
    const tracked = TrackedBase.parse(
      (await db.collection('bases').doc(baseDocId(baseName)).get()).data(),
    );
    expect(tracked).toEqual({
      name: baseName,
      digest: d2,
      seenAt: moved,
      history: [{ digest: d1, seenAt: firstSeen, supersededAt: moved }],
      settledDigest: d2,
    });
    for (const key of ['a', 'b', 'digestOnly'] as const) {
      const rec = await image(key);
      expect(rec.base).toMatchObject({ status: 'stale', supersededAt: moved, currentDigest: d2 });
      expect(rec.state).toBe('evaluated');
      expect(rec.version).toBe(5);
    }
    expect((await image('ancient')).base).toMatchObject({ status: 'stale', currentDigest: d2 });
    expect((await image('other')).version).toBe(3);

    const alerted = (await alerts.settle(publishTo('watch-alerts'))).map((m) =>
      JSON.parse(m.data.toString()),
    );
    const byRepo = Object.fromEntries(alerted.map((a) => [a.image.repository, a.base]));
    expect(Object.keys(byRepo).sort()).toEqual([
      'acme/apps/a',
      'acme/apps/ancient',
      'acme/apps/b',
      'acme/apps/digestonly',
    ]);
    expect(byRepo['acme/apps/a']).toEqual({
      name: baseName,
      oldDigest: d1,
      newDigest: d2,
      since: moved,
    });
    expect(byRepo['acme/apps/ancient']).toMatchObject({ oldDigest: hex('0'), newDigest: d2 });
    const queued = (await reevals.settle(publishTo('watch-reevaluate'))).map(
      (m) => JSON.parse(m.data.toString()).imageId,
    );
    expect(queued.sort()).toEqual([ids.a, ids.ancient, ids.b, ids.digestOnly].sort());
    const audit = await db.collection('images').doc(ids.a).collection('audit').get();
    expect(audit.docs.map((d) => d.get('to')).sort()).toEqual(['current', 'stale']);
  });

  it('a second run with the tag unchanged changes nothing and publishes nothing', async () => {
    const before = await db.collection('images').get();
    alerts.seen.length = 0;
    reevals.seen.length = 0;
    times.now = new Date('2026-11-30T07:00:00Z');
    const res = await runWatcher();
    expect(
      (res.body.bases as { change: string; markedStale: number; alerts: number }[])[0],
    ).toMatchObject({ change: 'unchanged', markedStale: 0, markedCurrent: 0, alerts: 0 });
    const after = await db.collection('images').get();
    expect(after.docs.map((d) => [d.id, d.get('version'), d.get('updatedAt')])).toEqual(
      before.docs.map((d) => [d.id, d.get('version'), d.get('updatedAt')]),
    );
    expect(await alerts.settle(publishTo('watch-alerts'))).toEqual([]);
    expect(await reevals.settle(publishTo('watch-reevaluate'))).toEqual([]);
  });

  it('with the digest settled, a pass classifies only images recorded since', async () => {
    await seed('late', 'f', { name: baseName, digest: d1 });
    await seed('fresh', '1', { name: baseName, digest: d2 });
    await seed('lateDigestOnly', '2', { name: null, digest: d1 });
    alerts.seen.length = 0;
    reevals.seen.length = 0;
    times.now = new Date('2026-11-30T08:00:00Z');
    const res = await runWatcher();
    expect((res.body.bases as unknown[])[0]).toMatchObject({
      change: 'unchanged',
      markedStale: 2,
      markedCurrent: 1,
      alerts: 2,
    });
    expect((await image('late')).base).toMatchObject({
      status: 'stale',
      supersededAt: '2026-11-30T06:00:00.000Z',
      currentDigest: d2,
    });
    expect((await image('lateDigestOnly')).base).toMatchObject({ name: baseName, status: 'stale' });
    expect((await image('fresh')).base).toMatchObject({ status: 'current', currentDigest: d2 });
    const alerted = (await alerts.settle(publishTo('watch-alerts'))).map(
      (m) => JSON.parse(m.data.toString()).image.repository,
    );
    expect(alerted.sort()).toEqual(['acme/apps/late', 'acme/apps/latedigestonly']);
  });
});
