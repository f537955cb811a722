import { describe, expect, it } from 'vitest';
import {
  compileGlob,
  firstMatch,
  globProblems,
  referenceDigest,
  referenceName,
} from '../../../shared/policy/glob.js';

describe('compileGlob', () => {
  it.each([
    // `*` stays within one path segment
    ['us-docker.pkg.dev/acme/*', 'us-docker.pkg.dev/acme/web', true],
    ['us-docker.pkg.dev/acme/*', 'us-docker.pkg.dev/acme/apps/web', false],
    ['us-docker.pkg.dev/acme/apps/w*', 'us-docker.pkg.dev/acme/apps/web', true],
    ['*.pkg.dev/acme/web', 'europe-docker.pkg.dev/acme/web', true],
    // `**` crosses segments
    ['us-docker.pkg.dev/acme/**', 'us-docker.pkg.dev/acme/apps/web', true],
    ['us-docker.pkg.dev/acme/**', 'us-docker.pkg.dev/acme/web', true],
    ['us-docker.pkg.dev/acme/**', 'us-docker.pkg.dev/acme', false],
    ['us-docker.pkg.dev/acme/**', 'us-docker.pkg.dev/acmex/web', false],
    ['gcr.io/distroless/**', 'gcr.io/distroless/static-debian12', true],
    ['us-docker.pkg.dev/**/web', 'us-docker.pkg.dev/acme/apps/web', true],
    ['us-docker.pkg.dev/**/web', 'us-docker.pkg.dev/web', true],
    ['us-docker.pkg.dev/**/web', 'us-docker.pkg.dev/acme/webx', false],
    ['**', 'anything/at/all', true],
    // literal characters are literal: dots are not regex wildcards
    ['gcr.io/a.b', 'gcr.io/aXb', false],
    ['gcr.io/a.b', 'gcr.io/a.b', true],
    ['gcr.io/a+b', 'gcr.io/a+b', true],
    // exact patterns match exactly
    ['docker.io/library/nginx', 'docker.io/library/nginx', true],
    ['docker.io/library/nginx', 'docker.io/library/nginx2', false],
  ])('%s ~ %s → %s', (pattern, name, expected) => {
    expect(compileGlob(pattern).test(name)).toBe(expected);
  });

  it('returns the first matching pattern in the given order', () => {
    expect(firstMatch(['a/*', 'a/**'], 'a/b/c')).toBe('a/**');
    expect(firstMatch(['x/**'], 'a/b')).toBeNull();
  });
});

describe('globProblems', () => {
  it.each([
    ['gcr.io/ok/**', []],
    ['', ['pattern is empty']],
    ['gcr.io/a b', ['pattern contains whitespace']],
    ['gcr.io/a**', ['"**" must be a whole path segment (e.g. "gcr.io/org/**")']],
    ['gcr.io/***', ['"**" must be a whole path segment (e.g. "gcr.io/org/**")']],
  ])('%j → %j', (pattern, problems) => {
    expect(globProblems(pattern)).toEqual(problems);
  });
});

describe('image references', () => {
  it.each([
    ['marketplace.gcr.io/google/debian12:latest', 'marketplace.gcr.io/google/debian12', null],
    [
      `gcr.io/distroless/static@sha256:${'1'.repeat(64)}`,
      'gcr.io/distroless/static',
      `sha256:${'1'.repeat(64)}`,
    ],
    [
      `localhost:5000/app:v1@sha256:${'2'.repeat(64)}`,
      'localhost:5000/app',
      `sha256:${'2'.repeat(64)}`,
    ],
    ['localhost:5000/app', 'localhost:5000/app', null],
  ])('%s → name %s, digest %s', (ref, name, digest) => {
    expect(referenceName(ref)).toBe(name);
    expect(referenceDigest(ref)).toBe(digest);
  });
});
