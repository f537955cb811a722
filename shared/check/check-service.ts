// Answers "may I deploy this image?" from stored verdicts, with a short per-instance cache that never outlives its TTL.

import type { Clock } from '../clock.js';
import { ClearanceError, errorMessage } from '../errors.js';
import type { ImageRecord } from '../image-record.js';
import type { Reason } from '../verdict.js';
import { type AdmissionSettings, CHECK_RULES, type CheckAnswer, decide, reason } from './decide.js';

/** Where verdicts are read from; Firestore in production, fakes in unit tests. */
export interface VerdictStore {
  getImage(id: string): Promise<ImageRecord | null>;
  /** The digest the tag points at now, or null when the ledger does not know the tag. */
  resolveTag(registry: string, repository: string, tag: string): Promise<string | null>;
  getAdmissionSettings(): Promise<AdmissionSettings>;
}

export interface ParsedRef {
  registry: string;
  repository: string;
  tag: string | null;
  digest: string | null;
}

export interface CheckServiceOptions {
  store: VerdictStore;
  clock: Clock;
  /** Throws for a reference that is not an image reference. */
  parseRef: (ref: string) => ParsedRef;
  imageId: (registry: string, repository: string, digest: string) => string;
  /** How long a read is reused; a verdict changed in the ledger is served at most this late. */
  ttlMs: number;
  /** A store read slower than this is treated as a failure: the answer is deny. */
  timeoutMs: number;
  /** Entries kept per cache; the oldest are dropped beyond it. */
  maxEntries?: number;
}

interface Entry<T> {
  value: T;
  expires: number;
}

const unavailable = (what: string, why: string): Reason =>
  reason(
    CHECK_RULES.unavailable,
    `Clearance could not read ${what} (${why}); denying (fail closed)`,
    'retry in a moment; if it persists, check the ledger (Firestore) health',
  );

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(
          () => rej(new ClearanceError('timeout', `store read took longer than ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A TTL cache whose misses are single-flight: concurrent askers of one key share one read, and a
 * failed read is never cached (the next asker tries again).
 */
class TtlCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly inflight = new Map<string, Promise<T>>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The fresh cached entry, if any, without reading the store; `nowMs` saves a clock read per call. */
  peek(key: string, nowMs = this.clock.now().getTime()): Entry<T> | undefined {
    const e = this.entries.get(key);
    return e !== undefined && e.expires > nowMs ? e : undefined;
  }

  get(key: string, load: () => Promise<T>): T | Promise<T> {
    const e = this.entries.get(key);
    if (e !== undefined && e.expires > this.clock.now().getTime()) return e.value;
    const running = this.inflight.get(key);
    if (running) return running;
    const started = this.clock.now().getTime();
    const p = load().then(
      (value) => {
        this.inflight.delete(key);
        // The TTL starts when the read was asked for, so an answer is never older than the TTL.
        if (this.entries.size >= this.maxEntries) {
          const oldest = this.entries.keys().next().value;
          if (oldest !== undefined) this.entries.delete(oldest);
        }
        this.entries.delete(key);
        this.entries.set(key, { value, expires: started + this.ttlMs });
        return value;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  clear(): void {
    this.entries.clear();
  }
}

export class CheckService {
  private readonly records: TtlCache<ImageRecord | null>;
  private readonly tags: TtlCache<string | null>;
  private readonly settings: TtlCache<AdmissionSettings>;
  /**
   * Decisions memoised per cached record (a record object is one id at one version: a new version is
   * a new object), then per environment, for the policy they were decided under.
   */
  private readonly answers = new WeakMap<
    ImageRecord,
    Map<string, { policyHash: string | null; answer: CheckAnswer }>
  >();
  private readonly maxEntries: number;
  private readonly refs = new Map<string, ParsedRef>();
  private readonly ids = new WeakMap<ParsedRef, string>();

  constructor(private readonly o: CheckServiceOptions) {
    this.maxEntries = o.maxEntries ?? 10_000;
    this.records = new TtlCache(o.clock, o.ttlMs, this.maxEntries);
    this.tags = new TtlCache(o.clock, o.ttlMs, this.maxEntries);
    this.settings = new TtlCache(o.clock, o.ttlMs, 1);
  }

  private read<T>(what: Promise<T> | T): Promise<T> | T {
    return what instanceof Promise ? withTimeout(what, this.o.timeoutMs) : what;
  }

  /** The admission settings of the current policy (cached like verdicts). */
  async admissionSettings(): Promise<AdmissionSettings> {
    return this.read(this.settings.get('current', () => this.o.store.getAdmissionSettings()));
  }

  /**
   * Parses a reference, memoised: parsing and validating a reference costs more than a cache hit,
   * and deploys ask about the same few references over and over. Throws for a bad reference.
   */
  reference(input: string): ParsedRef {
    const known = this.refs.get(input);
    if (known) return known;
    const ref = this.o.parseRef(input);
    if (this.refs.size >= this.maxEntries) this.refs.clear();
    this.refs.set(input, ref);
    return ref;
  }

  private imageIdOf(ref: ParsedRef, digest: string): string {
    if (digest === ref.digest) {
      let id = this.ids.get(ref);
      if (id === undefined) {
        id = this.o.imageId(ref.registry, ref.repository, digest);
        this.ids.set(ref, id);
      }
      return id;
    }
    return this.o.imageId(ref.registry, ref.repository, digest);
  }

  /**
   * The answer from the cache alone, or undefined when anything it needs is missing or stale. This
   * is the hot path: synchronous, so a cache hit costs no promise (each one is tracked by the
   * functions-framework's request domain).
   */
  cached(input: string, environment: string): CheckAnswer | undefined {
    const now = this.o.clock.now().getTime();
    const settings = this.settings.peek('current', now);
    if (!settings) return undefined;
    let ref: ParsedRef;
    try {
      ref = this.reference(input);
    } catch {
      return undefined;
    }
    let digest = ref.digest;
    if (!digest) {
      const t = this.tags.peek(`${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}`, now);
      if (!t?.value) return undefined;
      digest = t.value;
    }
    const record = this.records.peek(this.imageIdOf(ref, digest), now)?.value;
    if (!record) return undefined;
    const hit = this.memo(record, environment, settings.value.policyHash);
    if (!hit) return undefined;
    return hit.image === input ? hit : { ...hit, image: input };
  }

  private memo(record: ImageRecord, environment: string, policyHash: string | null) {
    const m = this.answers.get(record)?.get(environment);
    return m !== undefined && m.policyHash === policyHash ? m.answer : undefined;
  }

  /** Judges one reference for one environment; never throws (store trouble and bad references deny). */
  async check(input: string, environment: string): Promise<CheckAnswer> {
    const fast = this.cached(input, environment);
    if (fast) return fast;
    let ref: ParsedRef;
    try {
      ref = this.reference(input);
    } catch (err) {
      return this.denied(input, null, environment, [
        reason(
          CHECK_RULES.invalidReference,
          errorMessage(err),
          'use registry/repository[:tag][@sha256:…]',
        ),
      ]);
    }
    let settings: AdmissionSettings;
    try {
      settings = await this.admissionSettings();
    } catch (err) {
      return this.denied(input, ref.digest, environment, [
        unavailable('the policy', errorMessage(err)),
      ]);
    }
    let digest = ref.digest;
    try {
      if (!digest) {
        // A reference with neither tag nor digest runs `latest`, as the container runtime pulls it.
        const { registry, repository } = ref;
        const tag = ref.tag ?? 'latest';
        digest = await this.read(
          this.tags.get(`${registry}/${repository}:${tag}`, () =>
            this.o.store.resolveTag(registry, repository, tag),
          ),
        );
      }
      let record: ImageRecord | null = null;
      if (digest) {
        const id = this.imageIdOf(ref, digest);
        record = await this.read(this.records.get(id, () => this.o.store.getImage(id)));
      }
      const hit = record ? this.memo(record, environment, settings.policyHash) : undefined;
      if (hit) return hit.image === input ? hit : { ...hit, image: input };
      const answer = decide({ image: input, digest, environment, record, settings });
      if (record) {
        let byEnv = this.answers.get(record);
        if (!byEnv) {
          byEnv = new Map();
          this.answers.set(record, byEnv);
        }
        byEnv.set(environment, { policyHash: settings.policyHash, answer });
      }
      return answer;
    } catch (err) {
      return this.denied(input, digest, environment, [
        unavailable('the ledger', errorMessage(err)),
      ]);
    }
  }

  /** Judges several references at once; each reference is read once even if listed twice. */
  async checkAll(inputs: readonly string[], environment: string): Promise<CheckAnswer[]> {
    const unique = [...new Set(inputs)];
    const answers = new Map(
      await Promise.all(unique.map(async (i) => [i, await this.check(i, environment)] as const)),
    );
    return inputs.map((i) => answers.get(i) as CheckAnswer);
  }

  private denied(
    image: string,
    digest: string | null,
    environment: string,
    reasons: Reason[],
  ): CheckAnswer {
    return {
      image,
      digest,
      environment,
      decision: 'deny',
      verdict: 'unknown',
      mode: 'enforce',
      reasons,
      attestation: null,
      decidedAt: null,
      policyHash: null,
    };
  }
}
