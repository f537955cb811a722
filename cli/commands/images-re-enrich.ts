// `clearance images re-enrich REF`: an operator sets an image's failed registry read back to needed (after fixing a registry permission), optionally reading it at once.
import { randomUUID } from 'node:crypto';
import { isRetryable } from '../../shared/errors.js';
import { imageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import type { Root } from '../../shared/runtime/root.js';
import { EXIT, type Io, parseCommand, report, seconds, UsageError } from '../lib/command.js';
import { STORE_OPTIONS, withStore } from '../lib/google.js';

export const USAGE = `usage: clearance images re-enrich REGISTRY/REPOSITORY@sha256:… [--force] [--now]
                                  [--by WHO] [--reason TEXT] [--project P] [--timeout S]

Sets the image's registry read back to needed (attempts restarted, due now): the next enrich
sweep reads the registry for it again, as after a push. For an image whose read failed for good
(refused, gone, or unreachable for too long), once the cause is fixed.

  --force          also when the read is not failed: a waiting read is made due now, a done one is redone
  --now            read the registry from here at once (the sweep's read, for this image only)
  --by WHO         who asks, for the image's audit trail (default: $USER)
  --reason TEXT    why, for the audit trail
${STORE_OPTIONS}

exit codes: 0 set to needed (with --now: read), 1 (--now) the registry refused it again: still denied,
            2 usage, unknown image, or read not failed (without --force), 3 Firestore or the registry unavailable`;

export async function runReEnrich(args: string[], io: Io): Promise<number> {
  try {
    return await reEnrich(io, args);
  } catch (err) {
    return report(io, err, isRetryable);
  }
}

/** The ledger id of a reference by digest (a bad reference is invalid input: exit 2); a tag may have moved since the read failed. */
function digestId(ref: string): string {
  const parsed = parseImageRef(ref);
  if (!parsed.digest) {
    throw new UsageError(`${ref}: name the image by digest (REGISTRY/REPOSITORY@sha256:…)`, USAGE);
  }
  return imageDocId(parsed.registry, parsed.repository, parsed.digest);
}

async function reEnrich(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, USAGE, {
    force: { type: 'boolean' },
    now: { type: 'boolean' },
    by: { type: 'string' },
    reason: { type: 'string' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('re-enrich takes one REF', USAGE);
  const ref = positionals[0] as string;
  const id = digestId(ref);
  const timeoutMs = seconds(values.timeout, 30, 'timeout', USAGE);
  const now = io.now();
  return withStore(io, { project: values.project, timeoutMs }, async (store) => {
    const result = await store.bounded(
      'Firestore',
      new FirestoreLedger(store.db).reopenEnrichment(
        id,
        {
          by: values.by ?? io.env.USER ?? io.env.USERNAME ?? 'unknown',
          requestId: randomUUID(),
          reason: values.reason ?? null,
          force: values.force === true,
        },
        now,
      ),
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
    return readNow(store.root, id, ref, io, now);
  });
}

/** The sweep's read for this one image, with the deployment's registry client, policy and topics. */
async function readNow(root: Root, id: string, ref: string, io: Io, now: Date): Promise<number> {
  // Loaded only for --now: the registry client and the pipeline are heavy.
  const [{ ingestServices, registryOf, baseProofOf }, { enrichWaiting }] = await Promise.all([
    import('../../shared/runtime/services.js'),
    import('../../shared/pipeline/registry-ingest.js'),
  ]);
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
