// The compiled `clearance` CLI as a real process: help and version, the one parser, project and credentials, deadlines, exit codes, progress.
import { execFile, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import * as ff from '@google-cloud/functions-framework';
import { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LENIENT_POLICY, STRICT_POLICY, seedLedger } from '../../bench/lib/ledger-seed.js';
import { createReevaluateHandler } from '../../functions/reevaluate/index.js';
import { freePort } from '../../scripts/lib/process.js';
import { parsePolicy, policyHash } from '../../shared/policy/policy.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { createRoot } from '../../shared/runtime/root.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';

const CLI = join(process.cwd(), 'dist/cli/clearance.js');
const TOPIC = 'cli-int-reevaluate';
const NOW = new Date('2026-11-29T10:00:00Z');
const SEEDED = 450;
const STACK_LINE = /^\s+at /m;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A clean environment: nothing from this machine's gcloud or credentials leaks in. */
function baseEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    CLOUDSDK_CONFIG: home,
    METADATA_SERVER_DETECTION: 'none',
  };
}

function clearance(args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 99) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

/** The CLI under a pseudo-terminal (util-linux `script`), as a user at a terminal runs it. */
function inTerminal(args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`);
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      'script',
      ['-qec', quoted.join(' '), '/dev/null'],
      { env, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 99) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

beforeAll(() => {
  // The CLI is tested as shipped: compiled to dist/ (package.json bin).
  spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'ignore',
  });
  if (!existsSync(CLI)) throw new Error(`${CLI} was not built`);
}, 240_000);

const home = mkdtempSync(join(tmpdir(), 'clearance-cli-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describeWithEmulators('clearance: help, version and the one parser', () => {
  it.each([
    [['--help']],
    [['-h']],
    [['help']],
    [['check', '--help']],
    [['check', '-h']],
    [['policy', '--help']],
    [['policy', 'apply', '--help']],
    [['policy', 'preview', '--help']],
    [['policy', 'preview', 'any.yaml', '-h']],
    [['reevaluate', '--help']],
    [['reevaluate', 'status', '--help']],
    [['images', '--help']],
    [['images', 'reindex', '-h']],
    [['images', 're-enrich', '--help']],
    [['image', '--help']],
  ])('%j prints the usage on stdout and exits 0', async (args) => {
    const r = await clearance(args, baseEnv(home));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: clearance /);
    expect(r.stdout).toMatch(/exit codes/);
    expect(r.stderr).toBe('');
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = await clearance(['--version'], baseEnv(home));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`clearance ${version}\n`);
  });

  it('no command, or an unknown one: the usage on stderr, exit 2', async () => {
    for (const args of [[], ['deploy']]) {
      const r = await clearance(args, baseEnv(home));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('usage: clearance <command>');
    }
  });

  it.each([
    [['check', 'img', '--nope']],
    [['policy', 'apply', 'f.yaml', '--nope']],
    [['policy', 'preview', 'f.yaml', '--nope']],
    [['reevaluate', '--nope']],
    [['reevaluate', 'status', 'run', '--nope']],
    [['images', '--nope']],
    [['images', 're-enrich', 'r/x@sha256:0', '--nope']],
    [['image', 'r/x:v1', '--nope']],
  ])('%j: every command rejects an unknown option the same way, exit 2', async (args) => {
    const r = await clearance(args, baseEnv(home));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^clearance: Unknown option '--nope'/);
    expect(r.stderr).toContain('usage: clearance ');
  });

  it('a missing option value is a usage error in every command', async () => {
    for (const args of [
      ['check', 'img', '--env'],
      ['policy', 'apply', 'f.yaml', '--by'],
      ['reevaluate', '--reason'],
      ['images', '--team'],
      ['images', 're-enrich', 'r/x@sha256:0', '--by'],
      ['image', 'r/x:v1', '--project'],
    ]) {
      const r = await clearance(args, baseEnv(home));
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/argument missing/);
    }
  });
});

describeWithEmulators('clearance: project, credentials and an unreachable store', () => {
  const emulatorEnv = () => ({
    ...baseEnv(home),
    FIRESTORE_EMULATOR_HOST: emulators?.firestoreHost,
    PUBSUB_EMULATOR_HOST: emulators?.pubsubHost,
  });

  it('on the emulators the project defaults to demo-clearance; GOOGLE_CLOUD_PROJECT and then --project override it', async () => {
    const missing = ['reevaluate', 'status', 'no-such-run'];
    const byDefault = await clearance(missing, emulatorEnv());
    expect(byDefault.stderr).toContain('connecting to project demo-clearance (emulators at');
    expect(byDefault.stderr).toContain('no re-evaluation run no-such-run');
    expect(byDefault.code).toBe(1);
    const fromEnv = await clearance(missing, {
      ...emulatorEnv(),
      GOOGLE_CLOUD_PROJECT: 'env-project',
    });
    expect(fromEnv.stderr).toContain('connecting to project env-project ');
    const fromFlag = await clearance([...missing, '--project', 'flag-project'], {
      ...emulatorEnv(),
      GOOGLE_CLOUD_PROJECT: 'env-project',
    });
    expect(fromFlag.stderr).toContain('connecting to project flag-project ');
  });

  it('without emulators or credentials: one line naming `gcloud auth application-default login`, exit 2, no default project', async () => {
    for (const args of [
      ['reevaluate', 'status', 'r1'],
      ['reevaluate', 'status', 'r1', '--project', 'p'],
      ['reevaluate'],
      ['images'],
      ['image', 'r.example/x:v1'],
      ['images', 're-enrich', `r.example/x@sha256:${'0'.repeat(64)}`],
    ]) {
      const r = await clearance(args, baseEnv(home));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(
        'clearance: no Google credentials found: run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file)\n',
      );
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(r.stderr).not.toContain('demo-clearance');
      expect(r.stdout).toBe('');
    }
  });

  it('an unreachable store: "connecting to project P…", then a clear error within the deadline, exit 3', async () => {
    const port = await freePort();
    const r = await clearance(['reevaluate', 'status', 'r1', '--timeout', '2'], {
      ...baseEnv(home),
      FIRESTORE_EMULATOR_HOST: `127.0.0.1:${port}`,
    });
    expect(r.code, r.stderr).toBe(3);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`connecting to project demo-clearance (emulators at 127.0.0.1:${port})…`);
    expect(lines.at(-1)).toBe(
      `clearance: Firestore in project demo-clearance did not answer within 2 s (emulator at 127.0.0.1:${port} — is it running?)`,
    );
    expect(r.stderr).not.toMatch(STACK_LINE);
    // Two seconds of deadline, plus start-up and closing the client: well under the 30 s default.
    expect(r.ms).toBeLessThan(15_000);
  });
});

describe('clearance: the project from application-default credentials', () => {
  it('reads the project of the ADC key file when neither --project nor GOOGLE_CLOUD_PROJECT is set', async () => {
    // In-process: spawned, the CLI would go on to call Google's API with the key.
    const { resolveProject } = await import('../../cli/lib/google.js');
    const dir = mkdtempSync(join(tmpdir(), 'clearance-adc-'));
    try {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const key = join(dir, 'key.json');
      writeFileSync(
        key,
        JSON.stringify({
          type: 'service_account',
          project_id: 'adc-project',
          private_key_id: createHash('sha256').update('k').digest('hex').slice(0, 40),
          private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          client_email: 'cli@adc-project.iam.gserviceaccount.com',
          client_id: '1',
          token_uri: 'http://127.0.0.1:9/token',
        }),
      );
      const saved = { ...process.env };
      // google-auth-library reads the process environment.
      for (const k of [
        'FIRESTORE_EMULATOR_HOST',
        'PUBSUB_EMULATOR_HOST',
        'GOOGLE_CLOUD_PROJECT',
        'GCLOUD_PROJECT',
      ]) {
        delete process.env[k];
      }
      Object.assign(process.env, { GOOGLE_APPLICATION_CREDENTIALS: key, CLOUDSDK_CONFIG: dir });
      try {
        const io = {
          out: () => {},
          err: () => {},
          env: process.env,
          now: () => new Date(),
          errIsTTY: false,
          outIsTTY: false,
        };
        expect(await resolveProject(io, undefined, 5000)).toBe('adc-project');
        expect(await resolveProject(io, 'flag-project', 5000)).toBe('flag-project');
      } finally {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeWithEmulators('clearance check: exit codes against a real HTTP server', () => {
  let server: Server;
  let url = '';
  const answers: Record<string, { status: number; body: unknown }> = {};
  const answer = (decision: 'allow' | 'deny', ruleId?: string) => ({
    image: 'r.example/app:1',
    digest: `sha256:${'a'.repeat(64)}`,
    environment: 'prod',
    decision,
    verdict: decision,
    mode: 'enforce',
    reasons: ruleId ? [{ ruleId, level: 'deny', message: ruleId, remediation: null }] : [],
    attestation: null,
    decidedAt: null,
    policyHash: null,
  });
  beforeAll(async () => {
    answers.allowed = { status: 200, body: answer('allow') };
    answers.denied = { status: 200, body: answer('deny', 'vulnerabilities.fixable-severity') };
    answers.outage = { status: 200, body: answer('deny', 'check.unavailable') };
    answers.unavailable = {
      status: 503,
      body: { error: { code: 'unavailable', message: 'down' } },
    };
    answers.refused = {
      status: 401,
      body: { error: { code: 'unauthenticated', message: 'bad token' } },
    };
    server = createServer((req, res) => {
      const image = new URL(req.url ?? '/', 'http://x').searchParams.get('image') ?? '';
      const a = answers[image] ?? { status: 404, body: {} };
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it.each([
    ['allowed', 0],
    ['denied', 1],
    ['refused', 2],
    ['outage', 3],
    ['unavailable', 3],
  ])('%s → exit %i', async (image, code) => {
    const r = await clearance(['check', image, '--url', url, '--token', 't'], baseEnv(home));
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).not.toMatch(STACK_LINE);
    if (image === 'outage') expect(r.stderr).toContain('fail closed');
  });

  it('an unreachable check is exit 3; a usage error exit 2', async () => {
    const port = await freePort();
    const down = await clearance(
      ['check', 'allowed', '--url', `http://127.0.0.1:${port}`, '--token', 't'],
      baseEnv(home),
    );
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('could not reach');
    expect((await clearance(['check', 'allowed', '--token', 't'], baseEnv(home))).code).toBe(2);
  });
});

describeWithEmulators('clearance policy apply --wait and preview: progress', () => {
  const projectId = emulators?.projectId ?? 'none';
  const db = new Firestore({ projectId });
  const pubsub = new PubSub({ projectId });
  let server: FunctionServer;
  let dir: string;
  const env = () => ({
    ...baseEnv(home),
    FIRESTORE_EMULATOR_HOST: emulators?.firestoreHost,
    PUBSUB_EMULATOR_HOST: emulators?.pubsubHost,
    GOOGLE_CLOUD_PROJECT: projectId,
    CLEARANCE_REEVALUATE_TOPIC: TOPIC,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'clearance-cli-policy-'));
    writeFileSync(join(dir, 'strict.yaml'), STRICT_POLICY);
    writeFileSync(join(dir, 'lenient.yaml'), LENIENT_POLICY);
    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: clearance/v1\nenvironments: {}\n');
    await storePolicy(db, { source: LENIENT_POLICY, format: 'yaml', appliedBy: 'seed', now: NOW });
    const lenient = parsePolicy(LENIENT_POLICY);
    await seedLedger(db, {
      count: SEEDED,
      prefix: 'cli-int',
      policy: { policy: lenient, hash: policyHash(lenient) },
      now: NOW,
    });
    const root = createRoot({
      ...process.env,
      CLEARANCE_REEVALUATE_TOPIC: TOPIC,
      CLEARANCE_VERDICTS_TOPIC: `${TOPIC}-verdicts`,
      CLEARANCE_ALERTS_TOPIC: `${TOPIC}-alerts`,
    });
    ff.cloudEvent(
      'reevaluateCliTest',
      createReevaluateHandler(() => root),
    );
    server = await serveFunction('reevaluateCliTest');
    const [topic] = await pubsub.createTopic(TOPIC);
    await topic.createSubscription(`${TOPIC}-push`, {
      pushConfig: { pushEndpoint: `${server.url}/projects/${projectId}/topics/${TOPIC}` },
      ackDeadlineSeconds: 120,
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 5 } },
    });
    await pubsub.createTopic(`${TOPIC}-verdicts`);
    await pubsub.createTopic(`${TOPIC}-alerts`);
  }, 240_000);

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await Promise.all([db.terminate(), pubsub.close()]);
  });

  it('a refused policy exits 1 with every problem', async () => {
    const r = await clearance(['policy', 'apply', join(dir, 'broken.yaml')], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/broken\.yaml:2:\d+: environments: /);
  });

  it('preview shows its progress on stderr while it reads the ledger; stdout holds only the preview', async () => {
    const r = await clearance(['policy', 'preview', join(dir, 'strict.yaml'), '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    const progress = r.stderr.split('\n').filter((l) => l.startsWith('reading the ledger'));
    expect(progress).toEqual([
      `reading the ledger: 0 of ~${SEEDED} images evaluated`,
      `reading the ledger: 200 of ~${SEEDED} images evaluated`,
      `reading the ledger: 400 of ~${SEEDED} images evaluated`,
      `reading the ledger: ${SEEDED} of ~${SEEDED} images evaluated`,
      `reading the ledger: ${SEEDED} images evaluated`,
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ images: SEEDED });
  }, 300_000);

  it('apply --wait without a terminal: plain progress lines until the run completes', async () => {
    const r = await clearance(['policy', 'apply', join(dir, 'strict.yaml'), '--wait'], env());
    expect(r.code, r.stderr).toBe(0);
    const runId = /run (\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(r.stdout).toContain(`re-evaluation ${runId} done: ${SEEDED} images, ${SEEDED} changed`);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('re-evaluating'));
    expect(lines.at(-1)).toBe(
      `re-evaluating: done, ${SEEDED} images in 3 pages, ${SEEDED} changed`,
    );
    const counts = lines.slice(0, -1).map((l) => Number(/: (\d+)/.exec(l)?.[1]));
    expect(counts.length).toBeGreaterThanOrEqual(1);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts.at(-1)).toBe(SEEDED);
    expect(r.stderr).not.toContain('\r');
    const stored = (await db.collection('reevaluations').doc(runId).get()).data();
    expect(stored).toMatchObject({ done: true, processed: SEEDED });
  }, 300_000);

  it('apply --wait on a terminal: a redrawn progress bar', async () => {
    const r = await inTerminal(['policy', 'apply', join(dir, 'lenient.yaml'), '--wait'], env());
    expect(r.code, r.stdout).toBe(0);
    // Under `script` stdout and stderr share the terminal.
    // Each redraw returns to the line's start and clears it (CR, then ANSI erase-in-line).
    expect(r.stdout).toContain('\r\u001b[Kre-evaluating [');
    expect(r.stdout).toMatch(/re-evaluating \[[#-]{24}\]\s+\d+% \d+ of ~450 images, \d+ changed/);
    expect(r.stdout).toMatch(/re-evaluating: done, 450 images in 3 pages/);
    expect(r.stdout).toMatch(/re-evaluation \S+ done: 450 images/);
  }, 300_000);
});
