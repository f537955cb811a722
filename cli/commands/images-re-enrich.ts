// `clearance images re-enrich REF`: an operator sets an image's failed registry read back to needed (after fixing a registry permission), optionally reading it at once.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { errorMessage, InvalidInputError, isRetryable } from '../../shared/errors.js';
import { imageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { createRoot } from '../../shared/runtime/root.js';
import { EXIT } from '../lib/command.js';
import type { Io } from './images.js';

export const USAGE = `usage: clearance images re-enrich REGISTRY/REPOSITORY@sha256:… [--force] [--now]
                                  [--by WHO] [--reason TEXT] [--project P]

  Sets the image's registry read back to needed (attempts restarted, due now): the next enrich
  sweep reads the registry for it again, as after a push. For an image whose read failed for good
  (refused, gone, or unreachable for too long), once the cause is fixed.
  --force   also when the read is not failed: a waiting read is made due now, a done one is redone
  --now     read the registry from here at once (the sweep's read, for this image only)
  --by      who asks, for the image's audit trail (default: $USER)
  --reason  why, for the audit trail
  exit codes: 0 set to needed (with --now: read), 1 (--now) the registry refused it again: still denied,
              2 usage, unknown image, or read not failed (without --force), 3 Firestore or the registry unavailable`;

type Values = {
  force?: boolean;
  now?: boolean;
  by?: string;
  reason?: string;
  project?: string;
  help?: boolean;
};

export async function runReEnrich(args: readonly string[], io: Io): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        force: { type: 'boolean' },
        now: { type: 'boolean' },
        by: { type: 'string' },
        reason: { type: 'string' },
        project: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`clearance: ${errorMessage(err)}\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(`${USAGE}\n`);
    return EXIT.ok;
  }
  const [ref, ...extra] = positionals;
  if (!ref || extra.length > 0) {
    io.err(`${USAGE}\n`);
    return EXIT.usage;
  }
  let id: string;
  try {
    const parsed = parseImageRef(ref);
    // A tag may have moved since the read failed: the operator names the digest they mean.
    if (!parsed.digest) {
      io.err(`clearance: ${ref}: name the image by digest (REGISTRY/REPOSITORY@sha256:…)\n`);
      return EXIT.usage;
    }
    id = imageDocId(parsed.registry, parsed.repository, parsed.digest);
  } catch (err) {
    io.err(`clearance: ${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  const env = values.project ? { ...io.env, GOOGLE_CLOUD_PROJECT: values.project } : io.env;
  const root = createRoot(env);
  const db = await root.firestore();
  const now = io.now();
  try {
    const ledger = new FirestoreLedger(db);
    const result = await ledger.reopenEnrichment(
      id,
      {
        by: values.by ?? io.env.USER ?? io.env.USERNAME ?? 'unknown',
        requestId: randomUUID(),
        reason: values.reason ?? null,
        force: values.force === true,
      },
      now,
    );
    switch (result.outcome) {
      case 'missing':
        io.err(`clearance: ${ref}: not in the ledger\n`);
        return EXIT.usage;
      case 'not-failed': {
        const status = result.enrichment?.status ?? 'not tracked';
        io.err(
          `clearance: ${ref}: registry read is ${status}, not failed: nothing to retry (--force to read it again anyway)\n`,
        );
        return EXIT.usage;
      }
      case 'unchanged':
        io.out(`${ref}: already waiting for its registry read and due now\n`);
        break;
      case 'applied':
      case 'duplicate':
        io.out(
          `${ref}: registry read set back to needed (was ${result.enrichment?.status ?? 'not tracked'}); the next enrich sweep reads it\n`,
        );
        break;
      default: {
        const never: never = result.outcome;
        throw new Error(`unknown outcome ${String(never)}`);
      }
    }
    if (!values.now) return EXIT.ok;
    return await readNow(root, id, ref, io, now);
  } catch (err) {
    if (err instanceof InvalidInputError) {
      io.err(`clearance: ${errorMessage(err)}\n`);
      return EXIT.usage;
    }
    io.err(`clearance: ${errorMessage(err).split('\n')[0]}\n`);
    return isRetryable(err) ? EXIT.unavailable : EXIT.usage;
  } finally {
    await db.terminate();
  }
}

/** The sweep's read for this one image, with the deployment's registry client, policy and topics. */
async function readNow(
  root: ReturnType<typeof createRoot>,
  id: string,
  ref: string,
  io: Io,
  now: Date,
): Promise<number> {
  const [{ ingestServices, registryOf, baseProofOf }, { enrichWaiting }] = await Promise.all([
    import('../../shared/runtime/services.js'),
    import('../../shared/pipeline/registry-ingest.js'),
  ]);
  try {
    return await readImageNow(root, id, ref, io, now, {
      ingestServices,
      registryOf,
      baseProofOf,
      enrichWaiting,
    });
  } finally {
    await (await root.pubsub()).close();
  }
}

async function readImageNow(
  root: ReturnType<typeof createRoot>,
  id: string,
  ref: string,
  io: Io,
  now: Date,
  m: Pick<
    typeof import('../../shared/runtime/services.js'),
    'ingestServices' | 'registryOf' | 'baseProofOf'
  > &
    Pick<typeof import('../../shared/pipeline/registry-ingest.js'), 'enrichWaiting'>,
): Promise<number> {
  const { ingestServices, registryOf, baseProofOf, enrichWaiting } = m;
  const services = await ingestServices(root);
  const image = await services.ledger.getImage(id);
  if (!image) {
    io.err(`clearance: ${ref}: not in the ledger\n`);
    return EXIT.usage;
  }
  const out = await enrichWaiting(
    {
      ...services,
      registry: await registryOf(root),
      bases: await baseProofOf(root),
      // The operator named the image: the deployment's watch list does not filter it out.
      watch: [],
      logger: root.logger,
    },
    [image],
    now,
  );
  const after = await services.ledger.getImage(id);
  if (out.enriched > 0 || after?.enrichment?.status === 'done') {
    io.out(`${ref}: read from the registry; verdicts recomputed\n`);
    return EXIT.ok;
  }
  if (out.failed > 0 || after?.enrichment?.status === 'failed') {
    io.err(
      `clearance: ${ref}: the registry refused it again: ${after?.enrichment?.reason ?? 'unreadable'}\n`,
    );
    return EXIT.denied;
  }
  io.err(
    `clearance: ${ref}: the registry did not answer (${after?.enrichment?.reason ?? 'unavailable'}); the sweep retries it\n`,
  );
  return EXIT.unavailable;
}
