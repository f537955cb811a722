import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import { type Message, PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  LENIENT_POLICY,
  type SeededImage,
  STRICT_POLICY,
  seedLedger,
} from '../../bench/lib/ledger-seed.js';
import { createReevaluateHandler } from '../../functions/reevaluate/index.js';
import { fixedClock } from '../../shared/clock.js';
import { externalDocId } from '../../shared/ledger/collections.js';
import { createLogger } from '../../shared/logging/logger.js';
import { evaluate } from '../../shared/policy/evaluate.js';
import { parsePolicy, policyHash } from '../../shared/policy/policy.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { createRoot } from '../../shared/runtime/root.js';
import type { Verdict } from '../../shared/verdict.js';
import { eventually, type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';

const COUNT = 2_000;
const NOW = new Date('2026-11-29T10:00:00Z');
const TOPIC = 'reeval-int';
const CLI = join(process.cwd(), 'dist/cli/clearance.js');

function snapshotOf(yaml: string) {
  const policy = parsePolicy(yaml);
  return { policy, hash: policyHash(policy) };
}

const strip = (v: Record<string, Verdict>) =>
  Object.fromEntries(Object.entries(v).map(([env, { evaluatedAt: _t, ...rest }]) => [env, rest]));

describeWithEmulators('policy apply with the CLI re-evaluates the ledger through Pub/Sub', () => {
  const projectId = emulators?.projectId ?? 'none';
  const db = new Firestore({ projectId });
  const pubsub = new PubSub({ projectId });
  const lines: string[] = [];
  const lenient = snapshotOf(LENIENT_POLICY);
  const strict = snapshotOf(STRICT_POLICY);
  const verdictMessages: Message[] = [];
  let seeded: SeededImage[] = [];
  let server: FunctionServer;
  let dir: string;
  let runId = '';

  const cliEnv = () => ({
    ...process.env,
    GOOGLE_CLOUD_PROJECT: projectId,
    CLEARANCE_REEVALUATE_TOPIC: TOPIC,
  });

  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        { env: cliEnv(), timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 99) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  async function ledgerState() {
    const snap = await db.collection('images').select('version', 'updatedAt').get();
    return new Map(snap.docs.map((d) => [d.id, `${d.get('version')}@${d.get('updatedAt')}`]));
  }

  beforeAll(async () => {
    // The CLI is run as users run it: compiled (tsc emits even if another module is mid-change).
    spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
      stdio: 'ignore',
    });
    if (!existsSync(CLI)) throw new Error(`${CLI} was not built`);
    dir = mkdtempSync(join(tmpdir(), 'clearance-policy-'));
    writeFileSync(join(dir, 'strict.yaml'), STRICT_POLICY);
    writeFileSync(
      join(dir, 'broken.yaml'),
      'apiVersion: clearance/v1\nenvironments: {}\nrules:\n  vulnerabilities:\n    maximumFixableSeverity: SEVERE\n',
    );

    await storePolicy(db, { source: LENIENT_POLICY, format: 'yaml', appliedBy: 'seed', now: NOW });
    seeded = await seedLedger(db, {
      count: COUNT,
      prefix: 'reeval-int',
      policy: lenient,
      now: NOW,
    });

    const root = createRoot(
      {
        ...process.env,
        CLEARANCE_REEVALUATE_TOPIC: TOPIC,
        CLEARANCE_VERDICTS_TOPIC: `${TOPIC}-verdicts`,
        CLEARANCE_ALERTS_TOPIC: `${TOPIC}-alerts`,
      },
      {
        clock: fixedClock(NOW.toISOString()),
        logger: createLogger({ sink: (l) => lines.push(l) }),
      },
    );
    ff.cloudEvent(
      'reevaluateTest',
      createReevaluateHandler(() => root),
    );
    server = await serveFunction('reevaluateTest');
    const [topic] = await pubsub.createTopic(TOPIC);
    await topic.createSubscription(`${TOPIC}-push`, {
      pushConfig: { pushEndpoint: `${server.url}/projects/${projectId}/topics/${TOPIC}` },
      ackDeadlineSeconds: 120,
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 5 } },
    });
    const [verdicts] = await pubsub.createTopic(`${TOPIC}-verdicts`);
    await pubsub.createTopic(`${TOPIC}-alerts`);
    const [sub] = await verdicts.createSubscription(`${TOPIC}-verdicts-pull`);
    sub.on('message', (m: Message) => {
      verdictMessages.push(m);
      m.ack();
    });
  }, 240_000);

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await Promise.all([db.terminate(), pubsub.close()]);
  });

  it('refuses a broken policy: every problem with its line, nothing stored', async () => {
    const res = await cli('policy', 'apply', join(dir, 'broken.yaml'));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /broken\.yaml:2:\d+: environments: declare at least one environment/,
    );
    expect(res.stderr).toMatch(
      /broken\.yaml:5:\d+: rules\.vulnerabilities\.maximumFixableSeverity/,
    );
    const current = await db.collection('policies').doc('current').get();
    expect(current.get('hash')).toBe(lenient.hash);
    expect((await db.collection('reevaluations').get()).size).toBe(0);
  });

  it('preview prints counts and the flips with reasons, and writes nothing', async () => {
    const before = await ledgerState();
    const expected = seeded.filter((s) =>
      [1, 2, 4].includes(Number(s.record.tags[0]?.slice(1)) % 5),
    );
    const text = await cli('policy', 'preview', join(dir, 'strict.yaml'), '--limit', '3');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`proposed policy ${strict.hash}`);
    expect(text.stdout).toContain(`current policy  ${lenient.hash}`);
    expect(text.stdout).toContain(
      `images: ${COUNT} evaluated, ${expected.length} would change, ${COUNT - expected.length} unchanged`,
    );
    expect(text.stdout).toMatch(
      new RegExp(`prod: allow ${COUNT - expected.length}, deny ${expected.length}, pending 0`),
    );
    expect(text.stdout).toMatch(
      /\[prod\] allow -> deny\n\s+vulnerabilities\.(fixable|unfixable)-severity: /,
    );
    expect(text.stdout).toContain(`… and ${expected.length - 3} more`);

    const json = await cli('policy', 'preview', join(dir, 'strict.yaml'), '--json');
    const preview = JSON.parse(json.stdout) as {
      flips: { imageId: string; environment: string; from: string; to: string }[];
    };
    expect(preview.flips.map((f) => f.imageId).sort()).toEqual(
      expected.map((s) => s.record.id).sort(),
    );
    expect(new Set(preview.flips.map((f) => `${f.environment}:${f.from}->${f.to}`))).toEqual(
      new Set(['prod:allow->deny']),
    );
    expect(await ledgerState()).toEqual(before);
    expect((await db.collection('policies').doc('current').get()).get('hash')).toBe(lenient.hash);
  });

  it('apply stores the policy with history and the fan-out re-evaluates every image as a direct evaluation would', async () => {
    const res = await cli('policy', 'apply', join(dir, 'strict.yaml'), '--by', 'platform-team');
    expect(res.stderr).toMatch(
      new RegExp(`^connecting to project ${projectId} \\(emulators at [^)]+\\)…\n$`),
    );
    expect(res.code).toBe(0);
    runId = /run (\S+)/.exec(res.stdout)?.[1] ?? '';
    expect(res.stdout).toContain(`watch it with: clearance reevaluate status ${runId}`);
    const current = (await db.collection('policies').doc('current').get()).data();
    expect(current).toMatchObject({
      hash: strict.hash,
      appliedBy: 'platform-team',
      format: 'yaml',
    });
    const history = await db.collection('policies').doc('current').collection('history').get();
    expect(history.docs.map((d) => d.get('hash')).sort()).toEqual(
      [lenient.hash, strict.hash].sort(),
    );

    const run = await eventually(
      async () => {
        const s = await db.collection('reevaluations').doc(runId).get();
        return s.get('done') === true ? s.data() : undefined;
      },
      180_000,
      'the re-evaluation run to finish',
    );
    const flipped = seeded.filter((s) =>
      [1, 2, 4].includes(Number(s.record.tags[0]?.slice(1)) % 5),
    );
    expect(run).toMatchObject({
      runId,
      policyHash: strict.hash,
      total: COUNT,
      processed: COUNT,
      pages: COUNT / 200,
      // Every verdict names the new policy, so every image is rewritten; the decision flips for 3 in 5.
      changed: COUNT,
    });

    const snap = await db.collection('images').get();
    expect(snap.size).toBe(COUNT);
    const byId = new Map(snap.docs.map((d) => [d.id, d.data()]));
    let denied = 0;
    for (const s of seeded) {
      const stored = byId.get(s.record.id) as {
        verdicts: Record<string, Verdict>;
        version: number;
        state: string;
      };
      const direct = evaluate({
        image: s.record,
        findings: s.findings,
        vex: [],
        policy: strict.policy,
        policyHash: strict.hash,
        now: NOW,
      });
      expect(strip(stored.verdicts)).toEqual(strip(direct));
      expect(stored.version).toBe(s.record.version + 1);
      if (direct.prod?.decision === 'deny') {
        denied += 1;
        expect(stored.state).toBe('denied');
      }
    }
    expect(denied).toBe(flipped.length);

    const status = await cli('reevaluate', 'status', runId);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`${COUNT} of ~${COUNT} images in 10 pages, ${COUNT} changed`);
    expect(status.stdout).toMatch(/state:\s+done at /);

    // attestImage hears of every decision change (and only of those).
    await eventually(
      async () =>
        new Set(verdictMessages.map((m) => JSON.parse(m.data.toString()).imageId)).size >=
        flipped.length
          ? true
          : undefined,
      60_000,
      'verdict messages',
    );
    expect(
      [...new Set(verdictMessages.map((m) => JSON.parse(m.data.toString()).imageId))].sort(),
    ).toEqual(flipped.map((s) => s.record.id).sort());
  }, 300_000);

  it('dead-letters a malformed message with its problems instead of retrying it', async () => {
    const messageId = await pubsub
      .topic(TOPIC)
      .publishMessage({ json: { kind: 'page', cursor: null, page: -1 } });
    const dl = await eventually(
      async () => {
        const s = await db
          .collection('deadLetters')
          .doc(externalDocId(`reevaluate:${messageId}`))
          .get();
        return s.exists ? s.data() : undefined;
      },
      30_000,
      'the dead letter',
    );
    expect(dl?.reason).toMatch(/^invalid reevaluate message: /);
    expect(dl?.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'runId' }),
        expect.objectContaining({ path: 'page' }),
      ]),
    );
    expect(JSON.parse(dl?.raw)).toEqual({ kind: 'page', cursor: null, page: -1 });
  });

  it('a page delivered a second time changes nothing', async () => {
    expect(runId).not.toBe('');
    const before = await ledgerState();
    const runBefore = (await db.collection('reevaluations').doc(runId).get()).data();
    const pagesBefore = await db.collection('reevaluations').doc(runId).collection('pages').get();
    const cursor = (
      await db.collection('reevaluations').doc(runId).collection('pages').doc('3').get()
    ).get('next');
    expect(typeof cursor).toBe('string');
    const messageId = await pubsub
      .topic(TOPIC)
      .publishMessage({ json: { kind: 'page', runId, cursor, page: 4 } });
    await eventually(
      async () =>
        lines.some((l) => l.includes(messageId) && l.includes('"duplicate":true'))
          ? true
          : undefined,
      30_000,
      'the redelivered page to be handled',
    );
    expect(await ledgerState()).toEqual(before);
    expect((await db.collection('reevaluations').doc(runId).get()).data()).toEqual(runBefore);
    const pagesAfter = await db.collection('reevaluations').doc(runId).collection('pages').get();
    expect(pagesAfter.docs.map((d) => [d.id, d.data()])).toEqual(
      pagesBefore.docs.map((d) => [d.id, d.data()]),
    );
  });
});
