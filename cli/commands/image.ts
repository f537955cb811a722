// `clearance image REF`: one image's record, findings, verdict per environment with reasons, attestations and audit timeline.
import { readImage } from '../../shared/dashboard/queries.js';
import { imageText } from '../../shared/dashboard/text.js';
import { isRetryable } from '../../shared/errors.js';
import { imageDocId, parseImageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { firestoreImageReads } from '../../shared/ledger/image-reads.js';
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

export const USAGE = `usage: clearance image REF [--json] [--project P] [--timeout S]

  REF: registry/repository@sha256:…, registry/repository:tag (resolved through the ledger's tag index),
  or a ledger document id. A report on a terminal, JSON otherwise (or with --json).

  --json           print JSON even on a terminal
${STORE_OPTIONS}

exit codes: 0 found, 1 not in the ledger, 2 usage or configuration error, 3 Firestore unavailable`;

export async function run(args: string[], io: Io = processIo()): Promise<number> {
  try {
    return await show(io, args);
  } catch (err) {
    return report(io, err, isRetryable);
  }
}

/** The ledger id a reference names: a digest as it is, a tag to resolve through the tag index. */
function target(
  ref: string,
): { id: string } | { registry: string; repository: string; tag: string } {
  if (ref.includes('~')) {
    parseImageDocId(ref);
    return { id: ref };
  }
  const parsed = parseImageRef(ref);
  if (parsed.digest) return { id: imageDocId(parsed.registry, parsed.repository, parsed.digest) };
  return { registry: parsed.registry, repository: parsed.repository, tag: parsed.tag ?? 'latest' };
}

async function show(io: Io, args: string[]): Promise<number> {
  const parsed = parseCommand(io, args, USAGE, {
    json: { type: 'boolean' },
    project: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('image takes one REF', USAGE);
  const ref = positionals[0] as string;
  const wanted = target(ref);
  const timeoutMs = seconds(values.timeout, 30, 'timeout', USAGE);
  return withStore(io, { project: values.project, timeoutMs }, async (store) => {
    let id: string;
    if ('id' in wanted) id = wanted.id;
    else {
      const digest = await store.bounded(
        'Firestore',
        firestoreImageReads(store.db).resolveTag(wanted.registry, wanted.repository, wanted.tag),
      );
      if (!digest) {
        io.err(`${ref}: tag not in the ledger\n`);
        return EXIT.denied;
      }
      id = imageDocId(wanted.registry, wanted.repository, digest);
    }
    const detail = await store.bounded('Firestore', readImage(store.db, id));
    if (!detail) {
      io.err(`${ref}: not in the ledger\n`);
      return EXIT.denied;
    }
    if (values.json || !io.outIsTTY) {
      const { reads: _r, ...rest } = detail;
      io.out(`${JSON.stringify(rest, null, 2)}\n`);
    } else io.out(imageText(detail));
    return EXIT.ok;
  });
}
