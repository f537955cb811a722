#!/usr/bin/env node
// The `clearance` command: deploy checks for CI pipelines and policy management for platform teams.

const USAGE = `usage:
  clearance check IMAGE [--env ENV] [--url URL] [--token TOKEN | --id-token] [--json]
  clearance policy apply FILE [--by NAME]
  clearance policy preview FILE [--json]
  clearance reevaluate [--reason TEXT] | clearance reevaluate status RUN_ID
  clearance images [--state S] [--team T] [--repo GLOB] [--cve ID] [--env ENV] [--since 7d] [--json]
  clearance image REF [--json]

exit codes: 0 allow / success, 1 deny / refused, 2 error`;

const [command, ...rest] = process.argv.slice(2);

async function main(): Promise<number> {
  switch (command) {
    case 'check':
      return (await import('./commands/check.js')).run(rest);
    case 'images':
    case 'image':
      return (await import(`./commands/${command}.js`)).run(rest);
    case 'policy':
    case 'reevaluate':
      return (await import('./commands/policy.js')).run([command, ...rest]);
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`clearance: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
