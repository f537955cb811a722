// Answers "may I deploy this image?" from stored verdicts, with a short per-instance cache that never outlives its TTL.
import { ClearanceError } from '../errors.js';
import type { ImageRecord, Reason } from '../ledger/image-record.js';
import type { Clock } from '../runtime/clock.js';
import { type AdmissionSettings, type CheckAnswer, decide } from './decide.js';

/** Where verdicts are read from; Firestore in production, fakes in unit tests. */
export interface VerdictStore {
  getImage(id: string): Promise<ImageRecord | null>;
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
  parseRef: (ref: string) => ParsedRef;
  imageId: (registry: string, repository: string, digest: string) => string;
  ttlMs: number;
  /** A store read slower than this is treated as a failure: the answer is deny. */
  timeoutMs: number;
}

interface Entry<T> {
  value: T;
  expires: number;
}

const unavailable = (what: string): Reason => ({
  ruleId: 'check.unavailable',
  level: 'deny',
  message: `Clearance could not read ${what}; denying (fail closed)`,
  remediation: 'retry in a moment; if it persists, check the ledger (Firestore) health',
});

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

export class CheckService {
  private readonly records = new Map<string, Entry<ImageRecord | null>>();
  private readonly tags = new Map<string, Entry<string | null>>();
  private readonly answers = new Map<string, CheckAnswer>();
  private settings: Entry<AdmissionSettings> | undefined;

  constructor(private readonly o: CheckServiceOptions) {}

  private fresh<T>(e: Entry<T> | undefined, now: number): e is Entry<T> {
    return e !== undefined && e.expires > now;
  }

  async admissionSettings(): Promise<AdmissionSettings> {
    const now = this.o.clock.now().getTime();
    if (this.fresh(this.settings, now)) return this.settings.value;
    const value = await withTimeout(this.o.store.getAdmissionSettings(), this.o.timeoutMs);
    this.settings = { value, expires: now + this.o.ttlMs };
    return value;
  }

  /** Judges one reference for one environment; never throws for store trouble (it denies instead). */
  async check(input: string, environment: string): Promise<CheckAnswer> {
    const ref = this.o.parseRef(input);
    const now = this.o.clock.now().getTime();
    let settings: AdmissionSettings;
    try {
      settings = await this.admissionSettings();
    } catch {
      return this.failClosed(input, ref.digest, environment, 'the policy');
    }
    let digest = ref.digest;
    try {
      if (!digest && ref.tag) {
        const key = `${ref.registry}/${ref.repository}:${ref.tag}`;
        let t = this.tags.get(key);
        if (!this.fresh(t, now)) {
          t = {
            value: await withTimeout(
              this.o.store.resolveTag(ref.registry, ref.repository, ref.tag),
              this.o.timeoutMs,
            ),
            expires: now + this.o.ttlMs,
          };
          this.tags.set(key, t);
        }
        digest = t.value;
      }
      let record: ImageRecord | null = null;
      if (digest) {
        const id = this.o.imageId(ref.registry, ref.repository, digest);
        let e = this.records.get(id);
        if (!this.fresh(e, now)) {
          e = {
            value: await withTimeout(this.o.store.getImage(id), this.o.timeoutMs),
            expires: now + this.o.ttlMs,
          };
          this.records.set(id, e);
        }
        record = e.value;
      }
      // Answers are memoised by digest, ledger version and environment: a new version is a new key.
      const memo = record
        ? `${record.id}@${record.version}|${environment}|${settings.policyHash}`
        : null;
      const hit = memo ? this.answers.get(memo) : undefined;
      if (hit) return hit.image === input ? hit : { ...hit, image: input };
      const answer = decide({ image: input, digest, environment, record, settings });
      if (memo) {
        if (this.answers.size > 10_000) this.answers.clear();
        this.answers.set(memo, answer);
      }
      return answer;
    } catch {
      return this.failClosed(input, digest, environment, 'the ledger');
    }
  }

  private failClosed(
    image: string,
    digest: string | null,
    environment: string,
    what: string,
  ): CheckAnswer {
    return {
      image,
      digest,
      environment,
      decision: 'deny',
      verdict: 'unknown',
      mode: 'enforce',
      reasons: [unavailable(what)],
      attestation: null,
      decidedAt: null,
      policyHash: null,
    };
  }
}
