// `clearance images`: the ledger's images by state, team, repository, vulnerability, environment and age, from the fleet index.
import { parseArgs } from 'node:util';
import { ImagesFilter, listImages } from '../../shared/dashboard/queries.js';
import { imagesTable } from '../../shared/dashboard/text.js';
import { errorMessage } from '../../shared/errors.js';
import { rebuildFleetIndex } from '../../shared/ledger/fleet-index.js';
import { createRoot } from '../../shared/runtime/root.js';

export const USAGE = `usage: clearance images [--state denied|attested|pending|stale] [--team T] [--repo GLOB]
                       [--cve ID] [--env ENV] [--since 7d|DATE] [--limit N] [--json] [--project P]
       clearance images reindex [--project P]   rebuild the fleet index from the whole ledger (backfill)
       clearance images re-enrich REGISTRY/REPOSITORY@sha256:… [--force] [--now] [--by WHO] [--reason TEXT]
                                                 read a failed image from the registry again (--help for more)

  A table on a terminal, JSON otherwise (or with --json). Reads Firestore (FIRESTORE_EMULATOR_HOST locally).`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  now(): Date;
  isTTY: boolean;
}

/** Standard streams; stdout's terminal decides table or JSON. */
export const processIo = (): Io => ({
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  now: () => new Date(),
  isTTY: process.stdout.isTTY === true,
});

export async function run(args: readonly string[], io: Io = processIo()): Promise<number> {
  if (args[0] === 're-enrich') {
    const { runReEnrich } = await import('./images-re-enrich.js');
    return runReEnrich(args.slice(1), io);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    io.err(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  const { json: _j, project: _p, help: _h, ...raw } = values;
  const checked = ImagesFilter.safeParse(raw);
  if (!checked.success) {
    io.err(
      `${checked.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('\n')}\n`,
    );
    return 2;
  }
  const filter = checked.data;
  const root = createRoot(
    values.project ? { ...io.env, GOOGLE_CLOUD_PROJECT: values.project } : io.env,
  );
  const db = await root.firestore();
  try {
    if (positionals[0] === 'reindex') {
      const { rows } = await rebuildFleetIndex(db);
      io.out(`fleet index rebuilt: ${rows} images\n`);
      return 0;
    }
    if (positionals.length > 0) {
      io.err(`unexpected ${positionals.join(' ')}\n${USAGE}\n`);
      return 2;
    }
    const answer = await listImages(db, filter, io.now());
    if (values.json || !io.isTTY) {
      const { images, plan, reads, truncated } = answer;
      io.out(`${JSON.stringify({ images, query: { ...plan, reads, truncated } }, null, 2)}\n`);
    } else {
      io.out(imagesTable(answer.images));
      io.err(
        `${answer.images.length} image(s)${answer.truncated ? ' (more: --limit)' : ''}; ${answer.reads} documents read via ${answer.plan.index}${answer.plan.token ? ` on ${answer.plan.token}` : ''}\n`,
      );
    }
    return 0;
  } finally {
    await db.terminate();
  }
}

function parse(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      state: { type: 'string' },
      team: { type: 'string' },
      repo: { type: 'string' },
      cve: { type: 'string' },
      env: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      project: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
