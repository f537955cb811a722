#!/usr/bin/env node
// The `clearance` command: deploy checks for CI pipelines and policy management for platform teams.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CommandModule, EXIT } from './lib/command.js';

interface Command {
  summary: string;
  load: () => Promise<CommandModule>;
}
const cmd = (summary: string, load: Command['load']): Command => ({ summary, load });

/**
 * Every command: its one-line summary and its module (`cli/commands/<name>.ts`, exporting `run`
 * with the arguments after the command word). A new command is one line here.
 */
const COMMANDS: Record<string, Command> = {
  check: cmd('may IMAGE be deployed? asks checkImage', () => import('./commands/check.js')),
  policy: cmd('apply or preview a policy FILE', () => import('./commands/policy.js')),
  reevaluate: cmd('start or follow a re-evaluation', () => import('./commands/reevaluate.js')),
  images: cmd(
    'list images from the fleet index, by state, team, CVE…',
    () => import('./commands/images.js'),
  ),
  image: cmd(
    "one image's record, verdicts, attestations and timeline",
    () => import('./commands/image.js'),
  ),
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `usage: clearance <command> [arguments] [--help]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Run \`clearance <command> --help\` for a command's arguments and options.

exit codes (every command):
  0  allowed / done
  1  denied by policy (check), policy refused (policy apply, preview)
  2  usage or configuration error (arguments, no credentials, no project)
  3  the check itself unavailable: an outage, a timeout, or a fail-closed deny caused by one`;
}

/** The package's version, from the package.json above this module (in the source tree or in dist/). */
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'clearance' && pkg.version) return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`clearance ${version()}\n`);
    return EXIT.ok;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${usage()}\n`);
    return EXIT.ok;
  }
  if (command === undefined) {
    process.stderr.write(`${usage()}\n`);
    return EXIT.usage;
  }
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!entry) {
    process.stderr.write(`clearance: unknown command "${command}"\n${usage()}\n`);
    return EXIT.usage;
  }
  return (await entry.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A gRPC channel to an unreachable host can outlive the command; the answer is already printed.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err: unknown) => {
    process.stderr.write(
      `clearance: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`,
    );
    process.exitCode = EXIT.usage;
  },
);
