// CLI for the offline Terraform check: prints every problem and exits 1 on any (no Terraform binary or provider needed).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { checkInfra, formatProblems } from './lib/infra-lint.js';

export interface CheckOutput {
  out(line: string): void;
  err(line: string): void;
}

/** Runs the check with command-line arguments (--infra, --functions, --indexes, --root); returns the exit code. */
export async function runInfraCheck(
  argv: readonly string[],
  io: CheckOutput,
  cwd = process.cwd(),
): Promise<number> {
  let values: { infra?: string; functions?: string; indexes?: string; root?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        infra: { type: 'string' },
        functions: { type: 'string' },
        indexes: { type: 'string' },
        root: { type: 'string' },
      },
    }));
  } catch (err) {
    io.err(`infra check: ${(err as Error).message}`);
    io.err('usage: infra-check [--root DIR] [--infra DIR] [--functions DIR] [--indexes FILE]');
    return 2;
  }
  const root = resolve(cwd, values.root ?? '.');
  const indexes = resolve(root, values.indexes ?? 'firestore.indexes.json');
  const report = await checkInfra({
    root,
    infraDir: resolve(root, values.infra ?? 'infra'),
    functionsDir: resolve(root, values.functions ?? 'functions'),
    firestoreIndexesFile: values.indexes !== undefined || existsSync(indexes) ? indexes : undefined,
    ...(existsSync(resolve(root, 'examples')) ? { examplesDir: resolve(root, 'examples') } : {}),
  });
  if (report.problems.length > 0) {
    io.err(formatProblems(report.problems));
    io.err(`infra check: ${report.problems.length} problem(s)`);
    return 1;
  }
  io.out(
    `infra check: ${report.files.length} .tf files in ${report.modules.length} module(s), ` +
      `${report.functions.length} function folder(s) deployed: ok`,
  );
  return 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;

if (invokedDirectly) {
  runInfraCheck(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`infra check failed to run: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
