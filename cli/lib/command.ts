// What every `clearance` command shares: its I/O, the exit codes, the errors that map to them, and the one argument parser.
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** Exit codes, the same for every command (README and docs/check.md document them). */
export const EXIT = {
  /** Allowed, or the command did what was asked. */
  ok: 0,
  /** Denied by policy (or a policy file refused, for the policy commands). */
  denied: 1,
  /** Usage or configuration error: bad arguments, no credentials, no project, unknown project. */
  usage: 2,
  /** The check itself is unavailable: a fail-closed deny caused by an outage, or a store that cannot be reached. */
  unavailable: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Where a command reads and writes; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  now(): Date;
  /** Whether stderr is a terminal (progress bars) rather than a pipe or a file (plain lines). */
  errIsTTY: boolean;
  /** Whether stdout is a terminal (tables for people) rather than a pipe or a file (JSON). */
  outIsTTY: boolean;
}

export const processIo = (): Io => ({
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  now: () => new Date(),
  errIsTTY: process.stderr.isTTY === true,
  outIsTTY: process.stdout.isTTY === true,
});

/** A command's module: `cli/commands/<name>.ts` exports `run`; `cli/clearance.ts` dispatches to it. */
export interface CommandModule {
  run(args: string[], io?: Io): Promise<number>;
}

/** Bad arguments: the message, then the usage of the command at hand; exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

/** A configuration problem the user must fix (credentials, project): one line, exit 2. */
export class ConfigError extends Error {}

/** What the command needs is unreachable or timed out: one line, exit 3. */
export class UnavailableError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * The one argument parser of every command (node:util parseArgs, strict): unknown options and
 * missing values are usage errors; `--help`/`-h` is always understood and returns null after
 * printing the usage.
 */
export function parseCommand<O extends Options>(io: Io, args: string[], usage: string, options: O) {
  const config = {
    args,
    options: { ...options, ...HELP },
    allowPositionals: true as const,
    strict: true as const,
  };
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), usage);
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.out(`${usage}\n`);
    return null;
  }
  return parsed;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** True when the arguments ask for help before any subcommand parsing (`clearance policy --help`). */
export function wantsHelp(args: readonly string[]): boolean {
  return args.length === 0 ? false : args[0] === '--help' || args[0] === '-h' || args[0] === 'help';
}

/** Seconds from an option, as milliseconds; a usage error unless positive. */
export function seconds(
  value: string | undefined,
  fallback: number,
  name: string,
  usage: string,
): number {
  if (value === undefined) return fallback * 1000;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${name} must be a positive number of seconds`, usage);
  return n * 1000;
}

/** Maps whatever a command threw to its message and exit code: never a stack trace. */
export function report(io: Io, err: unknown, retryable: (err: unknown) => boolean): number {
  if (err instanceof UsageError) {
    io.err(`clearance: ${err.message}\n${err.usage}\n`);
    return EXIT.usage;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ConfigError) {
    io.err(`clearance: ${message}\n`);
    return EXIT.usage;
  }
  if (err instanceof UnavailableError || retryable(err)) {
    io.err(`clearance: ${message}\n`);
    return EXIT.unavailable;
  }
  io.err(`clearance: ${message.split('\n')[0]}\n`);
  return EXIT.usage;
}
