// Images pushed with skopeo to the real local registry: enrichment and a two-platform index linked to both children, via the gcr topic and via distribution's own notifications.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../scripts/lib/local-registry.js';
import {
  OCI_INDEX,
  skopeoCopy,
  type WrittenIndex,
  writeOciImage,
  writeOciIndex,
} from '../../scripts/lib/oci-image.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators } from '../support/integration.js';
import {
  auditOf,
  createEffectTopics,
  docData,
  INGEST_TOKEN,
  ingestEnv,
  pushMessage,
  testDb,
} from './support.js';

type Json = Record<string, unknown>;

describeWithEmulators('registry pushes through the local docker-registry', () => {
  let db: Firestore;
  let pubsub: PubSub;
  let registry: LocalRegistry;
  let layout: string;
  let push: FunctionServer;
  let webhook: FunctionServer;
  let multi: WrittenIndex;

  beforeAll(async () => {
    // The webhook server must exist before the registry that notifies it.
    const env = ingestEnv('registry', { CLEARANCE_REGISTRY_INSECURE_HOSTS: '127.0.0.1:*' });
    db = testDb();
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await import('../../functions/on-registry-push/index.js');
    await import('../../functions/ingest-webhook/index.js');
    push = await serveFunction('onRegistryPush');
    webhook = await serveFunction('ingestWebhook');
    registry = await startLocalRegistry({
      port: 'free',
      group: `test-${process.pid}`,
      ephemeral: true,
      notifyUrl: `${webhook.url}/distribution`,
      notifyHeaders: { Authorization: `Bearer ${INGEST_TOKEN}` },
    });
    layout = mkdtempSync(join(tmpdir(), 'clearance-oci-'));
    multi = writeOciIndex(
      layout,
      [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      { ref: 'multi' },
    );
    writeOciImage(layout, {
      ref: 'single',
      files: { 'app.txt': 'single\n' },
      config: { user: '65532', labels: { owner: 'team-payments' } },
      annotations: {
        'org.opencontainers.image.base.name': 'gcr.io/distroless/static:nonroot',
        'org.opencontainers.image.base.digest': `sha256:${'b'.repeat(64)}`,
      },
    });
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await Promise.all([push?.close(), webhook?.close()]);
    await Promise.all([db?.terminate(), pubsub?.close()]);
    if (layout) rmSync(layout, { recursive: true, force: true });
  });

  it('a two-platform index pushed with skopeo, announced on the gcr topic: index and both children linked', async () => {
    const digest = await skopeoCopy(layout, `${registry.host}/team/multi:1.0`, { ref: 'multi' });
    expect(digest).toBe(multi.indexDigest);
    const { status } = await pushMessage(push, 'gcr', {
      action: 'INSERT',
      digest: `${registry.host}/team/multi@${digest}`,
      tag: `${registry.host}/team/multi:1.0`,
    });
    expect(status).toBe(204);
    const index = await docData(db, `images/${imageDocId(registry.host, 'team/multi', digest)}`);
    expect(index).toMatchObject({ mediaType: OCI_INDEX, tags: ['1.0'], parents: [] });
    const platforms = index?.platforms as Json[];
    expect(platforms).toEqual([
      {
        digest: multi.children[0]?.manifestDigest,
        os: 'linux',
        architecture: 'amd64',
        variant: null,
      },
      {
        digest: multi.children[1]?.manifestDigest,
        os: 'linux',
        architecture: 'arm64',
        variant: 'v8',
      },
    ]);
    for (const child of multi.children) {
      const rec = await docData(
        db,
        `images/${imageDocId(registry.host, 'team/multi', child.manifestDigest)}`,
      );
      expect(rec).toMatchObject({ parents: [digest], digest: child.manifestDigest });
    }
  });

  it('a single image announced on the gcr topic is enriched from its manifest and config', async () => {
    const digest = await skopeoCopy(layout, `${registry.host}/team/single:v1`, { ref: 'single' });
    await pushMessage(push, 'gcr', {
      action: 'INSERT',
      digest: `${registry.host}/team/single@${digest}`,
      tag: `${registry.host}/team/single:v1`,
    });
    expect(
      await docData(db, `images/${imageDocId(registry.host, 'team/single', digest)}`),
    ).toMatchObject({
      tags: ['v1'],
      user: '65532',
      owner: 'team-payments',
      base: {
        name: 'gcr.io/distroless/static:nonroot',
        digest: `sha256:${'b'.repeat(64)}`,
        source: 'annotation',
      },
    });
  });

  it("distribution's own notifications of a skopeo push reach the ledger through ingestWebhook, children linked", async () => {
    const digest = await skopeoCopy(layout, `${registry.host}/team/notified:2.0`, { ref: 'multi' });
    const id = imageDocId(registry.host, 'team/notified', digest);
    const index = await eventually(
      async () => {
        const d = await docData(db, `images/${id}`);
        return (d?.platforms as unknown[] | undefined)?.length === 2 ? d : undefined;
      },
      30_000,
      'the notified index',
    );
    expect(index).toMatchObject({ mediaType: OCI_INDEX, tags: ['2.0'] });
    for (const child of multi.children) {
      // A child's own push may land first; the index links it right after the index is written.
      const rec = await eventually(
        async () => {
          const d = await docData(
            db,
            `images/${imageDocId(registry.host, 'team/notified', child.manifestDigest)}`,
          );
          return (d?.parents as unknown[] | undefined)?.length ? d : undefined;
        },
        30_000,
        'a child linked to its index',
      );
      expect(rec?.parents).toEqual([digest]);
    }
    expect(await auditOf(db, id)).toContainEqual(
      expect.objectContaining({ kind: 'registry-push', source: 'webhook-distribution' }),
    );
  });
});
