// A Firestore outage mid-run: the push handler answers 5xx while the database is down, and redelivery after it returns completes the ledger with nothing lost.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findEmulators } from '../../scripts/lib/emulators.js';
import { freePort, type Service, startService, waitForHttp } from '../../scripts/lib/process.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';
import {
  applyTestPolicy,
  auditOf,
  createEffectTopics,
  docData,
  ingestEnv,
  pushMessage,
  useSandboxRegistry,
} from './support.js';

const REGISTRY = 'us-docker.pkg.dev';
const DIGEST = `sha256:${'e'.repeat(64)}`;
const IMAGE = imageDocId(REGISTRY, 'p/r/outage', DIGEST);

describeWithEmulators('Firestore outage during ingestion', () => {
  const projectId = emulators?.projectId ?? 'none';
  const group = `test-${process.pid}-outage`;
  const scratch = mkdtempSync(join(tmpdir(), 'clearance-outage-'));
  let port: number;
  let firestore: Service | undefined;
  let db: Firestore;
  let pubsub: PubSub;
  let server: FunctionServer;

  /** Our own Firestore emulator (the shared one is never stopped); `importFrom` restores an export. */
  async function startFirestore(importFrom?: string): Promise<Service> {
    const found = findEmulators();
    if (!found.firestore) throw new Error('no Firestore emulator');
    const service = startService({
      name: `firestore-outage-${port}`,
      group,
      command: found.firestore.command,
      args: [
        ...found.firestore.args('127.0.0.1', port),
        ...(importFrom ? [`--import-data=${importFrom}`] : []),
      ],
      env: { JAVA: found.java ?? 'java', JAVA_TOOL_OPTIONS: '-Xss2m' },
    });
    await waitForHttp(`http://127.0.0.1:${port}/`, service);
    return service;
  }

  /**
   * A Firestore outage does not lose committed data: the emulator keeps data only in memory, so
   * its documents are exported before it is stopped and imported when it starts again.
   */
  async function exportData(): Promise<string> {
    const dir = join(scratch, `export-${Date.now()}`);
    mkdirSync(dir);
    const res = await fetch(`http://127.0.0.1:${port}/emulator/v1/projects/${projectId}:export`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        database: `projects/${projectId}/databases/(default)`,
        export_directory: dir,
      }),
    });
    expect(res.status).toBe(200);
    const sub = readdirSync(dir)[0] as string;
    return join(dir, sub, `${sub}.overall_export_metadata`);
  }

  beforeAll(async () => {
    port = await freePort();
    firestore = await startFirestore();
    // This file's functions and clients use our emulator; Pub/Sub stays the shared one.
    process.env.FIRESTORE_EMULATOR_HOST = `127.0.0.1:${port}`;
    // Deliveries answer 5xx after 5 s instead of after the clients' minutes of retrying.
    const env = ingestEnv('outage', { CLEARANCE_HANDLER_DEADLINE_MS: '5000' });
    db = new Firestore({ projectId });
    pubsub = new PubSub();
    await createEffectTopics(pubsub, env);
    await applyTestPolicy(db);
    await useSandboxRegistry();
    await import('../../functions/on-registry-push/index.js');
    server = await serveFunction('onRegistryPush');
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await Promise.all([db?.terminate(), pubsub?.close()]);
    await firestore?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const message = (i: number) => ({
    data: {
      action: 'INSERT',
      digest: `${REGISTRY}/p/r/outage@${DIGEST}`,
      tag: `${REGISTRY}/p/r/outage:t${i}`,
    },
    opts: { messageId: `outage-${i}`, publishTime: `2026-11-29T10:00:0${i}.000Z` },
  });
  const deliver = (i: number) => {
    const m = message(i);
    return pushMessage(server, 'gcr', m.data, m.opts).then((r) => r.status);
  };

  it('answers 2xx, then 5xx while Firestore is down, and redelivery completes the ledger', async () => {
    // before the outage
    for (const i of [1, 2, 3]) expect(await deliver(i)).toBe(204);
    const saved = await exportData();
    await firestore?.stop();
    firestore = undefined;

    // during the outage: every delivery fails with a 5xx, so Pub/Sub keeps the message
    for (const i of [4, 5, 6]) expect(await deliver(i)).toBeGreaterThanOrEqual(500);
    expect(await deliver(3)).toBeGreaterThanOrEqual(500);

    // Firestore is back (same port, same data); Pub/Sub redelivers what was not acknowledged
    firestore = await startFirestore(saved);
    for (const i of [4, 5, 6]) {
      // the client may need a moment to reconnect: a redelivery answered 5xx is simply redelivered
      let status = 0;
      for (let attempt = 0; attempt < 20 && status !== 204; attempt++) {
        status = await deliver(i);
        if (status !== 204) await new Promise((r) => setTimeout(r, 500));
      }
      expect(status).toBe(204);
    }
    expect(await deliver(3)).toBe(204);

    const image = await docData(db, `images/${IMAGE}`);
    expect(image?.tags).toEqual(['t1', 't2', 't3', 't4', 't5', 't6']);
    // six pushes and one registry read (the sandbox holds no pkg.dev image: unreadable, final)
    expect(image?.version).toBe(7);
    const audit = (await auditOf(db, IMAGE)).filter((a) => a.kind === 'registry-push');
    expect(audit.map((a) => a.messageId).sort()).toEqual([
      'outage-1',
      'outage-2',
      'outage-3',
      'outage-4',
      'outage-5',
      'outage-6',
    ]);
    // No push was dead-lettered; the one dead letter is the unreadable image's.
    const dead = await db.collection('deadLetters').get();
    expect(dead.docs.map((d) => [d.get('source'), d.get('messageId')])).toEqual([
      ['enrichment', IMAGE],
    ]);
  }, 240_000);
});
