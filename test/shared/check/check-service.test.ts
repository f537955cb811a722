import { describe, expect, it } from 'vitest';
import { CheckService, type VerdictStore } from '../../../shared/check/check-service.js';
import { type AdmissionSettings, CHECK_RULES } from '../../../shared/check/decide.js';
import { fixedClock } from '../../../shared/clock.js';
import type { ImageRecord } from '../../../shared/image-record.js';
import { imageDocId, parseImageRef } from '../../../shared/image-ref/image-ref.js';
import { DIGEST, denyReason, OTHER_DIGEST, REF, record, settings, verdict } from './records.js';

/** An in-memory ledger that counts reads and can be made to fail or hang. */
function fakeStore(initial: ImageRecord[] = [record()]) {
  const images = new Map(initial.map((r) => [r.id, r]));
  const tags = new Map<string, string>();
  const state = {
    reads: 0,
    fail: null as Error | null,
    hang: false,
    settings: settings() as AdmissionSettings,
  };
  const gate = async <T>(value: () => T): Promise<T> => {
    state.reads += 1;
    await Promise.resolve();
    if (state.hang) return new Promise<T>(() => {});
    if (state.fail) throw state.fail;
    return value();
  };
  const store = {
    getImage: (id: string) => gate(() => images.get(id) ?? null),
    resolveTag: (registry: string, repository: string, tag: string) =>
      gate(() => tags.get(`${registry}/${repository}:${tag}`) ?? null),
    getAdmissionSettings: () => gate(() => state.settings),
  } satisfies VerdictStore;
  return { store, images, tags, state };
}

function service(store: VerdictStore, ttlMs = 5_000, timeoutMs = 1_000) {
  const clock = fixedClock('2026-11-29T10:00:00Z');
  const svc = new CheckService({
    store,
    clock,
    parseRef: parseImageRef,
    imageId: imageDocId,
    ttlMs,
    timeoutMs,
  });
  return { svc, clock };
}

describe('CheckService', () => {
  it('reads the store on a miss and answers later asks from the cache', async () => {
    const f = fakeStore();
    const { svc } = service(f.store);
    expect((await svc.check(REF, 'prod')).decision).toBe('allow');
    const after = f.state.reads;
    expect(after).toBe(2); // settings + image
    for (let i = 0; i < 5; i++) expect((await svc.check(REF, 'prod')).decision).toBe('allow');
    expect(f.state.reads).toBe(after);
  });

  it('serves a verdict changed in the ledger once the TTL has passed, never later', async () => {
    const f = fakeStore();
    const { svc, clock } = service(f.store, 5_000);
    expect((await svc.check(REF, 'prod')).decision).toBe('allow');
    const changed = record({
      version: 4,
      verdicts: { prod: verdict({ decision: 'deny', reasons: [denyReason] }) },
    });
    f.images.set(changed.id, changed);
    clock.advance(4_999);
    expect((await svc.check(REF, 'prod')).decision).toBe('allow'); // within the TTL: cached
    clock.advance(1);
    const a = await svc.check(REF, 'prod');
    expect(a.decision).toBe('deny');
    expect(a.reasons).toEqual([denyReason]);
  });

  it('answers deny (fail closed) when the store fails, and does not cache the failure', async () => {
    const f = fakeStore();
    const { svc } = service(f.store);
    f.state.fail = new Error('UNAVAILABLE: firestore is down');
    const a = await svc.check(REF, 'prod');
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.unavailable);
    f.state.fail = null;
    expect((await svc.check(REF, 'prod')).decision).toBe('allow');
  });

  it('answers deny when the image read fails after the policy was read', async () => {
    const f = fakeStore();
    const { svc } = service(f.store);
    await svc.admissionSettings();
    f.state.fail = new Error('DEADLINE_EXCEEDED');
    const a = await svc.check(REF, 'prod');
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]?.message).toContain('the ledger');
  });

  it('answers deny when a store read times out (never allow)', async () => {
    const f = fakeStore();
    const { svc } = service(f.store, 5_000, 20);
    f.state.hang = true;
    const a = await svc.check(REF, 'prod');
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.unavailable);
    expect(a.reasons[0]?.message).toContain('longer than 20 ms');
  });

  it('still denies on timeout in a dry-run environment: unavailability is not a policy warning', async () => {
    const f = fakeStore();
    const { svc } = service(f.store, 5_000, 20);
    f.state.hang = true;
    expect((await svc.check(REF, 'dev')).decision).toBe('deny');
  });

  it('resolves a tag through the tag index and says which digest it judged', async () => {
    const other = record({}, { digest: OTHER_DIGEST });
    const f = fakeStore([record(), other]);
    f.tags.set('us-docker.pkg.dev/p/r/app:1.0', OTHER_DIGEST);
    const { svc } = service(f.store);
    const a = await svc.check('us-docker.pkg.dev/p/r/app:1.0', 'prod');
    expect(a).toMatchObject({
      decision: 'allow',
      digest: OTHER_DIGEST,
      image: 'us-docker.pkg.dev/p/r/app:1.0',
    });
  });

  it('denies a tag the ledger does not know', async () => {
    const { svc } = service(fakeStore().store);
    const a = await svc.check('us-docker.pkg.dev/p/r/app:nope', 'prod');
    expect(a).toMatchObject({ decision: 'deny', digest: null });
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.unknownImage);
  });

  it('denies a reference that does not parse, naming the problem', async () => {
    const { svc } = service(fakeStore().store);
    const a = await svc.check('Not An Image!', 'prod');
    expect(a.decision).toBe('deny');
    expect(a.reasons[0]?.ruleId).toBe(CHECK_RULES.invalidReference);
  });

  it('shares one read between concurrent misses of the same image', async () => {
    const f = fakeStore();
    const { svc } = service(f.store);
    const answers = await Promise.all(Array.from({ length: 20 }, () => svc.check(REF, 'prod')));
    expect(answers.every((a) => a.decision === 'allow')).toBe(true);
    expect(f.state.reads).toBe(2);
  });

  it('judges a list in order, reading each distinct image once', async () => {
    const f = fakeStore();
    const { svc } = service(f.store);
    const unknown = `us-docker.pkg.dev/p/r/other@${DIGEST}`;
    const answers = await svc.checkAll([REF, unknown, REF], 'prod');
    expect(answers.map((a) => a.decision)).toEqual(['allow', 'deny', 'allow']);
    expect(f.state.reads).toBe(3);
  });

  it('bounds the cache: beyond maxEntries the oldest entry is read again', async () => {
    const digests = [1, 2, 3].map((n) => `sha256:${String(n).repeat(64)}`);
    const f = fakeStore(digests.map((d) => record({}, { digest: d })));
    const clock = fixedClock('2026-11-29T10:00:00Z');
    const svc = new CheckService({
      store: f.store,
      clock,
      parseRef: parseImageRef,
      imageId: imageDocId,
      ttlMs: 60_000,
      timeoutMs: 1_000,
      maxEntries: 2,
    });
    for (const d of digests) await svc.check(`us-docker.pkg.dev/p/r/app@${d}`, 'prod');
    const before = f.state.reads;
    await svc.check(`us-docker.pkg.dev/p/r/app@${digests[0]}`, 'prod');
    expect(f.state.reads).toBe(before + 1);
  });
});

describe('CheckService references', () => {
  it('judges a bare name as its latest tag, as the runtime pulls it', async () => {
    const nginx = record({}, { registry: 'docker.io', repository: 'library/nginx' });
    const f = fakeStore([nginx]);
    f.tags.set('docker.io/library/nginx:latest', nginx.digest);
    const { svc } = service(f.store);
    expect(await svc.check('nginx', 'prod')).toMatchObject({
      decision: 'allow',
      digest: nginx.digest,
    });
  });
});
