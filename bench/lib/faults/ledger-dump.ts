// A canonical dump of the ledger (every collection, recursively) without what legitimately differs between two runs of the same events: times and counters.
import type { DocumentReference, Firestore } from '@google-cloud/firestore';

const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})/g;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/**
 * Collections that are delivery bookkeeping, not what the ledger says: event markers (which
 * event carried which effect depends on arrival order) and the notifier's alert and rate-limit
 * state (alerts are compared as the chat space received them).
 */
export const BOOKKEEPING = ['events', 'alerts', 'rateBuckets'] as const;

/**
 * Fields that count writes or record when a write happened rather than what the ledger says:
 * they differ between a sequential run and a concurrent one by design.
 */
export const VOLATILE_FIELDS = new Set([
  'version',
  'updatedAt',
  'recordedAt',
  'receivedAt',
  // A DSSE envelope signs a statement with its signing time: same claim, other bytes.
  'envelope',
  // How many registry reads a push took (and when the last was) counts the outages it met.
  'attempts',
  'lastAttemptAt',
  // When the sweep may read a waiting image again follows from when its reads failed.
  'nextAttemptAt',
]);

/**
 * Audit entries of a registry read that failed for now and was retried: they record the outage a
 * delivery met, not what the ledger says (the read that succeeded has its own entry).
 */
const TRANSIENT_AUDIT_KINDS = new Set(['registry-read-failed']);

/**
 * Per-collection fields that count transitions over time (the fleet's verdicts per day): another
 * arrival order passes through other intermediate verdicts, so they differ by design.
 */
const HISTORY_FIELDS: Record<string, readonly string[]> = { fleetStats: ['days'] };

/** Counter shards: a counter at 0 says what an absent one says (an image passed through and left). */
const COUNTER_COLLECTIONS = new Set(['fleetStats']);

function withoutZeros(value: unknown): unknown {
  if (value === 0) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const kept = withoutZeros(v);
    if (kept !== undefined) out[k] = kept;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * An audit entry's id is its event's (one per message); entries Clearance writes itself (an
 * attestation) are keyed by their time. Which event's entry records a verdict change depends on
 * arrival order, so entries are compared by kind and message, without that attribution.
 */
const AUDIT_ATTRIBUTION = new Set(['verdictChanges', 'policyHash', 'effects', 'outcome']);

/** Each run has its own emulator project: its name in occurrence and note names is not content. */
let projectName: string | null = null;

/** A string as both runs would write it: times, random ids and the run's project name replaced. */
export function canonicalText(value: string): string {
  const out = value.replace(ISO_TIME, '<time>').replace(UUID, '<uuid>');
  return projectName ? out.replaceAll(projectName, '<project>') : out;
}

function canonical(value: unknown): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (typeof value === 'string') return canonicalText(value);
  if (typeof value !== 'object') return value;
  if (typeof (value as { toDate?: unknown }).toDate === 'function') return '<time>';
  if (Array.isArray(value)) return value.map(canonical);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (VOLATILE_FIELDS.has(key)) continue;
    out[key] = canonical((value as Record<string, unknown>)[key]);
  }
  return out;
}

async function walk(ref: DocumentReference, out: Map<string, string>): Promise<void> {
  const snap = await ref.get();
  if (snap.exists) {
    const data = snap.data() as Record<string, unknown>;
    if (ref.parent.id === 'audit' && TRANSIENT_AUDIT_KINDS.has(String(data.kind))) {
      // left out: see TRANSIENT_AUDIT_KINDS
    } else if (ref.parent.id === 'audit') {
      const entry = Object.fromEntries(
        Object.entries(data).filter(([k]) => !AUDIT_ATTRIBUTION.has(k)),
      );
      const key = `${ref.parent.path}/${String(canonical(`${String(data.kind)}:${String(data.messageId)}`))}`;
      out.set(key, JSON.stringify(canonical(entry)));
    } else {
      const history = HISTORY_FIELDS[ref.parent.id] ?? [];
      const kept = Object.fromEntries(Object.entries(data).filter(([k]) => !history.includes(k)));
      const counted = COUNTER_COLLECTIONS.has(ref.parent.id) ? (withoutZeros(kept) ?? {}) : kept;
      out.set(ref.path, JSON.stringify(canonical(counted)));
    }
  }
  for (const sub of await ref.listCollections()) {
    for (const d of await sub.listDocuments()) await walk(d, out);
  }
}

/** Path → canonical JSON of every document, except the collections named in `skip`. */
export async function dumpLedger(
  db: Firestore,
  projectId: string,
  skip: readonly string[] = BOOKKEEPING,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  projectName = projectId;
  for (const c of await db.listCollections()) {
    if (skip.includes(c.id)) continue;
    for (const d of await c.listDocuments()) await walk(d, out);
  }
  return out;
}

/** The audit entries of attesting an image and of revoking its attestations. */
const ATTESTATION_AUDIT_KINDS = ['attested', 'attestations-revoked'] as const;

/**
 * A deleted image's attestation history without what depends on when the delete arrived: a
 * delete delivered before the image's verdict means it was never attested (nothing to revoke),
 * after it means attested then revoked. Both end with no active attestation, which is what stays
 * compared (an attestation still active on a deleted image is a difference). Returns the ids of
 * the deleted images.
 */
export function forgetDeletedHistory(dump: Map<string, string>): string[] {
  const deleted: string[] = [];
  for (const [path, json] of dump) {
    const parts = path.split('/');
    if (parts.length !== 2 || parts[0] !== 'images') continue;
    const doc = JSON.parse(json) as { state?: string; attestations?: { revokedAt: unknown }[] };
    if (doc.state !== 'deleted') continue;
    deleted.push(parts[1] as string);
    doc.attestations = (doc.attestations ?? []).filter((a) => a.revokedAt === null);
    dump.set(path, JSON.stringify(doc));
  }
  for (const id of deleted)
    for (const kind of ATTESTATION_AUDIT_KINDS)
      for (const path of [...dump.keys()])
        if (path.startsWith(`images/${id}/audit/${kind}:`)) dump.delete(path);
  return deleted;
}

export interface DumpDiff {
  equal: boolean;
  missing: string[];
  extra: string[];
  changed: string[];
}

export function diffDumps(expected: Map<string, string>, actual: Map<string, string>): DumpDiff {
  const missing = [...expected.keys()].filter((k) => !actual.has(k)).sort();
  const extra = [...actual.keys()].filter((k) => !expected.has(k)).sort();
  const changed = [...expected.keys()]
    .filter((k) => actual.has(k) && actual.get(k) !== expected.get(k))
    .sort();
  return {
    equal: missing.length === 0 && extra.length === 0 && changed.length === 0,
    missing,
    extra,
    changed,
  };
}
