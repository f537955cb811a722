// `clearance policy apply|preview FILE`: validate a policy, show what it would change, apply it and follow the re-evaluation.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ClearanceError, errorMessage, isRetryable } from '../../shared/errors.js';
import { firestoreFixSightings } from '../../shared/ledger/fix-sightings.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import {
  type PolicyPreview,
  previewPolicy,
  ReevaluateMessage,
  readCurrentPolicy,
  runProgress,
} from '../../shared/pipeline/reevaluation.js';
import {
  type PolicyFormat,
  type PolicyProblem,
  parsePolicy,
  policyHash,
} from '../../shared/policy/policy.js';
import { storePolicy } from '../../shared/policy/store/policy-source.js';
import {
  EXIT,
  type Io,
  parseCommand,
  processIo,
  report,
  seconds,
  UnavailableError,
  UsageError,
  wantsHelp,
} from '../lib/command.js';
import { STORE_OPTIONS, type Store, withStore } from '../lib/google.js';
import { progress } from '../lib/progress.js';

export const APPLY_USAGE = `usage: clearance policy apply FILE [--by NAME] [--wait [--wait-timeout S]] [--project P] [--timeout S]

Validates FILE (YAML, or JSON for .json), stores it as the current policy (history kept) and starts
a re-evaluation of the whole ledger. A policy with any problem is refused, every problem listed.

  --by NAME        who applies it, kept with the policy (default: $USER)
  --wait           follow the re-evaluation until it completes (a progress bar on a terminal)
  --wait-timeout S give up waiting after S seconds (default 1800; the run goes on)
${STORE_OPTIONS}

exit codes: 0 applied (and, with --wait, re-evaluated), 1 policy refused, 2 usage or configuration
error, 3 Firestore or Pub/Sub unavailable, or --wait timed out`;

export const PREVIEW_USAGE = `usage: clearance policy preview FILE [--json] [--limit N] [--project P] [--timeout S]

Evaluates every image in the ledger under FILE without writing anything, and shows the counts per
environment and each image whose verdict would flip, with the reasons. Progress goes to stderr.

  --json           print the whole preview as JSON
  --limit N        flips to print (default 50)
${STORE_OPTIONS}

exit codes: 0 previewed, 1 policy refused, 2 usage or configuration error, 3 Firestore unavailable`;

export const POLICY_USAGE = `usage: clearance policy <command> FILE [options]

commands:
  apply FILE     validate, store and re-evaluate the ledger (--wait to follow it)
  preview FILE   what the policy would change, without writing anything

Run \`clearance policy <command> --help\` for the options of each.

exit codes: 0 done, 1 policy refused, 2 usage or configuration error, 3 Firestore or Pub/Sub
unavailable`;

function formatOf(file: string): PolicyFormat {
  return extname(file).toLowerCase() === '.json' ? 'json' : 'yaml';
}

/** Each problem on its own line, compiler style, so editors can jump to it. */
function printProblems(io: Io, file: string, problems: readonly PolicyProblem[]): void {
  io.err(
    `${file}: policy refused (${problems.length} problem${problems.length === 1 ? '' : 's'})\n`,
  );
  for (const p of problems) {
    const where = p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file;
    io.err(`  ${where}: ${p.path || '(document)'}: ${p.message}\n`);
  }
}

async function readPolicyFile(
  io: Io,
  file: string,
): Promise<{ source: string; format: PolicyFormat } | null> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    io.err(`cannot read ${file}: ${errorMessage(err)}\n`);
    return null;
  }
  const format = formatOf(file);
  try {
    parsePolicy(source, format);
  } catch (err) {
    if (err instanceof ClearanceError && err.code === 'invalid-policy') {
      printProblems(io, file, (err.details?.problems as PolicyProblem[] | undefined) ?? []);
      return null;
    }
    throw err;
  }
  return { source, format };
}

export function newRunId(now: Date): string {
  return `${now.toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
}

/** Publishes the `start` message of a re-evaluation run (the reevaluate function fans it out). */
export async function publishStart(store: Store, runId: string, reason: string): Promise<void> {
  const message = ReevaluateMessage.parse({ kind: 'start', runId, reason });
  const ps = await store.root.pubsub();
  await store.bounded(
    'Pub/Sub',
    ps
      .topic(store.root.config.topics.reevaluate)
      .publishMessage({ json: message, attributes: { kind: 'start' } }),
  );
}

/** Follows a run until it is done: the bar (or lines) on stderr, the outcome on stdout. */
async function follow(io: Io, store: Store, runId: string, limitMs: number): Promise<number> {
  const bar = progress(io, 're-evaluating');
  const deadline = Date.now() + limitMs;
  let started = false;
  for (;;) {
    const run = await store.bounded('Firestore', runProgress(store.db, runId));
    if (run) {
      started = true;
      bar.update(run.processed, run.total, `images, ${run.changed} changed`);
      if (run.done) {
        bar.finish(`done, ${run.processed} images in ${run.pages} pages, ${run.changed} changed`);
        io.out(`re-evaluation ${runId} done: ${run.processed} images, ${run.changed} changed\n`);
        return EXIT.ok;
      }
    }
    if (Date.now() > deadline) {
      throw new UnavailableError(
        started
          ? `re-evaluation ${runId} still running after ${limitMs / 1000} s; watch it with: clearance reevaluate status ${runId}`
          : `re-evaluation ${runId} did not start within ${limitMs / 1000} s: is the reevaluate function subscribed to ${store.root.config.topics.reevaluate}?`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function apply(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, APPLY_USAGE, {
    by: { type: 'string' },
    wait: { type: 'boolean' },
    'wait-timeout': { type: 'string' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('policy apply takes one FILE', APPLY_USAGE);
  const timeoutMs = seconds(values.timeout, 30, 'timeout', APPLY_USAGE);
  const waitMs = seconds(values['wait-timeout'], 1800, 'wait-timeout', APPLY_USAGE);
  const file = positionals[0] as string;
  const read = await readPolicyFile(io, file);
  if (!read) return EXIT.denied;
  return withStore(io, { project: values.project, timeoutMs }, async (store) => {
    const now = io.now();
    const stored = await store.bounded(
      'Firestore',
      storePolicy(store.db, { ...read, appliedBy: values.by ?? io.env.USER ?? null, now }),
    );
    const runId = newRunId(now);
    await publishStart(store, runId, `policy ${stored.hash.slice(0, 19)} applied`);
    io.out(`applied policy ${stored.hash} (project ${store.projectId})\n`);
    io.out(`re-evaluation started: run ${runId}\n`);
    if (!values.wait) {
      io.out(`watch it with: clearance reevaluate status ${runId}\n`);
      return EXIT.ok;
    }
    return follow(io, store, runId, waitMs);
  });
}

function imageName(id: string): string {
  return id.replaceAll('~', '/');
}

function printPreview(
  io: Io,
  preview: PolicyPreview,
  hashes: { proposed: string; current: string | null },
  limit: number,
): void {
  io.out(`proposed policy ${hashes.proposed}\n`);
  io.out(`current policy  ${hashes.current ?? '(none applied)'}\n`);
  io.out(
    `images: ${preview.images} evaluated, ${preview.changedImages} would change, ${preview.unchanged} unchanged\n`,
  );
  for (const [env, c] of Object.entries(preview.counts)) {
    io.out(
      `  ${env}: allow ${c.allow}, deny ${c.deny}, pending ${c.pending} (${c.flips} flip${c.flips === 1 ? '' : 's'})\n`,
    );
  }
  if (preview.flips.length === 0) {
    io.out('no verdict would flip\n');
    return;
  }
  io.out('flips:\n');
  for (const f of preview.flips.slice(0, limit)) {
    io.out(`  ${imageName(f.imageId)} [${f.environment}] ${f.from ?? 'none'} -> ${f.to}\n`);
    for (const r of f.reasons.slice(0, 5)) io.out(`      ${r}\n`);
    if (f.reasons.length > 5) io.out(`      … ${f.reasons.length - 5} more reasons\n`);
  }
  if (preview.flips.length > limit) {
    io.out(`  … and ${preview.flips.length - limit} more (use --json or --limit)\n`);
  }
}

async function preview(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, PREVIEW_USAGE, {
    json: { type: 'boolean' },
    limit: { type: 'string' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1)
    throw new UsageError('policy preview takes one FILE', PREVIEW_USAGE);
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 0) {
    throw new UsageError('--limit must be a whole number', PREVIEW_USAGE);
  }
  const timeoutMs = seconds(values.timeout, 30, 'timeout', PREVIEW_USAGE);
  const read = await readPolicyFile(io, positionals[0] as string);
  if (!read) return EXIT.denied;
  const policy = parsePolicy(read.source, read.format);
  const proposed = { policy, hash: policyHash(policy) };
  return withStore(io, { project: values.project, timeoutMs }, async (store) => {
    const { db } = store;
    const current = await store.bounded('Firestore', readCurrentPolicy(db));
    // One aggregation read for the bar's total; the preview itself reads page by page.
    const total = await store
      .bounded('Firestore', db.collection('images').count().get())
      .then((s) => s.data().count)
      .catch(() => null);
    const bar = progress(io, 'reading the ledger');
    bar.update(0, total, 'images evaluated');
    const result = await previewPolicy(
      {
        db,
        ledger: new FirestoreLedger(db),
        fixes: firestoreFixSightings(db),
        onProgress: (n) => bar.update(n, total, 'images evaluated'),
      },
      proposed,
      io.now(),
    );
    bar.finish(`${result.images} images evaluated`);
    if (values.json) {
      io.out(
        `${JSON.stringify({ proposedPolicy: proposed.hash, currentPolicy: current?.hash ?? null, ...result }, null, 2)}\n`,
      );
    } else {
      printPreview(io, result, { proposed: proposed.hash, current: current?.hash ?? null }, limit);
    }
    return EXIT.ok;
  });
}

/** `args` follow the command word: `apply FILE …` or `preview FILE …`. */
export async function run(args: string[], io: Io = processIo()): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === undefined) throw new UsageError('policy needs a command', POLICY_USAGE);
    if (wantsHelp(args)) {
      io.out(`${POLICY_USAGE}\n`);
      return EXIT.ok;
    }
    switch (sub) {
      case 'apply':
        return await apply(io, rest);
      case 'preview':
        return await preview(io, rest);
      default:
        throw new UsageError(`unknown policy command "${sub}"`, POLICY_USAGE);
    }
  } catch (err) {
    return report(io, err, isRetryable);
  }
}
