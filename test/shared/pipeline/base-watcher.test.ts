import { describe, expect, it } from 'vitest';
import {
  baseDocId,
  normaliseBaseName,
  supersededAt,
  type TrackedBase,
} from '../../../shared/pipeline/base-watcher.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

describe('tracked base names', () => {
  it('normalises tags the way image references are normalised', () => {
    expect(normaliseBaseName('debian')).toEqual({
      name: 'docker.io/library/debian:latest',
      registry: 'docker.io',
      repository: 'library/debian',
      tag: 'latest',
    });
    expect(normaliseBaseName(' gcr.io/distroless/static-debian12:nonroot ').name).toBe(
      'gcr.io/distroless/static-debian12:nonroot',
    );
    expect(normaliseBaseName('marketplace.gcr.io/google/debian12').tag).toBe('latest');
  });

  it('refuses a digest (it cannot move) and an unexpanded placeholder', () => {
    expect(() => normaliseBaseName(`gcr.io/distroless/static@${d('a')}`)).toThrow(/names a digest/);
    expect(() => normaliseBaseName('us-docker.pkg.dev/$PROJECT/base/debian:12')).toThrow(
      /placeholder/,
    );
  });

  it('makes document ids without slashes', () => {
    expect(baseDocId('127.0.0.1:5000/base/debian12:latest')).toBe(
      '127.0.0.1:5000~base~debian12:latest',
    );
  });
});

describe('supersededAt', () => {
  const base: TrackedBase = {
    name: 'gcr.io/distroless/static-debian12:nonroot',
    digest: d('c'),
    seenAt: '2026-11-20T00:00:00.000Z',
    settledDigest: d('c'),
    history: [
      {
        digest: d('a'),
        seenAt: '2026-10-01T00:00:00.000Z',
        supersededAt: '2026-11-01T00:00:00.000Z',
      },
      {
        digest: d('b'),
        seenAt: '2026-11-01T00:00:00.000Z',
        supersededAt: '2026-11-20T00:00:00.000Z',
      },
    ],
  };

  it('is when the tag moved past a recorded digest', () => {
    expect(supersededAt(base, d('a'))).toBe('2026-11-01T00:00:00.000Z');
    expect(supersededAt(base, d('b'))).toBe('2026-11-20T00:00:00.000Z');
  });

  it('is no later than the oldest recorded digest was first seen for a digest never recorded', () => {
    expect(supersededAt(base, d('0'))).toBe('2026-10-01T00:00:00.000Z');
    expect(supersededAt({ ...base, history: [] }, d('0'))).toBe('2026-11-20T00:00:00.000Z');
  });
});
