// The notifyOwners service: route, de-duplicate, record as pending, rate-limit, send with retries, dead-letter.
import { createHash, randomUUID } from 'node:crypto';
import type { DocumentReference, Firestore } from '@google-cloud/firestore';
import type { Clock } from '../clock.js';
import { ClearanceError, errorMessage, TransientError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { type Alert, alertContentHash, alertSubject, parseAlert } from './alert.js';
import {
  type BackoffOptions,
  backoffDelay,
  type ChatSender,
  DEFAULT_BACKOFF,
  realSleep,
} from './delivery.js';
import { formatAlert, formatDigest } from './format.js';
import {
  type BucketLimits,
  DEFAULT_LIMITS,
  firestoreTokenBuckets,
  type TokenBucketStore,
} from './rate-limit.js';
import { type Channel, type ChannelKind, type RoutingDocument, routeAlert } from './routing.js';
import type { SecretSource } from './secrets.js';

export const ALERT_STATUSES = [
  /** Recorded, not yet delivered; a redelivery or flushPending sends it. */
  'pending',
  /** An instance holds the lease and is sending. */
  'sending',
  /** Waiting for its space's digest. */
  'queued',
  /** Folded into a digest document (which is delivered like an alert). */
  'digested',
  'delivered',
  /** Permanent failure or attempts exhausted; `reason` says which. */
  'dead',
] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

/** The `alerts/{id}` document. */
export interface AlertDoc {
  id: string;
  kind: 'alert' | 'digest';
  status: AlertStatus;
  space: string;
  channelKind: ChannelKind;
  /** The secret's reference (a name, not the URL). */
  secret: string;
  digestIntervalMinutes: number | null;
  alertType: string | null;
  image: string | null;
  contentHash: string | null;
  /** The alert as JSON (kind alert), or a JSON array of alerts (kind digest). */
  payload: string;
  /** The alert docs a digest folds. */
  members: string[];
  digestId: string | null;
  messageIds: string[];
  attempts: number;
  lastError: string | null;
  reason: string | null;
  leaseId: string | null;
  leaseUntilMs: number;
  notBeforeMs: number;
  dedupeUntilMs: number;
  createdAt: string;
  updatedAt: string;
  deliveredAt: string | null;
  expireAt: Date | null;
}

export type ChannelResult = {
  space: string;
  alertId: string;
  status: 'delivered' | 'duplicate' | 'queued' | 'dead' | 'deferred';
  detail?: string;
};

export interface NotifierOptions {
  db: Firestore;
  routing: RoutingDocument;
  secrets: SecretSource;
  sender: ChatSender;
  clock: Clock;
  logger: Logger;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  buckets?: TokenBucketStore;
  limits?: Partial<Record<ChannelKind, BucketLimits>>;
  backoff?: BackoffOptions;
  /** Identical alerts within this window send nothing (default 24 h). */
  dedupeWindowMs?: number;
  /** Sends before an alert is dead-lettered (default 8). */
  maxAttempts?: number;
  /**
   * How long one invocation may wait in process for a token or a retry (default 45 s); beyond
   * that it leaves the alert pending and throws a TransientError so Pub/Sub redelivers later.
   */
  maxWaitMs?: number;
  /** How long a claim on a pending alert lasts before another delivery may take it over (default 120 s). */
  leaseMs?: number;
  collection?: string;
  /** Most alerts one digest message folds (default 200; the rest go in the next). */
  maxDigestSize?: number;
}

const DAY = 86_400_000;

/** Deterministic id of one alert for one space: the de-duplication key. */
export function alertDocId(
  space: string,
  alert: Alert,
  contentHash = alertContentHash(alert),
): string {
  const h = createHash('sha256')
    .update(
      [
        space,
        ...(alert.image
          ? [alert.image.registry, alert.image.repository, alert.image.digest]
          : [alertSubject(alert), '', '']),
        alert.type,
        contentHash,
      ].join('\n'),
    )
    .digest('hex')
    .slice(0, 40);
  return `a-${h}`;
}

type Claim =
  | { action: 'send'; doc: AlertDoc; leaseId: string }
  | { action: 'skip'; status: ChannelResult['status']; detail: string };

export class Notifier {
  private readonly db: Firestore;
  private readonly o: Required<
    Omit<NotifierOptions, 'db' | 'limits' | 'buckets' | 'collection'>
  > & { limits: Record<ChannelKind, BucketLimits> };
  private readonly buckets: TokenBucketStore;
  private readonly collection: string;

  constructor(options: NotifierOptions) {
    this.db = options.db;
    this.collection = options.collection ?? 'alerts';
    this.buckets = options.buckets ?? firestoreTokenBuckets(options.db);
    this.o = {
      routing: options.routing,
      secrets: options.secrets,
      sender: options.sender,
      clock: options.clock,
      logger: options.logger,
      sleep: options.sleep ?? realSleep,
      random: options.random ?? Math.random,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      dedupeWindowMs: options.dedupeWindowMs ?? DAY,
      maxAttempts: options.maxAttempts ?? 8,
      maxWaitMs: options.maxWaitMs ?? 45_000,
      leaseMs: options.leaseMs ?? 120_000,
      maxDigestSize: options.maxDigestSize ?? 200,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
    };
  }

  private ref(id: string): DocumentReference {
    return this.db.collection(this.collection).doc(id);
  }

  private nowMs(): number {
    return this.o.clock.now().getTime();
  }

  /**
   * Handles one alerts-topic message. Resolves when every routed space has its alert delivered,
   * queued for a digest, de-duplicated or dead-lettered; throws InvalidInputError for a bad
   * alert (ack it) and TransientError when something must be tried again (let Pub/Sub redeliver).
   * Once `signal` is aborted (the delivery was answered at its deadline) nothing more is sent.
   */
  async handle(
    input: unknown,
    messageId: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<ChannelResult[]> {
    const alert = parseAlert(input);
    const route = routeAlert(this.o.routing, alert);
    const log = this.o.logger.child({ alertType: alert.type, messageId, team: route.team });
    if (!route.channels.length) {
      // A break-glass use nobody hears of is an unaudited bypass: said loudly, with what to set.
      const say = alert.type === 'breakglass-used' ? log.error : log.warn;
      say('alert matches no team and there is no fallback or security channel', {
        subject: alertSubject(alert),
      });
      return [];
    }
    const hash = alertContentHash(alert);
    const results: ChannelResult[] = [];
    let transient: unknown;
    for (const channel of route.channels) {
      try {
        results.push(await this.handleChannel(alert, hash, channel, messageId, log, opts.signal));
      } catch (err) {
        if (err instanceof TransientError) {
          transient ??= err;
          results.push({
            space: channel.space,
            alertId: alertDocId(channel.space, alert, hash),
            status: 'deferred',
            detail: err.message,
          });
          continue;
        }
        throw err;
      }
    }
    if (transient) throw transient;
    return results;
  }

  private async handleChannel(
    alert: Alert,
    hash: string,
    channel: Channel,
    messageId: string,
    log: Logger,
    signal: AbortSignal | undefined,
  ): Promise<ChannelResult> {
    const id = alertDocId(channel.space, alert, hash);
    const ref = this.ref(id);
    const claim = await this.db.runTransaction(async (tx): Promise<Claim> => {
      const now = this.nowMs();
      const snap = await tx.get(ref);
      const existing = snap.exists ? (snap.data() as AlertDoc) : null;
      const messageIds = [...new Set([...(existing?.messageIds ?? []), messageId])].slice(-20);
      if (existing) {
        const decided = this.decideExisting(existing, now);
        if (decided) {
          if (!existing.messageIds.includes(messageId)) {
            tx.update(ref, { messageIds, updatedAt: new Date(now).toISOString() });
          }
          return decided;
        }
      }
      const fresh = !existing || ['delivered', 'dead', 'digested'].includes(existing.status);
      const doc: AlertDoc = {
        id,
        kind: 'alert',
        status: channel.digest ? 'queued' : 'sending',
        space: channel.space,
        channelKind: channel.kind,
        secret: channel.secret,
        digestIntervalMinutes: channel.digest?.intervalMinutes ?? null,
        alertType: alert.type,
        image: alertSubject(alert),
        contentHash: hash,
        payload: JSON.stringify(alert),
        members: [],
        digestId: null,
        messageIds,
        attempts: fresh ? 0 : (existing?.attempts ?? 0),
        lastError: fresh ? null : (existing?.lastError ?? null),
        reason: null,
        leaseId: channel.digest ? null : randomUUID(),
        leaseUntilMs: channel.digest ? 0 : now + this.o.leaseMs,
        notBeforeMs: 0,
        dedupeUntilMs: 0,
        createdAt: existing && !fresh ? existing.createdAt : new Date(now).toISOString(),
        updatedAt: new Date(now).toISOString(),
        deliveredAt: null,
        expireAt: null,
      };
      tx.set(ref, doc);
      if (channel.digest) return { action: 'skip', status: 'queued', detail: 'waiting for digest' };
      return { action: 'send', doc, leaseId: doc.leaseId as string };
    });
    if (claim.action === 'skip') {
      log.info(`alert ${claim.status}`, {
        alertId: id,
        space: channel.space,
        detail: claim.detail,
      });
      return { space: channel.space, alertId: id, status: claim.status, detail: claim.detail };
    }
    const status = await this.deliver(ref, claim.doc, claim.leaseId, log, signal);
    return { space: channel.space, alertId: id, status };
  }

  /** What to do with an alert already recorded; null means (re)claim it and send. */
  private decideExisting(d: AlertDoc, now: number): Claim | null {
    switch (d.status) {
      case 'delivered':
      case 'dead':
      case 'digested':
        if (d.dedupeUntilMs > now) {
          return { action: 'skip', status: 'duplicate', detail: `already ${d.status}` };
        }
        return null;
      case 'queued':
        return { action: 'skip', status: 'duplicate', detail: 'already waiting for digest' };
      case 'sending':
        if (d.leaseUntilMs > now) {
          throw new TransientError(`alert ${d.id} is being sent by another delivery`, {
            code: 'conflict',
          });
        }
        return null;
      case 'pending':
        if (d.notBeforeMs > now) {
          throw new TransientError(
            `alert ${d.id} waits until ${new Date(d.notBeforeMs).toISOString()}`,
          );
        }
        return null;
      default: {
        const never: never = d.status;
        throw new Error(`unknown alert status ${String(never)}`);
      }
    }
  }

  /** Claims a recorded pending/sending doc whose lease has lapsed (flushes). */
  private async claimExisting(ref: DocumentReference): Promise<Claim> {
    return this.db.runTransaction(async (tx): Promise<Claim> => {
      const now = this.nowMs();
      const snap = await tx.get(ref);
      if (!snap.exists) return { action: 'skip', status: 'duplicate', detail: 'gone' };
      const d = snap.data() as AlertDoc;
      if (d.status !== 'pending' && d.status !== 'sending') {
        return { action: 'skip', status: 'duplicate', detail: `already ${d.status}` };
      }
      if (d.leaseUntilMs > now || d.notBeforeMs > now) {
        return { action: 'skip', status: 'deferred', detail: 'not due yet' };
      }
      const leaseId = randomUUID();
      const updated: AlertDoc = {
        ...d,
        status: 'sending',
        leaseId,
        leaseUntilMs: now + this.o.leaseMs,
        updatedAt: new Date(now).toISOString(),
      };
      tx.set(ref, updated);
      return { action: 'send', doc: updated, leaseId };
    });
  }

  private render(doc: AlertDoc): unknown {
    if (doc.kind === 'digest') {
      const alerts = (JSON.parse(doc.payload) as unknown[]).map((a) => parseAlert(a));
      return formatDigest(doc.channelKind, alerts);
    }
    return formatAlert(doc.channelKind, parseAlert(JSON.parse(doc.payload)));
  }

  /** Sends a claimed doc: token, POST, retries in process up to maxWaitMs, then a final state or a TransientError. */
  private async deliver(
    ref: DocumentReference,
    doc: AlertDoc,
    leaseId: string,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<'delivered' | 'dead'> {
    const fields = { alertId: doc.id, space: doc.space, channel: doc.channelKind };
    let url: string;
    try {
      url = await this.o.secrets.resolve(doc.secret);
    } catch (err) {
      if (err instanceof ClearanceError && !err.retryable) {
        const reason = `webhook secret ${doc.secret} unusable: ${err.message}`;
        await this.finish(ref, 'dead', doc.attempts, reason);
        log.error('alert dead-lettered', { ...fields, reason });
        return 'dead';
      }
      await this.release(ref, leaseId, doc.attempts, `secret: ${errorMessage(err)}`, 0);
      throw err instanceof TransientError
        ? err
        : new TransientError('webhook secret unavailable', { cause: err });
    }
    const body = this.render(doc);
    const limits = this.o.limits[doc.channelKind];
    let attempts = doc.attempts;
    // Measured on the clock, so time spent in slow sends counts too and the lease outlives the loop.
    const startedAt = this.nowMs();
    const elapsed = () => this.nowMs() - startedAt;
    for (;;) {
      const token = await this.buckets.take(doc.space, this.nowMs(), limits);
      if (!token.granted) {
        if (elapsed() + token.waitMs > this.o.maxWaitMs) {
          await this.release(
            ref,
            leaseId,
            attempts,
            'waiting for a rate-limit token',
            this.nowMs() + token.waitMs,
          );
          log.info('alert deferred: space rate limit', { ...fields, waitMs: token.waitMs });
          throw new TransientError(`space ${doc.space} is rate limited; alert kept pending`);
        }
        await this.o.sleep(token.waitMs);
        continue;
      }
      if (signal?.aborted) {
        // The delivery was answered at its deadline, so a redelivery is coming: hand the claim back
        // for it to send, rather than racing it once the lease runs out (two messages).
        await this.release(ref, leaseId, attempts, 'handler deadline passed', 0);
        throw new TransientError(`alert ${doc.id} not sent: the handler deadline passed`);
      }
      const out = await this.o.sender.send(url, body);
      switch (out.outcome) {
        case 'delivered':
          await this.finish(ref, 'delivered', attempts + 1, null);
          log.info('alert delivered', { ...fields, attempts: attempts + 1, status: out.status });
          return 'delivered';
        case 'permanent':
          await this.finish(ref, 'dead', attempts + 1, out.reason);
          log.error('alert dead-lettered', { ...fields, reason: out.reason });
          return 'dead';
        case 'retry': {
          attempts += 1;
          if (attempts >= this.o.maxAttempts) {
            const reason = `gave up after ${attempts} attempts; last: ${out.reason}`;
            await this.finish(ref, 'dead', attempts, reason);
            log.error('alert dead-lettered', { ...fields, reason });
            return 'dead';
          }
          const delay =
            out.retryAfterMs ?? backoffDelay(attempts - 1, this.o.random, this.o.backoff);
          log.warn('alert send failed; will retry', {
            ...fields,
            attempts,
            reason: out.reason,
            delayMs: delay,
          });
          if (elapsed() + delay > this.o.maxWaitMs) {
            await this.release(ref, leaseId, attempts, out.reason, this.nowMs() + delay);
            throw new TransientError(
              `webhook for ${doc.space} failed (${out.reason}); kept pending`,
            );
          }
          await ref.update({
            attempts,
            lastError: out.reason,
            leaseUntilMs: this.nowMs() + delay + this.o.leaseMs,
            updatedAt: this.o.clock.now().toISOString(),
          });
          await this.o.sleep(delay);
          break;
        }
        default: {
          const never: never = out;
          throw new Error(`unknown send outcome ${JSON.stringify(never)}`);
        }
      }
    }
  }

  /** Gives the claim back: pending, due at notBeforeMs (0 = now). */
  private async release(
    ref: DocumentReference,
    leaseId: string,
    attempts: number,
    lastError: string,
    notBeforeMs: number,
  ): Promise<void> {
    await this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (!snap.exists || (snap.data() as AlertDoc).leaseId !== leaseId) return;
      tx.update(ref, {
        status: 'pending',
        leaseId: null,
        leaseUntilMs: 0,
        notBeforeMs,
        attempts,
        lastError,
        updatedAt: this.o.clock.now().toISOString(),
      });
    });
  }

  private async finish(
    ref: DocumentReference,
    status: 'delivered' | 'dead',
    attempts: number,
    reason: string | null,
  ): Promise<void> {
    const now = this.nowMs();
    const iso = new Date(now).toISOString();
    await ref.update({
      status,
      attempts,
      reason,
      leaseId: null,
      leaseUntilMs: 0,
      notBeforeMs: 0,
      dedupeUntilMs: now + this.o.dedupeWindowMs,
      updatedAt: iso,
      deliveredAt: status === 'delivered' ? iso : null,
      // TTL: delivered records go a day after the window; dead letters are kept for 30 days.
      expireAt: new Date(now + (status === 'delivered' ? this.o.dedupeWindowMs + DAY : 30 * DAY)),
    });
    if (status === 'delivered') {
      const snap = await ref.get();
      const d = snap.data() as AlertDoc | undefined;
      if (d?.kind === 'digest' && d.members.length) {
        const batch = this.db.batch();
        for (const m of d.members) batch.update(this.ref(m), { deliveredAt: iso, updatedAt: iso });
        await batch.commit();
      }
    }
  }

  /**
   * Folds each digest space's queued alerts into one digest document per interval and sends
   * it; also resumes digests a crashed run left pending. Run it from a scheduler (every minute).
   */
  async flushDigests(
    now: Date = this.o.clock.now(),
    signal?: AbortSignal,
  ): Promise<ChannelResult[]> {
    const col = this.db.collection(this.collection);
    const queued = await col.where('status', '==', 'queued').limit(2000).get();
    const spaces = new Map<string, AlertDoc>();
    for (const s of queued.docs) {
      const d = s.data() as AlertDoc;
      if (!spaces.has(d.space)) spaces.set(d.space, d);
    }
    const nowMs = now.getTime();
    for (const [space, sample] of spaces) {
      await this.foldSpace(space, sample, nowMs);
    }
    // One filter, so no composite index is needed; digests are few.
    const due = await col.where('status', 'in', ['pending', 'sending']).limit(500).get();
    return this.resume(
      due.docs.filter((d) => d.get('kind') === 'digest').map((d) => d.ref),
      signal,
    );
  }

  /** Sends alerts left pending (a redelivery that never came, a crash): the scheduled safety net. */
  async flushPending(signal?: AbortSignal): Promise<ChannelResult[]> {
    const col = this.db.collection(this.collection);
    const due = await col.where('status', 'in', ['pending', 'sending']).limit(500).get();
    return this.resume(
      due.docs.map((d) => d.ref),
      signal,
    );
  }

  private async resume(
    refs: DocumentReference[],
    signal: AbortSignal | undefined,
  ): Promise<ChannelResult[]> {
    const results: ChannelResult[] = [];
    for (const ref of refs) {
      // Past the deadline the rest waits for the next flush; claiming more would only hold leases.
      if (signal?.aborted) break;
      const claim = await this.claimExisting(ref);
      if (claim.action === 'skip') {
        results.push({ space: '', alertId: ref.id, status: claim.status, detail: claim.detail });
        continue;
      }
      const log = this.o.logger.child({ alertType: claim.doc.alertType ?? 'digest' });
      try {
        const status = await this.deliver(ref, claim.doc, claim.leaseId, log, signal);
        results.push({ space: claim.doc.space, alertId: ref.id, status });
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        results.push({
          space: claim.doc.space,
          alertId: ref.id,
          status: 'deferred',
          detail: err.message,
        });
      }
    }
    return results;
  }

  /** One transaction: the space's queued alerts become `digested` members of a new pending digest. */
  private async foldSpace(space: string, sample: AlertDoc, nowMs: number): Promise<void> {
    const col = this.db.collection(this.collection);
    const stateRef = this.db.collection('rateBuckets').doc(space);
    const intervalMs = (sample.digestIntervalMinutes ?? 60) * 60_000;
    await this.db.runTransaction(async (tx) => {
      const state = await tx.get(stateRef);
      const last = state.get('lastDigestAtMs');
      if (typeof last === 'number' && last + intervalMs > nowMs) return;
      const members = await tx.get(
        col.where('status', '==', 'queued').where('space', '==', space).limit(this.o.maxDigestSize),
      );
      if (members.empty) return;
      const iso = new Date(nowMs).toISOString();
      const docs = members.docs
        .map((m) => m.data() as AlertDoc)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      const digestId = `d-${space}-${nowMs}`;
      const digest: AlertDoc = {
        id: digestId,
        kind: 'digest',
        status: 'pending',
        space,
        channelKind: sample.channelKind,
        secret: sample.secret,
        digestIntervalMinutes: sample.digestIntervalMinutes,
        alertType: null,
        image: null,
        contentHash: null,
        payload: JSON.stringify(docs.map((d) => JSON.parse(d.payload))),
        members: docs.map((d) => d.id),
        digestId: null,
        messageIds: [],
        attempts: 0,
        lastError: null,
        reason: null,
        leaseId: null,
        leaseUntilMs: 0,
        notBeforeMs: 0,
        dedupeUntilMs: 0,
        createdAt: iso,
        updatedAt: iso,
        deliveredAt: null,
        expireAt: null,
      };
      tx.set(col.doc(digestId), digest);
      for (const d of docs) {
        tx.update(col.doc(d.id), {
          status: 'digested',
          digestId,
          dedupeUntilMs: nowMs + this.o.dedupeWindowMs,
          expireAt: new Date(nowMs + this.o.dedupeWindowMs + DAY),
          updatedAt: iso,
        });
      }
      tx.set(stateRef, { lastDigestAtMs: nowMs }, { merge: true });
    });
  }
}
