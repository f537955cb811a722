// A push is never lost when the registry cannot be read: recorded first (tag moved, verdict pending), read later by redelivery or the enrich sweep; an image the registry cannot serve ends unreadable, audited and dead-lettered.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { type LocalRegistry, startLocalRegistry } from '../../scripts/lib/local-registry.js';
import { skopeoCopy, writeOciImage } from '../../scripts/lib/oci-image.js';
import { CheckService } from '../../shared/check/check-service.js';
import { firestoreVerdictStore } from '../../shared/check/firestore-store.js';
import { systemClock } from '../../shared/clock.js';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';
import {
  applyNonRootPolicy,
  auditOf,
  createEffectTopics,
  docData,
  ingestEnv,
  pushMessage,
  testDb,
} from './support.js';

describeWithEmulators(
  'registry reads after the push is recorded (local registry down, then up)',
  () => {
    const projectId = emulators?.projectId ?? 'none';
    const group = `test-${process.pid}-regread`;
    let db: Firestore;
    let pubsub: PubSub;
    let registry: LocalRegistry;
    let port: number;
    let layout: string;
    let push: FunctionServer;
    let reevaluate: FunctionServer;
    let gcr: Topic;
    let sweepTopic: string;
    const gcrSub = `regread-gcr-${process.pid}-push`;

    const image = async (repo: string, digest: string) => {
      const data = await docData(db, `images/${imageDocId(registry.host, repo, digest)}`);
      return data ? ImageRecord.parse(data) : undefined;
    };
    const until = (
      repo: string,
      digest: string,
      ok: (r: ImageRecord) => boolean,
      what: string,
      ms = 30_000,
    ) =>
      eventually(
        async () => {
          const r = await image(repo, digest);
          return r && ok(r) ? r : undefined;
        },
        ms,
        what,
      );
    const gcrInsert = (repo: string, digest: string, tag: string) => ({
      action: 'INSERT',
      digest: `${registry.host}/${repo}@${digest}`,
      tag: `${registry.host}/${repo}:${tag}`,
    });
    /** An image running as uid 65532 (allowed by the policy once read), pushed under `tag`. */
    const pushApp = (repo: string, tag: string, content: string) => {
      const ref = `${repo.replaceAll('/', '-')}-${tag}`;
      writeOciImage(layout, { ref, files: { 'app.txt': content }, config: { user: '65532' } });
      return skopeoCopy(layout, `${registry.host}/${repo}:${tag}`, { ref });
    };
    let down = false;
    const stopRegistry = async () => {
      await registry.stop();
      down = true;
    };
    const startRegistry = async (fixed?: number) => {
      down = false;
      registry = await startLocalRegistry({
        port: fixed ?? 'free',
        group,
        keepStorage: fixed !== undefined,
      });
      port = Number(registry.host.split(':')[1]);
    };
    /** What the deploy check answers (`verdict`: the stored decision, before attestation is required). */
    const answer = async (ref: string) => {
      // A fresh service each time: no cache between what the test changes.
      const check = new CheckService({
        store: firestoreVerdictStore(db),
        clock: systemClock,
        parseRef: parseImageRef,
        imageId: imageDocId,
        ttlMs: 0,
        timeoutMs: 5_000,
      });
      return check.check(ref, 'prod');
    };

    beforeAll(async () => {
      await startRegistry();
      const env = ingestEnv('regread', {
        CLEARANCE_REGISTRY_INSECURE_HOSTS: '127.0.0.1:*',
        // The sweep reads only this file's images (other files share the Firestore emulator).
        CLEARANCE_WATCH_REPOSITORIES: `127.0.0.1:${port}/**`,
      });
      db = testDb();
      pubsub = new PubSub({ projectId });
      await createEffectTopics(pubsub, env);
      await applyNonRootPolicy(db, new Date());
      await import('../../functions/on-registry-push/index.js');
      await import('../../functions/reevaluate/index.js');
      push = await serveFunction('onRegistryPush');
      reevaluate = await serveFunction('reevaluate');
      // The real emulator delivers the gcr topic, retrying a 5xx with backoff (a few times only).
      [gcr] = await pubsub.createTopic(`regread-gcr-${process.pid}`);
      await gcr.createSubscription(gcrSub, {
        pushConfig: { pushEndpoint: `${push.url}/projects/${projectId}/topics/gcr` },
        ackDeadlineSeconds: 10,
        retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
      });
      sweepTopic = env.CLEARANCE_REEVALUATE_TOPIC as string;
      await pubsub.topic(sweepTopic).createSubscription(`${sweepTopic}-push`, {
        pushConfig: {
          pushEndpoint: `${reevaluate.url}/projects/${projectId}/topics/${sweepTopic}`,
        },
        ackDeadlineSeconds: 30,
      });
      layout = mkdtempSync(join(tmpdir(), 'clearance-regread-'));
    }, 120_000);
    // Each case starts with the registry up, whatever an earlier one left.
    beforeEach(async () => {
      if (down) await startRegistry(port);
    });
    afterAll(async () => {
      await registry?.stop();
      if (registry) rmSync(dirname(registry.configFile), { recursive: true, force: true });
      await Promise.all([push?.close(), reevaluate?.close()]);
      await Promise.all([db?.terminate(), pubsub?.close()]);
      if (layout) rmSync(layout, { recursive: true, force: true });
    });

    it('registry down: the push is recorded at once and the tag moves, the verdict waits (never the old allow); the emulator redelivers once the registry is back', async () => {
      const d1 = await pushApp('team/app', 'v1', 'one\n');
      await gcr.publishMessage({ json: gcrInsert('team/app', d1, 'v1') });
      await until('team/app', d1, (r) => r.verdicts.prod?.decision === 'allow', 'the first image');
      expect((await answer(`${registry.host}/team/app:v1`)).verdict).toBe('allow');

      // A new build under the same tag, announced while the registry is down.
      const d2 = await pushApp('team/app', 'v1', 'two\n');
      await stopRegistry();
      await gcr.publishMessage({ json: gcrInsert('team/app', d2, 'v1') });
      const waiting = await until(
        'team/app',
        d2,
        (r) => r.enrichment?.status === 'needed' && r.enrichment.attempts >= 1,
        'the push recorded while the registry is down',
      );
      expect(waiting.tags).toEqual(['v1']);
      expect(waiting.verdicts.prod?.decision).toBe('pending');
      expect(waiting.verdicts.prod?.reasons.map((r) => r.ruleId)).toEqual([
        'image.enrichment-pending',
      ]);
      expect(waiting.enrichment?.reason).toMatch(/unreachable/);
      // The tag is the new, unjudged digest: pending, not the previous digest's allow.
      const during = await answer(`${registry.host}/team/app:v1`);
      expect(during).toMatchObject({ digest: d2, verdict: 'pending', decision: 'deny' });

      await startRegistry(port);
      const read = await until(
        'team/app',
        d2,
        (r) => r.enrichment?.status === 'done',
        'the read after the registry is back (redelivered by the emulator)',
        60_000,
      );
      expect(read).toMatchObject({ user: '65532', verdicts: { prod: { decision: 'allow' } } });
      expect((await answer(`${registry.host}/team/app:v1`)).verdict).toBe('allow');
      const kinds = (await auditOf(db, read.id)).map((a) => a.kind);
      expect(kinds).toContain('registry-push');
      expect(kinds).toContain('registry-read-failed');
      expect(kinds).toContain('registry-read');
    }, 120_000);

    it('when the redeliveries have run out, the enrich sweep (its own message) reads the waiting push', async () => {
      const d3 = await pushApp('team/late', 'v1', 'late\n');
      await stopRegistry();
      await gcr.publishMessage({ json: gcrInsert('team/late', d3, 'v1') });
      await until(
        'team/late',
        d3,
        (r) => r.enrichment?.status === 'needed' && r.enrichment.attempts >= 1,
        'the push recorded while the registry is down',
      );
      // Redelivery is over (as when the emulator, or a subscription's dead-letter policy, gives up).
      await pubsub.subscription(gcrSub).delete();
      await startRegistry(port);
      await new Promise((r) => setTimeout(r, 2_000));
      expect((await image('team/late', d3))?.enrichment?.status).toBe('needed');
      expect((await answer(`${registry.host}/team/late:v1`)).verdict).toBe('pending');

      // The sweep reads it once its backoff has run out (a minute or more after the last failure):
      // moved into the past here, as that wait would.
      const waiting = await image('team/late', d3);
      expect(Date.parse(waiting?.enrichment?.nextAttemptAt ?? '')).toBeGreaterThan(Date.now());
      await db
        .doc(`images/${waiting?.id}`)
        .update({ 'enrichment.nextAttemptAt': new Date(Date.now() - 1_000).toISOString() });
      await pubsub.topic(sweepTopic).publishMessage({ json: { kind: 'enrich' } });
      const read = await until(
        'team/late',
        d3,
        (r) => r.enrichment?.status === 'done',
        'the sweep',
        60_000,
      );
      expect(read.verdicts.prod?.decision).toBe('allow');
      expect((await answer(`${registry.host}/team/late:v1`)).verdict).toBe('allow');
    }, 120_000);

    it('a manifest the registry does not have after announcing it: unreadable for good, denied, audited and dead-lettered, not retried', async () => {
      const digest = `sha256:${randomBytes(32).toString('hex')}`;
      const body = gcrInsert('team/ghost', digest, 'v1');
      const opts = { messageId: `ghost-${process.pid}`, publishTime: new Date().toISOString() };
      expect((await pushMessage(push, 'gcr', body, opts)).status).toBe(204);
      const rec = await image('team/ghost', digest);
      expect(rec?.tags).toEqual(['v1']);
      expect(rec?.enrichment).toMatchObject({ status: 'failed', attempts: 1 });
      expect(rec?.enrichment?.reason).toMatch(/not found/);
      expect(rec?.verdicts.prod).toMatchObject({
        decision: 'deny',
        reasons: [expect.objectContaining({ ruleId: 'image.unreadable', level: 'deny' })],
      });
      expect(rec?.state).toBe('denied');
      const audit = await auditOf(db, rec?.id ?? '');
      expect(audit.filter((a) => a.kind === 'registry-unreadable')).toHaveLength(1);
      const dead = await db
        .collection('deadLetters')
        .where('source', '==', 'enrichment')
        .where('messageId', '==', rec?.id)
        .get();
      expect(dead.size).toBe(1);
      // The push as recorded: the digest, the tag and the event it came in.
      expect(JSON.parse(String(dead.docs[0]?.get('raw')))).toMatchObject({
        digest,
        tag: 'v1',
        event: { source: 'gcr', messageId: opts.messageId },
      });
      expect((await answer(`${registry.host}/team/ghost:v1`)).verdict).toBe('deny');

      // A redelivery finds it settled: no new read, no new entry.
      expect((await pushMessage(push, 'gcr', body, opts)).status).toBe(204);
      expect((await image('team/ghost', digest))?.version).toBe(rec?.version);
    });

    /** Pushes blobs and a manifest with the distribution API directly (a config skopeo would not copy). */
    async function putBlob(repo: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      await start.arrayBuffer();
      const location = new URL(start.headers.get('location') ?? '', registry.url);
      location.searchParams.set('digest', digest);
      const put = await fetch(location, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(bytes),
      });
      await put.arrayBuffer();
      expect(put.status).toBe(201);
      return { digest, size: bytes.length };
    }

    it('a config the client refuses (not JSON): the push is recorded and ends unreadable instead of being dropped', async () => {
      const repo = 'team/badconfig';
      const layer = await putBlob(repo, Buffer.from('not really a layer'));
      const config = await putBlob(repo, Buffer.from('{"architecture": "amd64", '));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
        }),
      );
      const res = await fetch(`${registry.url}/v2/${repo}/manifests/v1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: new Uint8Array(manifest),
      });
      await res.arrayBuffer();
      expect(res.status).toBe(201);
      const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
      expect((await pushMessage(push, 'gcr', gcrInsert(repo, digest, 'v1'))).status).toBe(204);
      const rec = await image(repo, digest);
      expect(rec?.tags).toEqual(['v1']);
      expect(rec?.enrichment?.status).toBe('failed');
      expect(rec?.enrichment?.reason).toMatch(/not JSON/);
      expect(rec?.verdicts.prod?.decision).toBe('deny');
      expect((await answer(`${registry.host}/${repo}:v1`)).verdict).toBe('deny');
    });

    it('a config with "User": null (valid for Go\'s encoding/json) is read, not refused', async () => {
      const repo = 'team/nulluser';
      writeOciImage(layout, {
        ref: 'nulluser',
        files: { 'app.txt': 'null user\n' },
        config: { user: null as unknown as string, labels: { owner: 'team-null' } },
      });
      const digest = await skopeoCopy(layout, `${registry.host}/${repo}:v1`, { ref: 'nulluser' });
      expect((await pushMessage(push, 'gcr', gcrInsert(repo, digest, 'v1'))).status).toBe(204);
      const rec = await image(repo, digest);
      expect(rec?.enrichment?.status).toBe('done');
      expect(rec).toMatchObject({ user: null, owner: 'team-null', labels: { owner: 'team-null' } });
      // No user is root: the rule judges the config it could read.
      expect(rec?.verdicts.prod?.reasons.map((r) => r.ruleId)).toEqual(['image.non-root']);
    });
  },
);
