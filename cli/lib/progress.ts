// Progress on stderr: a redrawn bar on a terminal, plain lines (only when something changed) otherwise.
import type { Io } from './command.js';

export interface Progress {
  /** `detail` follows the count: "images, 3 changed" reads "200 of ~450 images, 3 changed". */
  update(done: number, total: number | null, detail: string): void;
  /** Ends the bar's line (a terminal) or prints the last state (plain). */
  finish(text: string): void;
}

const WIDTH = 24;

export function progress(io: Io, label: string): Progress {
  let last = '';
  let drawn = false;
  return {
    update(done, total, detail) {
      const of = total !== null && total > 0 ? Math.min(1, done / total) : null;
      const counts = `${done}${total !== null ? ` of ~${total}` : ''} ${detail}`;
      if (io.errIsTTY) {
        const bar =
          of === null
            ? ''
            : `[${'#'.repeat(Math.round(of * WIDTH)).padEnd(WIDTH, '-')}] ${String(Math.floor(of * 100)).padStart(3)}% `;
        io.err(`\r\x1b[K${label} ${bar}${counts}`);
        drawn = true;
        return;
      }
      const line = `${label}: ${counts}`;
      if (line !== last) io.err(`${line}\n`);
      last = line;
    },
    finish(text) {
      if (io.errIsTTY && drawn) io.err('\r\x1b[K');
      io.err(`${label}: ${text}\n`);
    },
  };
}
