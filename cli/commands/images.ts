// `clearance images`: the ledger's images by state, team, repository, vulnerability, environment and age, from the fleet index.
import { ImagesFilter, listImages } from '../../shared/dashboard/queries.js';
import { imagesTable } from '../../shared/dashboard/text.js';
import { isRetryable } from '../../shared/errors.js';
import { rebuildFleetIndex } from '../../shared/ledger/fleet-index.js';
import {
  EXIT,
  type Io,
  parseCommand,
  processIo,
  report,
  seconds,
  UsageError,
} from '../lib/command.js';
import { STORE_OPTIONS, withStore } from '../lib/google.js';

export const USAGE = `usage: clearance images [--state denied|attested|pending|stale] [--team T] [--repo GLOB]
                       [--cve ID] [--env ENV] [--since 7d|DATE] [--limit N] [--json] [--project P] [--timeout S]
       clearance images reindex [--project P] [--timeout S]   rebuild the fleet index from the whole ledger (backfill)
       clearance images re-enrich REGISTRY/REPOSITORY@sha256:… [--force] [--now] [--by WHO] [--reason TEXT]
                                                 read a failed image from the registry again (--help for more)

A table on a terminal, JSON otherwise (or with --json). Reads Firestore (FIRESTORE_EMULATOR_HOST locally).

  --json           print JSON even on a terminal
${STORE_OPTIONS}

exit codes: 0 listed (or reindexed), 2 usage or configuration error, 3 Firestore unavailable`;

export async function run(args: string[], io: Io = processIo()): Promise<number> {
  if (args[0] === 're-enrich') {
    const { runReEnrich } = await import('./images-re-enrich.js');
    return runReEnrich(args.slice(1), io);
  }
  try {
    return await list(io, args);
  } catch (err) {
    return report(io, err, isRetryable);
  }
}

async function list(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, USAGE, {
    state: { type: 'string' },
    team: { type: 'string' },
    repo: { type: 'string' },
    cve: { type: 'string' },
    env: { type: 'string' },
    since: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  const { json, project, timeout, help: _h, ...raw } = values;
  const reindex = positionals[0] === 'reindex';
  const extra = reindex ? positionals.slice(1) : positionals;
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}`, USAGE);
  const checked = ImagesFilter.safeParse(raw);
  if (!checked.success) {
    throw new UsageError(
      checked.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '),
      USAGE,
    );
  }
  const timeoutMs = seconds(timeout, 30, 'timeout', USAGE);
  return withStore(io, { project, timeoutMs }, async (store) => {
    if (reindex) {
      const { rows } = await rebuildFleetIndex(store.db);
      io.out(`fleet index rebuilt: ${rows} images\n`);
      return EXIT.ok;
    }
    const answer = await store.bounded('Firestore', listImages(store.db, checked.data, io.now()));
    if (json || !io.outIsTTY) {
      const { images, plan, reads, truncated } = answer;
      io.out(`${JSON.stringify({ images, query: { ...plan, reads, truncated } }, null, 2)}\n`);
    } else {
      io.out(imagesTable(answer.images));
      io.err(
        `${answer.images.length} image(s)${answer.truncated ? ' (more: --limit)' : ''}; ${answer.reads} documents read via ${answer.plan.index}${answer.plan.token ? ` on ${answer.plan.token}` : ''}\n`,
      );
    }
    return EXIT.ok;
  });
}
