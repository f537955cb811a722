// The short form of `npm run bench:faults`: the compiled bench with few events and fuzz cases; the
// ledger after duplicates, shuffling, Firestore restarts, a registry outage and 5xx equals a clean run's
// (gcr pushes, deletes and scans, distribution webhooks and Trivy uploads).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { describeWithEmulators } from '../support/integration.js';

const SCRIPT = 'dist/bench/faults.js';
/** Fixed so a failure reproduces; FAULTS_SEED explores others. */
const SEED = process.env.FAULTS_SEED ?? '20261201';

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [resolve(SCRIPT), ...args], {
    // The bench starts its own emulators: the test project's stay untouched.
    env: { ...process.env, FIRESTORE_EMULATOR_HOST: '', PUBSUB_EMULATOR_HOST: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  return new Promise((r) => child.once('exit', (code) => r({ code, output })));
}

describeWithEmulators('bench:faults, short form', () => {
  it('loses nothing and duplicates nothing under faults; fuzzed input never gets a 5xx and every reject is kept', async () => {
    expect(existsSync(SCRIPT), `${SCRIPT} is missing: run npm run build first`).toBe(true);
    const { code, output } = await runBench([
      '--events',
      '60',
      '--images',
      '20',
      '--seed',
      SEED,
      '--fuzz-runs',
      '12',
    ]);
    const lines = output.trim().split('\n');
    const report = lines.filter((l) => !l.startsWith('    at ')).join('\n');
    // The summary is the last JSON line; a run that died before it fails here with its output.
    const summary = lines.findLast((l) => l.startsWith('{"events"'));
    expect(summary, report).toBeDefined();
    const last = JSON.parse(summary ?? '{}') as Record<string, unknown>;
    expect(code, report).toBe(0);
    expect(last, report).toMatchObject({
      events: 60,
      duplicates_delivered: 120,
      ledger_equal: true,
      lost: 0,
      duplicate_attestations: 0,
      duplicate_alerts: 0,
      fuzz_5xx: 0,
      dead_letters_missing: 0,
    });
    // The ledger comparison covered deletes, webhook pushes and report uploads, not only gcr pushes and scans.
    expect(last.deletes as number, report).toBeGreaterThan(0);
    expect(last.webhook_events as number, report).toBeGreaterThan(0);
    expect(last.report_uploads as number, report).toBeGreaterThan(0);
    // Every digest delete left its image deleted, with no attestation occurrence to admit it.
    expect(report).toMatch(
      /\((\d+) of a digest, \d+ of a tag\): \1 images deleted in the ledger, 0 attestation occurrences left on them/,
    );
    // Faults were really injected: two Firestore restarts and a registry outage at least.
    expect(last.faults_injected as number, report).toBeGreaterThanOrEqual(3);
    expect(last.fuzz_cases as number, report).toBeGreaterThan(100);
  }, 600_000);
});
