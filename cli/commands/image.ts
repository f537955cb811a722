// `clearance image REF`: one image's record, findings, verdict per environment with reasons, attestations and audit timeline.
import { parseArgs } from 'node:util';
import { readImage } from '../../shared/dashboard/queries.js';
import { imageText } from '../../shared/dashboard/text.js';
import { errorMessage, InvalidInputError } from '../../shared/errors.js';
import { imageDocId, parseImageDocId, parseImageRef } from '../../shared/image-ref/image-ref.js';
import { FirestoreLedger } from '../../shared/ledger/ledger-store.js';
import { createRoot } from '../../shared/runtime/root.js';
import { type Io, processIo } from './images.js';

export const USAGE = `usage: clearance image REF [--json] [--project P]

  REF: registry/repository@sha256:…, registry/repository:tag (resolved through the ledger's tag index),
  or a ledger document id. A report on a terminal, JSON otherwise (or with --json).
  exit codes: 0 found, 1 not in the ledger, 2 error`;

export async function run(args: readonly string[], io: Io = processIo()): Promise<number> {
  let values: { json?: boolean; project?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        project: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  const [ref, ...extra] = positionals;
  if (!ref || extra.length > 0) {
    io.err(`${USAGE}\n`);
    return 2;
  }
  const root = createRoot(
    values.project ? { ...io.env, GOOGLE_CLOUD_PROJECT: values.project } : io.env,
  );
  const db = await root.firestore();
  try {
    let id: string;
    if (ref.includes('~')) {
      parseImageDocId(ref);
      id = ref;
    } else {
      const parsed = parseImageRef(ref);
      const digest =
        parsed.digest ??
        (await new FirestoreLedger(db).resolveTag(
          parsed.registry,
          parsed.repository,
          parsed.tag ?? 'latest',
        ));
      if (!digest) {
        io.err(`${ref}: tag not in the ledger\n`);
        return 1;
      }
      id = imageDocId(parsed.registry, parsed.repository, digest);
    }
    const detail = await readImage(db, id);
    if (!detail) {
      io.err(`${ref}: not in the ledger\n`);
      return 1;
    }
    if (values.json || !io.isTTY) {
      const { reads: _r, ...rest } = detail;
      io.out(`${JSON.stringify(rest, null, 2)}\n`);
    } else io.out(imageText(detail));
    return 0;
  } catch (err) {
    if (err instanceof InvalidInputError) {
      io.err(`${errorMessage(err)}\n`);
      return 2;
    }
    throw err;
  } finally {
    await db.terminate();
  }
}
