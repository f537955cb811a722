// CLI for the offline Terraform check: prints every problem and exits 1 on any (no Terraform binary or provider needed).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkInfra, formatProblems } from './lib/infra-lint.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      infra: { type: 'string', default: 'infra' },
      functions: { type: 'string', default: 'functions' },
    },
  });
  const report = await checkInfra({
    infraDir: resolve(values.infra),
    functionsDir: resolve(values.functions),
  });
  if (report.problems.length > 0) {
    process.stderr.write(`${formatProblems(report.problems)}\n`);
    process.stderr.write(`infra check: ${report.problems.length} problem(s)\n`);
    return 1;
  }
  process.stdout.write(
    `infra check: ${report.files.length} .tf files in ${report.modules.length} module(s), ` +
      `${report.functions.length} function(s) deployed: ok\n`,
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`infra check failed to run: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
