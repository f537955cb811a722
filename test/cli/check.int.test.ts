// The compiled `clearance check` CLI, spawned against checkImage served by functions-framework over the Firestore emulator.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import { denyReason, REF, record, verdict } from '../shared/check/records.js';
import { type FunctionServer, serveFunction } from '../support/function-server.js';
import { describeWithEmulators, emulators } from '../support/integration.js';

const run = promisify(execFile);
const TOKEN = 'cli-test-bearer-token-0123456789abcdef';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function clearance(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run('node', ['dist/cli/clearance.js', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describeWithEmulators('clearance check (compiled CLI) against checkImage', () => {
  const db = new Firestore({ projectId: emulators?.projectId ?? 'none' });
  let server: FunctionServer;

  beforeAll(async () => {
    // The CLI is tested as shipped: compiled to dist/ (package.json bin).
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { maxBuffer: 10 * 1024 * 1024 });
    expect(existsSync('dist/cli/clearance.js')).toBe(true);
    Object.assign(process.env, {
      CLEARANCE_CHECK_BEARER_TOKEN: TOKEN,
      CLEARANCE_CHECK_CACHE_TTL_MS: '0',
    });
    await import('../../functions/check-image/index.js');
    server = await serveFunction('checkImage');
    await storePolicy(db, {
      source:
        'apiVersion: clearance/v1\nenvironments:\n  prod:\n    mode: enforce\n  dev:\n    mode: dryrun\n',
      format: 'yaml',
      appliedBy: 'test',
      now: new Date('2026-11-29T08:00:00Z'),
    });
  });
  afterAll(async () => {
    await server?.close();
    await db.terminate();
  });

  let version = 1;
  const put = async (over: Parameters<typeof record>[0]) => {
    version += 1;
    const rec = record({ version, ...over });
    await db.collection('images').doc(rec.id).set(rec);
  };

  it('exits 0 and prints the verdict, digest and attestation for an allowed image', async () => {
    await put({});
    const r = await clearance([
      'check',
      REF,
      '--env',
      'prod',
      '--url',
      server.url,
      '--token',
      TOKEN,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ALLOW {2}us-docker\.pkg\.dev\/p\/r\/app@sha256:a{64}/);
    expect(r.stdout).toContain('environment: prod (enforce)');
    expect(r.stdout).toContain('attestation: binauthz projects/p/occurrences/att-1');
  });

  it('exits 1 for a denied image and prints each reason with its remediation (URL and token from the environment)', async () => {
    await put({
      verdicts: { prod: verdict({ decision: 'deny', reasons: [denyReason] }) },
      attestations: [],
    });
    const r = await clearance(['check', REF], {
      CLEARANCE_URL: server.url,
      CLEARANCE_TOKEN: TOKEN,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^DENY/);
    expect(r.stdout).toContain(`x vulnerabilities.fixable: ${denyReason.message}`);
    expect(r.stdout).toContain(`fix: ${denyReason.remediation}`);
  });

  it('--json prints the answer as JSON with the same exit code', async () => {
    await put({ verdicts: { prod: verdict({ decision: 'deny', reasons: [denyReason] }) } });
    const r = await clearance(['check', REF, '--json', '--url', server.url, '--token', TOKEN]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ decision: 'deny', digest: REF.split('@')[1] });
  });

  it('exits 2 with the server error and request id for a bad token, never printing the token', async () => {
    const r = await clearance(['check', REF, '--url', server.url, '--token', 'wrong-token']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/HTTP 401 unauthenticated: .*\(request [0-9a-f-]{36}\)/);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  it('exits 3 when the service cannot be reached, 2 without a URL or an image', async () => {
    const down = await clearance(['check', REF, '--url', 'http://127.0.0.1:9', '--token', TOKEN]);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('could not reach');
    expect((await clearance(['check', REF, '--token', TOKEN])).code).toBe(2);
    expect((await clearance(['check', '--url', server.url, '--token', TOKEN])).code).toBe(2);
  });

  it('exits 2 for an invalid reference (HTTP 400 from the service)', async () => {
    const r = await clearance(['check', 'Bad Ref', '--url', server.url, '--token', TOKEN]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('HTTP 400 invalid-input');
  });

  it('in a dry-run environment exits 0 and shows the would-be denials as warnings', async () => {
    await put({
      verdicts: {
        dev: verdict({
          environment: 'dev',
          mode: 'dryrun',
          decision: 'deny',
          reasons: [denyReason],
        }),
      },
    });
    const r = await clearance([
      'check',
      REF,
      '--env',
      'dev',
      '--url',
      server.url,
      '--token',
      TOKEN,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('! vulnerabilities.fixable');
  });
});
