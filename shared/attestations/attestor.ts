// Decides when an image gets or loses its attestations and does it: one per (image, policy, format), never twice.
import type { Clock } from '../clock.js';
import { TransientError } from '../errors.js';
import type { Attestation, ImageRecord } from '../image-record.js';
import type { Logger } from '../logging/logger.js';
import type { Verdict } from '../verdict.js';
import { attestationOccurrence, binauthzPayload, imageResourceUri } from './binauthz.js';
import { dsseSign, IN_TOTO_PAYLOAD_TYPE, verificationSummaryStatement } from './dsse.js';
import type { AttestationWriter } from './occurrences.js';
import type { Signer } from './signer.js';

export type AttestationFormat = Attestation['format'];

export type ClaimResult =
  /** `token` identifies this claim, so a late release cannot drop a successor's claim. */
  | { status: 'claimed'; token: string }
  /** An active attestation for (image, policy, format) is already recorded; `held` as in RecordResult. */
  | { status: 'exists'; attestation: Attestation; held: string[] }
  /** Another worker holds a live claim; try again after it (Pub/Sub redelivery does that). */
  | { status: 'busy'; leaseUntil: string };

/** `held`: the occurrences the image's active binauthz attestations name, as committed (any policy). */
export type RecordResult =
  | { status: 'recorded'; held: string[] }
  | { status: 'exists'; attestation: Attestation; held: string[] }
  /** The image no longer passes `check`; nothing was recorded. `image` is the fresh record. */
  | { status: 'stale'; image: ImageRecord };

/** The image ledger as the attestor needs it; the Firestore implementation is ledger/attestation-ledger.ts. */
export interface AttestationLedger {
  /** Atomically: `exists` if recorded, `busy` if someone's lease is live, else take a lease until now+leaseMs. */
  claim(
    imageId: string,
    policyHash: string,
    format: AttestationFormat,
    now: Date,
    leaseMs: number,
  ): Promise<ClaimResult>;
  /** Gives a claim back after a failure so a retry need not wait for the lease to run out. */
  release(
    imageId: string,
    policyHash: string,
    format: AttestationFormat,
    token: string,
  ): Promise<void>;
  /** Atomically: re-checks the fresh record with `check`, appends the attestation, drops the claim. */
  record(
    imageId: string,
    attestation: Attestation,
    check: (image: ImageRecord) => boolean,
  ): Promise<RecordResult>;
  /** Marks every active attestation revoked with the reason; returns those it marked. */
  markRevoked(imageId: string, reason: string, now: Date): Promise<Attestation[]>;
}

export type AttestationDecision =
  | { action: 'attest'; policyHash: string }
  | { action: 'revoke'; reason: string }
  | { action: 'none'; why: string };

/**
 * The rule: an image is attested when every *enforce* verdict that gates attestation allows, all
 * from one policy. One attestor note serves every cluster that requires it, so a single enforce
 * environment that denies must keep the image out (a prod deny outranks a dev allow). Dry-run
 * verdicts never gate: they do not block deploys either. Any enforce deny, or a deleted image,
 * revokes. Pending verdicts (scan or re-evaluation in progress) change nothing either way, so a
 * policy re-evaluation does not blink attestations off and on.
 * `environments` narrows the gating set; a listed environment without a verdict counts as pending.
 */
export function decideAttestation(
  image: ImageRecord,
  environments?: readonly string[],
): AttestationDecision {
  if (image.state === 'deleted' || image.deletedAt !== null) {
    return { action: 'revoke', reason: 'image deleted' };
  }
  const names = environments ?? Object.keys(image.verdicts).sort();
  const gating: (Verdict | undefined)[] = names
    .map((env) => image.verdicts[env])
    .filter((v) => v === undefined || v.mode === 'enforce');
  if (gating.length === 0) return { action: 'none', why: 'no enforce verdict gates attestation' };
  const denied = gating.find((v) => v?.decision === 'deny');
  if (denied) {
    const first = denied.reasons.find((r) => r.level === 'deny');
    const why = first ? `: ${first.ruleId}: ${first.message}` : '';
    return {
      action: 'revoke',
      reason: `denied in ${denied.environment} by policy ${denied.policyHash}${why}`,
    };
  }
  if (gating.some((v) => v === undefined || v.decision === 'pending')) {
    return { action: 'none', why: 'a gating verdict is pending' };
  }
  const hashes = new Set(gating.map((v) => v?.policyHash));
  if (hashes.size !== 1)
    return { action: 'none', why: 'gating verdicts come from different policies' };
  return { action: 'attest', policyHash: [...hashes][0] as string };
}

/** What happened per format: created anew, adopted an occurrence a crashed run left, already recorded, or skipped as stale. */
export type FormatOutcome = 'created' | 'adopted' | 'exists' | 'stale';

export type AttestOutcome =
  | { status: 'skipped'; why: string }
  | {
      status: 'done';
      policyHash: string;
      formats: Partial<Record<AttestationFormat, FormatOutcome>>;
    };

export interface RevokeOutcome {
  deletedOccurrences: string[];
  revoked: Attestation[];
}

export interface AttestorOptions {
  signer: Signer;
  ledger: AttestationLedger;
  /** Needed for the binauthz format (with noteName); without them only DSSE is produced. */
  writer?: AttestationWriter;
  /** The attestor's note, projects/P/notes/N (CLEARANCE_ATTESTOR_NOTE). */
  noteName?: string;
  /** `verifier.id` of the verification summary, e.g. https://github.com/<org>/clearance. */
  verifierId: string;
  formats?: readonly AttestationFormat[];
  environments?: readonly string[];
  /**
   * SLSA levels the summary claims. Default: SLSA_BUILD_LEVEL_1 when the ledger holds provenance
   * for the image (level 1 means provenance exists), else SLSA_BUILD_LEVEL_0. Higher levels need
   * the policy's provenance checks to vouch for the builder, so the caller must say so.
   */
  verifiedLevels?: (image: ImageRecord) => string[];
  policyUri?: (policyHash: string) => string | undefined;
  /** How long a claim keeps other workers off; longer than one attempt takes. Default 120 s. */
  leaseMs?: number;
  /**
   * Times the lease from when the claim is taken, not from the message's `now`: a delivery that
   * waited on Firestore would otherwise take a lease already short, or already over.
   */
  clock?: Clock;
  logger?: Logger;
}

export interface Attestor {
  decide(image: ImageRecord): AttestationDecision;
  /**
   * Attests when the rule says so; `policyHash`, when given, must be the one the record shows.
   * Once `signal` is aborted (the delivery was answered at its deadline) no occurrence is created.
   */
  attest(input: {
    image: ImageRecord;
    now: Date;
    policyHash?: string;
    signal?: AbortSignal;
  }): Promise<AttestOutcome>;
  /** Deletes the image's attestation occurrences (recorded or found) and marks the ledger. */
  revoke(input: { image: ImageRecord; reason: string; now: Date }): Promise<RevokeOutcome>;
  /** Attest or revoke, whichever the current record calls for. */
  reconcile(input: { image: ImageRecord; now: Date; signal?: AbortSignal }): Promise<
    | { action: 'attest'; outcome: AttestOutcome }
    | { action: 'revoke'; outcome: RevokeOutcome }
    | {
        action: 'none';
        why: string;
      }
  >;
}

function defaultLevels(image: ImageRecord): string[] {
  return [image.provenance ? 'SLSA_BUILD_LEVEL_1' : 'SLSA_BUILD_LEVEL_0'];
}

function isActive(a: Attestation): boolean {
  return a.revokedAt === null;
}

export function createAttestor(options: AttestorOptions): Attestor {
  const { signer, ledger, writer, noteName } = options;
  const leaseMs = options.leaseMs ?? 120_000;
  const formats = (options.formats ?? ['binauthz', 'dsse']).filter(
    (f) => f !== 'binauthz' || (writer !== undefined && noteName !== undefined),
  );
  const decide = (image: ImageRecord) => decideAttestation(image, options.environments);

  async function withClaim(
    image: ImageRecord,
    policyHash: string,
    format: AttestationFormat,
    now: Date,
    work: () => Promise<FormatOutcome>,
    onExists?: (held: string[]) => Promise<void>,
  ): Promise<FormatOutcome> {
    const claim = await ledger.claim(
      image.id,
      policyHash,
      format,
      options.clock?.now() ?? now,
      leaseMs,
    );
    let token: string;
    switch (claim.status) {
      case 'exists':
        await onExists?.(claim.held);
        return 'exists';
      case 'busy':
        throw new TransientError(`another worker is attesting ${image.id} (${format})`, {
          code: 'conflict',
          details: { imageId: image.id, format, leaseUntil: claim.leaseUntil },
        });
      case 'claimed':
        token = claim.token;
        break;
      default: {
        const never: never = claim;
        throw new Error(`unexpected claim ${JSON.stringify(never)}`);
      }
    }
    try {
      return await work();
    } catch (err) {
      await ledger.release(image.id, policyHash, format, token).catch(() => undefined);
      throw err;
    }
  }

  const stillAttests = (policyHash: string) => (fresh: ImageRecord) => {
    const d = decide(fresh);
    return d.action === 'attest' && d.policyHash === policyHash;
  };

  async function attestBinauthz(
    image: ImageRecord,
    policyHash: string,
    now: Date,
    signal: AbortSignal | undefined,
  ): Promise<FormatOutcome> {
    if (!writer || !noteName) throw new Error('binauthz needs a writer and a note');
    const resourceUri = imageResourceUri(image.registry, image.repository, image.digest);
    /**
     * Deletes this image's occurrences under our note and key that no active attestation holds: one
     * created by a worker that could not record it (its lease ran out while it waited on a
     * backend, or it failed after creating) would keep admitting the image with nothing in the
     * ledger to revoke it by.
     */
    const dropUnheld = async (held: readonly string[]) => {
      if (held.length === 0) return;
      for (const name of await writer.findExisting(resourceUri, noteName, signer.keyId)) {
        if (!held.includes(name)) await writer.delete(name);
      }
    };
    return withClaim(
      image,
      policyHash,
      'binauthz',
      now,
      async () => {
        // A run that died after creating the occurrence left it behind: adopt it, never add a second.
        const existing = await writer.findExisting(resourceUri, noteName, signer.keyId);
        let name: string;
        let created = false;
        if (existing.length > 0) {
          name = existing[0];
        } else {
          const payload = binauthzPayload(image.registry, image.repository, image.digest);
          const signature = await signer.sign(payload);
          // A worker whose delivery was already answered has a redelivery doing this work: a
          // second occurrence created now, by a worker nobody retries, could outlive every cleanup.
          signal?.throwIfAborted();
          const occurrence = attestationOccurrence({
            noteName,
            resourceUri,
            payload,
            signature,
            keyId: signer.keyId,
          });
          name = (await writer.create(occurrence)).name;
          created = true;
        }
        const result = await ledger.record(
          image.id,
          {
            format: 'binauthz',
            keyId: signer.keyId,
            policyHash,
            occurrence: name,
            envelope: null,
            createdAt: now.toISOString(),
            revokedAt: null,
            revokedReason: null,
          },
          stillAttests(policyHash),
        );
        switch (result.status) {
          case 'recorded':
            await dropUnheld(result.held);
            return created ? 'created' : 'adopted';
          case 'exists':
            // A worker whose lease outlived it got there first with its own occurrence: ours, not
            // held, goes with any other unheld one.
            await dropUnheld(result.held);
            return 'exists';
          case 'stale':
            // The verdict turned while we signed: an occurrence the ledger does not hold would keep
            // admitting the image with nothing in the ledger to revoke later, so it goes.
            if (
              !result.image.attestations.some(
                (a) => isActive(a) && a.format === 'binauthz' && a.occurrence === name,
              )
            )
              await writer.delete(name);
            return 'stale';
          default: {
            const never: never = result;
            throw new Error(`unexpected record result ${JSON.stringify(never)}`);
          }
        }
      },
      dropUnheld,
    );
  }

  async function attestDsse(
    image: ImageRecord,
    policyHash: string,
    now: Date,
  ): Promise<FormatOutcome> {
    // Validates the name the same way the binauthz path does before anything is signed.
    imageResourceUri(image.registry, image.repository, image.digest);
    return withClaim(image, policyHash, 'dsse', now, async () => {
      const statement = verificationSummaryStatement({
        imageName: `${image.registry}/${image.repository}`,
        digest: image.digest,
        verifierId: options.verifierId,
        timeVerified: now.toISOString(),
        policyHash,
        result: 'PASSED',
        levels: (options.verifiedLevels ?? defaultLevels)(image),
        policyUri: options.policyUri?.(policyHash),
      });
      const envelope = await dsseSign(signer, IN_TOTO_PAYLOAD_TYPE, JSON.stringify(statement));
      const result = await ledger.record(
        image.id,
        {
          format: 'dsse',
          keyId: signer.keyId,
          policyHash,
          occurrence: null,
          envelope: JSON.stringify(envelope),
          createdAt: now.toISOString(),
          revokedAt: null,
          revokedReason: null,
        },
        stillAttests(policyHash),
      );
      return result.status === 'recorded' ? 'created' : result.status;
    });
  }

  async function attest(input: {
    image: ImageRecord;
    now: Date;
    policyHash?: string;
    signal?: AbortSignal;
  }): Promise<AttestOutcome> {
    const { image, now, signal } = input;
    const d = decide(image);
    if (d.action !== 'attest') {
      return { status: 'skipped', why: d.action === 'none' ? d.why : `revoke due: ${d.reason}` };
    }
    if (input.policyHash !== undefined && input.policyHash !== d.policyHash) {
      return {
        status: 'skipped',
        why: `record is at policy ${d.policyHash}, not ${input.policyHash}`,
      };
    }
    const out: Partial<Record<AttestationFormat, FormatOutcome>> = {};
    for (const format of formats) {
      switch (format) {
        case 'binauthz':
          out.binauthz = await attestBinauthz(image, d.policyHash, now, signal);
          break;
        case 'dsse':
          out.dsse = await attestDsse(image, d.policyHash, now);
          break;
        default: {
          const never: never = format;
          throw new Error(`unknown attestation format ${String(never)}`);
        }
      }
    }
    options.logger?.info('attestations ensured', {
      imageId: image.id,
      policyHash: d.policyHash,
      formats: out,
    });
    return { status: 'done', policyHash: d.policyHash, formats: out };
  }

  async function revoke(input: {
    image: ImageRecord;
    reason: string;
    now: Date;
  }): Promise<RevokeOutcome> {
    const { image, reason, now } = input;
    const names = new Set(
      image.attestations
        .filter((a) => isActive(a) && a.occurrence !== null)
        .map((a) => a.occurrence as string),
    );
    if (writer && noteName) {
      let resourceUri: string | undefined;
      try {
        resourceUri = imageResourceUri(image.registry, image.repository, image.digest);
      } catch {
        // An unattestable name never got an occurrence; nothing to look for.
      }
      // Whatever our note holds for this image goes, recorded or not (a crash may have left one).
      if (resourceUri)
        for (const n of await writer.findExisting(resourceUri, noteName)) names.add(n);
    }
    const deleted: string[] = [];
    const remove = async (name: string) => {
      if (!writer) return;
      await writer.delete(name);
      deleted.push(name);
    };
    // Occurrences go first: the ledger never says "revoked" while Binary Authorization still admits.
    for (const name of names) await remove(name);
    const revoked = await ledger.markRevoked(image.id, reason, now);
    for (const a of revoked) {
      if (a.occurrence && !names.has(a.occurrence)) {
        names.add(a.occurrence);
        await remove(a.occurrence);
      }
    }
    options.logger?.info('attestations revoked', {
      imageId: image.id,
      reason,
      occurrences: deleted,
      revoked: revoked.length,
    });
    return { deletedOccurrences: deleted, revoked };
  }

  return {
    decide,
    attest,
    revoke,
    async reconcile({ image, now, signal }) {
      const d = decide(image);
      switch (d.action) {
        case 'attest':
          return { action: 'attest', outcome: await attest({ image, now, signal }) };
        case 'revoke':
          // Even with nothing attested in the ledger: revoke searches the note, where a run that
          // failed to record its attestation may have left an occurrence that still admits.
          return { action: 'revoke', outcome: await revoke({ image, reason: d.reason, now }) };
        case 'none':
          return { action: 'none', why: d.why };
        default: {
          const never: never = d;
          throw new Error(`unexpected decision ${JSON.stringify(never)}`);
        }
      }
    },
  };
}
