// `clearance reevaluate [status RUN_ID]`: start a re-evaluation of the whole ledger, or show a run's progress.
import { isRetryable } from '../../shared/errors.js';
import { runProgress } from '../../shared/pipeline/reevaluation.js';
import {
  EXIT,
  type Io,
  parseCommand,
  processIo,
  report,
  seconds,
  UsageError,
} from '../lib/command.js';
import { STORE_OPTIONS, withStore } from '../lib/google.js';
import { newRunId, publishStart } from './policy.js';

export const REEVALUATE_USAGE = `usage: clearance reevaluate [--reason TEXT] [--project P] [--timeout S]
       clearance reevaluate status RUN_ID [--json] [--project P] [--timeout S]

Starts a re-evaluation of every image in the ledger under the current policy (the daily run does
the same), or shows the progress of a run.

  --reason TEXT    why, kept with the run (default: manual)
${STORE_OPTIONS}

exit codes: 0 started, 2 usage or configuration error, 3 Firestore or Pub/Sub unavailable`;

export const STATUS_USAGE = `usage: clearance reevaluate status RUN_ID [--json] [--project P] [--timeout S]

Shows a re-evaluation run: policy, start, images processed of the ledger's size, changes, state.

  --json           print the run as JSON
${STORE_OPTIONS}

exit codes: 0 shown, 1 no such run, 2 usage or configuration error, 3 Firestore unavailable`;

async function status(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, STATUS_USAGE, {
    json: { type: 'boolean' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1)
    throw new UsageError('reevaluate status takes one RUN_ID', STATUS_USAGE);
  const runId = positionals[0] as string;
  const timeoutMs = seconds(values.timeout, 30, 'timeout', STATUS_USAGE);
  return withStore(io, { project: values.project, timeoutMs }, async (store) => {
    const progress = await store.bounded('Firestore', runProgress(store.db, runId));
    if (!progress) {
      io.err(`no re-evaluation run ${runId}\n`);
      return EXIT.denied;
    }
    if (values.json) {
      io.out(`${JSON.stringify(progress, null, 2)}\n`);
      return EXIT.ok;
    }
    const of = progress.total === null ? '' : ` of ~${progress.total}`;
    io.out(`run ${progress.runId} (${progress.reason})\n`);
    io.out(`  policy:    ${progress.policyHash ?? '(none applied)'}\n`);
    io.out(`  started:   ${progress.startedAt}\n`);
    io.out(
      `  progress:  ${progress.processed}${of} images in ${progress.pages} pages, ${progress.changed} changed\n`,
    );
    io.out(`  state:     ${progress.done ? `done at ${progress.finishedAt ?? '?'}` : 'running'}\n`);
    return EXIT.ok;
  });
}

async function start(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, REEVALUATE_USAGE, {
    reason: { type: 'string' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument ${positionals[0] as string}`, REEVALUATE_USAGE);
  }
  const timeoutMs = seconds(values.timeout, 30, 'timeout', REEVALUATE_USAGE);
  return withStore(io, { project: values.project, timeoutMs }, async (store) => {
    const runId = newRunId(io.now());
    await publishStart(store, runId, values.reason ?? 'manual');
    io.out(`re-evaluation started: run ${runId}\n`);
    io.out(`watch it with: clearance reevaluate status ${runId}\n`);
    return EXIT.ok;
  });
}

/** `args` follow the command word: `[--reason …]` or `status RUN_ID …`. */
export async function run(args: string[], io: Io = processIo()): Promise<number> {
  try {
    return args[0] === 'status' ? await status(io, args.slice(1)) : await start(io, args);
  } catch (err) {
    return report(io, err, isRetryable);
  }
}
