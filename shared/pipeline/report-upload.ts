// One CI upload: ingest it, keep a refused one as a dead letter (exact bytes) and say why (400), or ask for it again (409).
import { createHash } from 'node:crypto';
import { ClearanceError, errorMessage, InvalidInputError, isRetryable } from '../errors.js';
import { utf8OrNull } from '../json-bytes.js';
import {
  IMAGE_NOT_RECORDED,
  type ReportDeps,
  type ReportOutcome,
  storeReport,
} from './report-ingest.js';

export interface ReportUpload {
  /** The body as parsed (JSON content types), or the raw text. */
  body: unknown;
  raw: string;
  rawBody?: Buffer;
  /** The `?image=` parameter as given (validated here). */
  image: unknown;
  caller: string;
}

export type UploadResult =
  | { accepted: true; outcome: ReportOutcome }
  | { accepted: false; error: ClearanceError; deadLetter: string }
  /** The image's push is not recorded yet: nothing kept, the job uploads again after `retryAfterSeconds`. */
  | { accepted: false; error: ClearanceError; retryAfterSeconds: number };

/** Push events usually land within seconds; a CI job that retries this often finds its image. */
export const NOT_RECORDED_RETRY_SECONDS = 5;

function queryImage(v: unknown): string | null {
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string') throw new InvalidInputError('give ?image= once');
  return v;
}

export async function acceptReport(
  deps: ReportDeps,
  upload: ReportUpload,
  now: Date,
): Promise<UploadResult> {
  const { raw, caller } = upload;
  try {
    // The text of bytes that are not UTF-8 is lossy: two such reports would read as one.
    if (upload.rawBody && utf8OrNull(upload.rawBody) === null)
      throw new InvalidInputError('report is not valid UTF-8');
    const image = queryImage(upload.image);
    const outcome = await storeReport(deps, { body: upload.body, raw, image, caller }, now);
    deps.logger.info('report ingested', { caller, ...outcome });
    return { accepted: true, outcome };
  } catch (err) {
    if (err instanceof ClearanceError && err.details?.reason === IMAGE_NOT_RECORDED) {
      deps.logger.warn('report for an image not in the ledger yet: the uploader retries', {
        caller,
        imageId: err.details.imageId,
      });
      return { accepted: false, error: err, retryAfterSeconds: NOT_RECORDED_RETRY_SECONDS };
    }
    if (isRetryable(err) || !(err instanceof ClearanceError) || err.code !== 'invalid-input')
      throw err;
    // The CI job sees a 400 with the issues; the report itself is kept for whoever investigates.
    const id = await deps.ledger.recordDeadLetter(
      {
        source: 'report',
        reason: errorMessage(err),
        problems: err.details?.issues as { path: string; message: string }[] | undefined,
        raw: upload.rawBody ?? raw,
        messageId: createHash('sha256')
          .update(upload.rawBody ?? raw)
          .digest('hex')
          .slice(0, 40),
        attributes: {
          caller,
          ...(typeof upload.image === 'string' ? { image: upload.image } : {}),
        },
      },
      now,
    );
    deps.logger.warn('report rejected and dead-lettered', {
      reason: errorMessage(err),
      deadLetter: id,
    });
    return { accepted: false, error: err, deadLetter: id };
  }
}
