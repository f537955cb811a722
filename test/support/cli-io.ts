// A `clearance` command's I/O captured in memory, for tests that run commands in-process.
import type { Io } from '../../cli/lib/command.js';

export type CapturedIo = Io & { stdout(): string; stderr(): string };

export function capturedIo(
  options: { env?: NodeJS.ProcessEnv; now?: Date; outIsTTY?: boolean } = {},
): CapturedIo {
  let out = '';
  let err = '';
  return {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: options.env ?? process.env,
    now: () => options.now ?? new Date(),
    errIsTTY: false,
    outIsTTY: options.outIsTTY ?? false,
    stdout: () => out,
    stderr: () => err,
  };
}
