// `clearance images re-enrich` against the Firestore emulator and a real registry: a failed read set back to needed, read by the next sweep (or at once with --now); refusals exit 2.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { run as runImages } from '../../cli/commands/images.js';
import { type LocalRegistry, startLocalRegistry } from '../../scripts/lib/local-registry.js';
import { skopeoCopy, writeOciImage } from '../../scripts/lib/oci-image.js';
import { sandboxRegistry } from '../../scripts/lib/sandbox-registry.js';
import { systemClock } from '../../shared/clock.js';
import type { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { createLogger } from '../../shared/logging/logger.js';
import type { Effect } from '../../shared/pipeline/effects.js';
import {
  type IngestDeps,
  ingestRegistryEvent,
  sweepEnrichment,
} from '../../shared/pipeline/registry-ingest.js';
import { firestorePolicySource } from '../../shared/policy/store/policy-source.js';
import { applyNonRootPolicy, auditOf, createEffectTopics, testDb } from '../functions/support.js';
import { capturedIo } from '../support/cli-io.js';
import { describeWithEmulators, requireEmulators } from '../support/integration.js';

const NOW = new Date('2026-12-01T08:00:00Z');

const io = (env: NodeJS.ProcessEnv = process.env) => capturedIo({ env, now: NOW });

describeWithEmulators('clearance images re-enrich', () => {
  let db: Firestore;
  let ledger: FirestoreLedger;
  let registry: LocalRegistry;
  let layout: string;
  let pubsub: PubSub;
  let deps: IngestDeps;
  /** What `--now` reads with: the deployment's topics (created here) and the local registry. */
  let env: NodeJS.ProcessEnv;

  /** An image built locally (its digest known) but not yet in the registry. */
  const build = (repo: string, content: string) => {
    const ref = repo.replaceAll('/', '-');
    const written = writeOciImage(layout, {
      ref,
      files: { 'app.txt': content },
      config: { user: '65532' },
    });
    return {
      digest: written.manifestDigest,
      ref: `${registry.host}/${repo}@${written.manifestDigest}`,
      id: imageDocId(registry.host, repo, written.manifestDigest),
      push: async () => {
        const pushed = await skopeoCopy(layout, `${registry.host}/${repo}:v1`, { ref });
        expect(pushed).toBe(written.manifestDigest);
      },
      /** The registry's notification, read at once: the manifest is not there, so the read fails for good. */
      announce: () =>
        ingestRegistryEvent(
          deps,
          {
            source: 'gcr',
            action: 'push',
            registry: registry.host,
            repository: repo,
            digest: written.manifestDigest,
            tag: 'v1',
          },
          { source: 'test', messageId: ref, at: NOW.toISOString() },
          NOW,
        ),
    };
  };
  const record = async (id: string): Promise<ImageRecord> => {
    const rec = await ledger.getImage(id);
    if (!rec) throw new Error(`${id} is not in the ledger`);
    return rec;
  };

  beforeAll(async () => {
    db = testDb();
    ledger = new FirestoreLedger(db);
    registry = await startLocalRegistry({ port: 'free', group: `test-${process.pid}-reenrich` });
    layout = mkdtempSync(join(tmpdir(), 'clearance-reenrich-'));
    await applyNonRootPolicy(db, NOW);
    deps = {
      ledger,
      registry: sandboxRegistry(),
      policy: firestorePolicySource(db, systemClock, 0),
      publisher: { publish: async (_e: readonly Effect[]) => {} },
      watch: [`${registry.host}/**`],
      logger: createLogger({ sink: () => {} }),
    };
    const prefix = `reenrich-${process.pid}`;
    env = {
      ...process.env,
      CLEARANCE_ALERTS_TOPIC: `${prefix}-alerts`,
      CLEARANCE_VERDICTS_TOPIC: `${prefix}-verdicts`,
      CLEARANCE_REEVALUATE_TOPIC: `${prefix}-reevaluate`,
      CLEARANCE_REGISTRY_INSECURE_HOSTS: '127.0.0.1:*',
      CLEARANCE_LOG_LEVEL: 'ERROR',
      USER: 'operator-from-env',
    };
    pubsub = new PubSub({ projectId: requireEmulators().projectId });
    await createEffectTopics(pubsub, env as Record<string, string>);
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    if (registry) rmSync(dirname(registry.configFile), { recursive: true, force: true });
    if (layout) rmSync(layout, { recursive: true, force: true });
    await Promise.all([db?.terminate(), pubsub?.close()]);
  });

  it('sets a failed read back to needed (audited, verdict still denying), and the next sweep reads it once the registry serves it', async () => {
    const app = build('team/app', 'app\n');
    expect(await app.announce()).toBe('applied');
    const failed = await record(app.id);
    expect(failed.enrichment).toMatchObject({ status: 'failed', attempts: 1 });
    expect(failed.verdicts.prod?.decision).toBe('deny');
    // The operator fixes the cause: the registry now serves the manifest.
    await app.push();
    // Failed is final for the sweep until the operator asks.
    expect(await sweepEnrichment(deps, NOW, 10)).toMatchObject({ waiting: 0 });

    const o = io();
    const args = ['re-enrich', app.ref, '--by', 'alice', '--reason', 'registry permission fixed'];
    expect(await runImages(args, o), o.stderr()).toBe(0);
    expect(o.stdout()).toContain('set back to needed (was failed)');
    const reopened = await record(app.id);
    expect(reopened.enrichment).toMatchObject({
      status: 'needed',
      attempts: 0,
      reason: null,
      nextAttemptAt: NOW.toISOString(),
      reopened: 1,
    });
    // Until the registry is read again, the failed read's deny stands (fail closed).
    expect(reopened.verdicts.prod?.decision).toBe('deny');
    const entry = (await auditOf(db, app.id)).find((e) => e.kind === 'enrichment-reopened');
    expect(entry).toMatchObject({
      by: 'alice',
      reason: 'registry permission fixed',
      force: false,
      previous: { status: 'failed', attempts: 1 },
      source: 'operator',
    });

    expect(await sweepEnrichment(deps, NOW, 10)).toMatchObject({ waiting: 1, enriched: 1 });
    const read = await record(app.id);
    expect(read.enrichment).toMatchObject({ status: 'done', attempts: 1, reopened: 1 });
    expect(read).toMatchObject({ user: '65532', verdicts: { prod: { decision: 'allow' } } });
    const kinds = (await auditOf(db, app.id)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'registry-unreadable')).toHaveLength(1);
    expect(kinds).toContain('registry-read');

    // Not failed any more: refused in one line, unless forced.
    const again = io();
    expect(await runImages(['re-enrich', app.ref], again)).toBe(2);
    expect(again.stderr()).toMatch(/registry read is done, not failed.*--force/);
    // One line after the store's "connecting to project P…".
    expect(again.stderr().trim().split('\n')).toEqual([
      expect.stringMatching(/^connecting to project /),
      expect.stringMatching(/^clearance: .*not failed/),
    ]);
    // Without --by, who asks is the environment's user.
    const forced = io(env);
    expect(await runImages(['re-enrich', app.ref, '--force'], forced)).toBe(0);
    expect((await record(app.id)).enrichment).toMatchObject({ status: 'needed', reopened: 2 });
    // Idempotent: asking again changes nothing and adds no audit entry.
    const audits = (await auditOf(db, app.id)).length;
    const twice = io();
    expect(await runImages(['re-enrich', app.ref, '--force'], twice)).toBe(0);
    expect(twice.stdout()).toContain('already waiting');
    expect((await auditOf(db, app.id)).length).toBe(audits);
    expect((await auditOf(db, app.id)).find((e) => e.force === true)).toMatchObject({
      by: 'operator-from-env',
    });
  });

  it('--now reads the registry at once: refused again exits 1 (still denied), served exits 0 (allowed)', async () => {
    const now = build('team/now', 'now\n');
    await now.announce();
    expect((await record(now.id)).enrichment?.status).toBe('failed');

    const refused = io(env);
    expect(await runImages(['re-enrich', now.ref, '--now'], refused)).toBe(1);
    expect(refused.stderr()).toMatch(/refused it again: .*not found/);
    const still = await record(now.id);
    expect(still.enrichment).toMatchObject({ status: 'failed', attempts: 1, reopened: 1 });
    expect(still.verdicts.prod?.decision).toBe('deny');
    // Each round keeps its own audit entry.
    const unreadable = (await auditOf(db, now.id)).filter((e) => e.kind === 'registry-unreadable');
    expect(unreadable).toHaveLength(2);

    await now.push();
    const served = io(env);
    expect(await runImages(['re-enrich', now.ref, '--now'], served), served.stderr()).toBe(0);
    expect(served.stdout()).toContain('read from the registry');
    const read = await record(now.id);
    expect(read.enrichment).toMatchObject({ status: 'done', reopened: 2 });
    expect(read.verdicts.prod?.decision).toBe('allow');
  });

  it('refuses with exit 2 and one line: an unknown image, a tag, a bad reference, no reference, an unknown option', async () => {
    const unknown = io();
    const ghost = `${registry.host}/team/ghost@sha256:${'e'.repeat(64)}`;
    expect(await runImages(['re-enrich', ghost], unknown)).toBe(2);
    expect(unknown.stderr().trim().split('\n')).toEqual([
      expect.stringMatching(/^connecting to project /),
      `clearance: ${ghost}: not in the ledger`,
    ]);

    const tag = io();
    expect(await runImages(['re-enrich', `${registry.host}/team/app:v1`], tag)).toBe(2);
    expect(tag.stderr()).toMatch(/name the image by digest/);

    for (const args of [['re-enrich', 'not a ref!'], ['re-enrich'], ['re-enrich', '--bogus']]) {
      const o = io();
      expect(await runImages(args, o), args.join(' ')).toBe(2);
      expect(o.stderr()).not.toBe('');
    }

    const help = io();
    expect(await runImages(['re-enrich', '--help'], help)).toBe(0);
    expect(help.stdout()).toMatch(/^usage: clearance images re-enrich/);
  });
});
