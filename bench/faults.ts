// The fault and fuzz suite: `npm run bench:faults [-- --events N --seed S]`; readable figures, then one JSON line (events, duplicates_delivered, faults_injected, ledger_equal, lost, duplicate_attestations, duplicate_alerts, fuzz_cases, fuzz_5xx, dead_letters_missing, deletes, webhook_events, report_uploads).
import { appendFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { format, parseArgs } from 'node:util';
import { stateDir } from '../scripts/lib/process.js';
import { type FuzzResult, runFuzz } from './lib/faults/fuzz.js';
import { FAULTY_PROJECT, type FaultRunResult, runFaultSuite } from './lib/faults/run.js';
import { type FaultInfra, startFaultInfra } from './lib/faults/stack.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000' },
    images: { type: 'string', default: '40' },
    seed: { type: 'string' },
    'fail-rate': { type: 'string', default: '0.1' },
    'max-attempts': { type: 'string', default: '10' },
    'registry-outage-rounds': { type: 'string' },
    'fuzz-runs': { type: 'string', default: '60' },
    outages: { type: 'string', default: 'firestore,registry' },
  },
});
const seed = args.seed ? Number(args.seed) : Math.floor(Math.random() * 2 ** 31);
const group = `bench-faults-${process.pid}`;

// The functions log JSON lines to stdout: they go to a file, so the figures stay readable.
const logFile = join(stateDir('logs', group), 'functions.log');
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  if (text.startsWith('{"severity"') || text.startsWith('{"timestamp"')) {
    appendFileSync(logFile, text);
    return true;
  }
  return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;
// functions-framework reports a handler's failure with console.error(err.stack): to the file too.
const printError = console.error.bind(console);
console.error = (...args: unknown[]) =>
  appendFileSync(
    logFile,
    `${JSON.stringify({ severity: 'ERROR', source: 'console', message: format(...args) })}\n`,
  );

const results: Record<string, number | boolean> = {};
let infra: FaultInfra | undefined;
let fuzz: FuzzResult | undefined;
try {
  console.log(`seed ${seed} (rerun with --seed ${seed}); function logs: ${logFile}`);
  infra = await startFaultInfra({ projectId: FAULTY_PROJECT, images: Number(args.images), group });
  const run: FaultRunResult = await runFaultSuite(
    infra,
    {
      events: Number(args.events),
      seed,
      copies: 3,
      batch: 50,
      failRate: Number(args['fail-rate']),
      maxAttempts: Number(args['max-attempts']),
      outages: (args.outages ?? '')
        .split(',')
        .filter((o): o is 'firestore' | 'registry' => ['firestore', 'registry'].includes(o)),
      ...(args['registry-outage-rounds']
        ? { registryOutageRounds: Number(args['registry-outage-rounds']) }
        : {}),
    },
    console.log,
    logFile,
    async (stack) => {
      const runs = Number(args['fuzz-runs']);
      if (runs <= 0) return;
      console.log(
        `fuzz: ${runs} inputs per channel (schema values, mutated fixtures, damaged bytes), seed ${seed}`,
      );
      fuzz = await runFuzz(stack, { seed, runs }, console.log);
      for (const s of fuzz.samples.slice(0, 10)) console.log(`  ! ${s}`);
    },
  );
  const d = run.detail;
  console.log(
    `  ${d.posted} posts in ${d.rounds} rounds, ${d.faultySeconds.toFixed(1)} s; answers ${JSON.stringify(d.statuses)}`,
  );
  console.log(
    `  answers by topic: ${Object.entries(d.byTopic)
      .map(([t, st]) => `${t} ${JSON.stringify(st)}`)
      .join(', ')}`,
  );
  console.log(
    `faults: Firestore killed and restarted ${d.firestoreRestarts}× (${d.firestoreOutageRounds} round(s) down each), registry unreachable ${d.registryOutages}× for ${d.registryOutageRounds} round(s), ${d.injected5xx.before} 5xx before and ${d.injected5xx.after} after the function ran`,
  );
  console.log(
    `ledger: ${run.ledger_equal ? 'equal to the clean run' : `DIFFERS from the clean run: ${d.diff.missing.length} documents missing, ${d.diff.extra.length} extra, ${d.diff.changed.length} changed`}`,
  );
  for (const p of [...d.diff.missing, ...d.diff.extra, ...d.diff.changed].slice(0, 10))
    console.log(`  ${p}`);
  console.log(
    `lost: ${d.lostEvents.length} events, ${d.lostAlerts} alerts, ${d.lostAttestations} attestations; dead-lettered by Pub/Sub: ${d.deadLettered.length}`,
  );
  for (const e of d.lostEvents.slice(0, 10)) console.log(`  lost ${e}`);
  console.log(
    `effects: ${d.alerts} chat messages (${run.duplicate_alerts} duplicated), ${d.attestations} attestation occurrences (${run.duplicate_attestations} duplicated)`,
  );
  console.log(
    `deletes: ${run.deletes} (${d.digestDeletes} of a digest, ${run.deletes - d.digestDeletes} of a tag): ${d.deletedImages} images deleted in the ledger, ${d.attestedDeleted} attestation occurrences left on them, ${d.historiesDiffering} never attested in the faulty run (deleted first), ${d.deletesBeforePush} deletes taken before any push of their image; webhooks: ${run.webhook_events} distribution notifications; reports: ${run.report_uploads} Trivy uploads`,
  );
  Object.assign(results, {
    events: run.events,
    duplicates_delivered: run.duplicates_delivered,
    faults_injected: run.faults_injected,
    ledger_equal: run.ledger_equal,
    lost: run.lost,
    duplicate_attestations: run.duplicate_attestations,
    duplicate_alerts: run.duplicate_alerts,
    ...(fuzz
      ? {
          fuzz_cases: fuzz.fuzz_cases,
          fuzz_5xx: fuzz.fuzz_5xx,
          dead_letters_missing: fuzz.dead_letters_missing,
        }
      : {}),
    deletes: run.deletes,
    webhook_events: run.webhook_events,
    report_uploads: run.report_uploads,
  });
} catch (err) {
  printError(err);
  process.exitCode = 1;
} finally {
  await infra?.close();
  try {
    rmdirSync(stateDir('pids', group));
  } catch {
    // not empty: a service did not stop, and its pid file says which
  }
}
console.log(JSON.stringify(results));
process.exit();
