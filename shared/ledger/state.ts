// The image state machine, derived from the record's facts so events in any order converge to one state.
import type { ImageRecord, ImageState } from '../image-record.js';

/** pushed → scanning → evaluated → attested | denied → revoked | deleted */
export function deriveState(
  r: Pick<ImageRecord, 'pushedAt' | 'deletedAt' | 'scan' | 'verdicts' | 'attestations'>,
): ImageState {
  if (r.deletedAt && (!r.pushedAt || r.deletedAt >= r.pushedAt)) return 'deleted';
  const active = r.attestations.filter((a) => !a.revokedAt);
  if (active.length > 0) return 'attested';
  const verdicts = Object.values(r.verdicts);
  if (verdicts.some((v) => v.decision === 'deny' && v.mode === 'enforce')) {
    return r.attestations.length > 0 ? 'revoked' : 'denied';
  }
  if (r.attestations.length > 0) return 'revoked';
  if (verdicts.length > 0 && verdicts.some((v) => v.decision !== 'pending')) return 'evaluated';
  if (r.scan.status !== 'none') return 'scanning';
  return 'pushed';
}

/** The bookkeeping every write of an image carries: the next version, the time, the derived state. */
export function finishRecord(rec: ImageRecord, now: string): ImageRecord {
  const next = { ...rec, version: rec.version + 1, updatedAt: now };
  next.state = deriveState(next);
  return next;
}
