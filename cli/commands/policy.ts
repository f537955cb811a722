// `clearance policy apply|preview` and `clearance reevaluate [status]`: policy changes and ledger re-evaluation, straight against Firestore and Pub/Sub.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ClearanceError, errorMessage } from '../../shared/errors.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { storePolicy } from '../../shared/pipeline/policy-source.js';
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
import { createRoot, type Root } from '../../shared/runtime/root.js';

export const POLICY_USAGE = `usage:
  clearance policy apply FILE [--by NAME] [--project P]
  clearance policy preview FILE [--json] [--limit N] [--project P]
  clearance reevaluate [--reason TEXT] [--project P]
  clearance reevaluate status RUN_ID [--json] [--project P]`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  now(): Date;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  now: () => new Date(),
};

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--by', '--project', '--reason', '--limit']);
const BOOLEAN_FLAGS = new Set(['--json']);

function parseArgs(args: readonly string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (VALUE_FLAGS.has(name)) {
      const value = eq > 0 && name !== a ? a.slice(eq + 1) : args[++i];
      if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
      flags.set(name, value);
    } else if (BOOLEAN_FLAGS.has(a)) {
      flags.set(a, true);
    } else if (a.startsWith('--')) {
      throw new UsageError(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

function flag(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

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

function newRunId(now: Date): string {
  return `${now.toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
}

async function publishStart(root: Root, runId: string, reason: string): Promise<void> {
  const message = ReevaluateMessage.parse({ kind: 'start', runId, reason });
  const ps = await root.pubsub();
  await ps
    .topic(root.config.topics.reevaluate)
    .publishMessage({ json: message, attributes: { kind: 'start' } });
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

async function withRoot<T>(io: Io, p: Parsed, fn: (root: Root) => Promise<T>): Promise<T> {
  const project = flag(p, '--project');
  const root = createRoot(project ? { ...io.env, GOOGLE_CLOUD_PROJECT: project } : io.env);
  let usedPubsub = false;
  let usedFirestore = false;
  const tracked: Root = {
    ...root,
    firestore: () => {
      usedFirestore = true;
      return root.firestore();
    },
    pubsub: () => {
      usedPubsub = true;
      return root.pubsub();
    },
  };
  try {
    return await fn(tracked);
  } finally {
    // Open gRPC channels would keep the process alive.
    if (usedFirestore) await (await root.firestore()).terminate();
    if (usedPubsub) await (await root.pubsub()).close();
  }
}

async function apply(io: Io, p: Parsed): Promise<number> {
  const [file] = p.positional;
  if (!file || p.positional.length > 1) throw new UsageError('policy apply takes one FILE');
  const read = await readPolicyFile(io, file);
  if (!read) return 1;
  return withRoot(io, p, async (root) => {
    const now = io.now();
    const stored = await storePolicy(await root.firestore(), {
      ...read,
      appliedBy: flag(p, '--by') ?? io.env.USER ?? null,
      now,
    });
    const runId = newRunId(now);
    await publishStart(root, runId, `policy ${stored.hash.slice(0, 19)} applied`);
    io.out(`applied policy ${stored.hash} (project ${root.config.projectId})\n`);
    io.out(`re-evaluation started: run ${runId}\n`);
    io.out(`watch it with: clearance reevaluate status ${runId}\n`);
    return 0;
  });
}

async function preview(io: Io, p: Parsed): Promise<number> {
  const [file] = p.positional;
  if (!file || p.positional.length > 1) throw new UsageError('policy preview takes one FILE');
  const limitText = flag(p, '--limit');
  const limit = limitText === undefined ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 0) throw new UsageError('--limit must be a whole number');
  const read = await readPolicyFile(io, file);
  if (!read) return 1;
  const policy = parsePolicy(read.source, read.format);
  const proposed = { policy, hash: policyHash(policy) };
  return withRoot(io, p, async (root) => {
    const db = await root.firestore();
    const current = await readCurrentPolicy(db);
    const result = await previewPolicy({ db, ledger: new FirestoreLedger(db) }, proposed, io.now());
    if (p.flags.has('--json')) {
      io.out(
        `${JSON.stringify({ proposedPolicy: proposed.hash, currentPolicy: current?.hash ?? null, ...result }, null, 2)}\n`,
      );
    } else {
      printPreview(io, result, { proposed: proposed.hash, current: current?.hash ?? null }, limit);
    }
    return 0;
  });
}

async function reevaluate(io: Io, p: Parsed): Promise<number> {
  if (p.positional[0] === 'status') {
    const runId = p.positional[1];
    if (!runId || p.positional.length > 2)
      throw new UsageError('reevaluate status takes one RUN_ID');
    return withRoot(io, p, async (root) => {
      const progress = await runProgress(await root.firestore(), runId);
      if (!progress) {
        io.err(`no re-evaluation run ${runId}\n`);
        return 1;
      }
      if (p.flags.has('--json')) {
        io.out(`${JSON.stringify(progress, null, 2)}\n`);
        return 0;
      }
      const of = progress.total === null ? '' : ` of ~${progress.total}`;
      io.out(`run ${progress.runId} (${progress.reason})\n`);
      io.out(`  policy:    ${progress.policyHash ?? '(none applied)'}\n`);
      io.out(`  started:   ${progress.startedAt}\n`);
      io.out(
        `  progress:  ${progress.processed}${of} images in ${progress.pages} pages, ${progress.changed} changed\n`,
      );
      io.out(
        `  state:     ${progress.done ? `done at ${progress.finishedAt ?? '?'}` : 'running'}\n`,
      );
      return 0;
    });
  }
  if (p.positional.length > 0)
    throw new UsageError(`unexpected argument ${p.positional[0] as string}`);
  return withRoot(io, p, async (root) => {
    const runId = newRunId(io.now());
    await publishStart(root, runId, flag(p, '--reason') ?? 'manual');
    io.out(`re-evaluation started: run ${runId}\n`);
    io.out(`watch it with: clearance reevaluate status ${runId}\n`);
    return 0;
  });
}

/** `args` starts with the command word: `policy …` or `reevaluate …`. Exit codes: 0 ok, 1 refused, 2 error. */
export async function run(args: string[], io: Io = processIo): Promise<number> {
  try {
    const [command, ...rest] = args;
    if (command === 'policy') {
      const [sub, ...more] = rest;
      const parsed = parseArgs(more);
      switch (sub) {
        case 'apply':
          return await apply(io, parsed);
        case 'preview':
          return await preview(io, parsed);
        default:
          throw new UsageError(sub ? `unknown policy command "${sub}"` : 'policy needs a command');
      }
    }
    if (command === 'reevaluate') return await reevaluate(io, parseArgs(rest));
    throw new UsageError(`unknown command "${command ?? ''}"`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n${POLICY_USAGE}\n`);
      return 2;
    }
    io.err(`clearance: ${errorMessage(err)}\n`);
    return 2;
  }
}
