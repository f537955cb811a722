import fc from 'fast-check';
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

describe('linear matching', () => {
  it('answers the 45-second backtracking case at once: many stars against a long segment', () => {
    // The regex this replaced backtracked through every split of the 221 dashes (minutes, uninterruptible).
    const name = `us-docker.pkg.dev/${'-'.repeat(221)}`;
    expect(name).toHaveLength(239);
    expect(compileGlob('us-docker.pkg.dev/*-*-*-*-*-*-x').test(name)).toBe(false);
    expect(compileGlob('us-docker.pkg.dev/*-*-*-*-*-*-x').test(`${name}x`)).toBe(true);
    expect(compileGlob('**/*-*-*-*-*-*-*-*-x').test(`a/b/c/d/${'-'.repeat(240)}`)).toBe(false);
    expect(compileGlob('**/**/**/**/**/**/x').test(`${'a/'.repeat(120)}y`)).toBe(false);
  });

  it.each([
    // `**` also matches zero segments in the middle and at the start, at least one at the end
    ['**/web', 'web', true],
    ['a/**/**/b', 'a/b', true],
    ['a/**', 'a', false],
    ['a/*/**', 'a/b', false],
    ['a/*/**', 'a/b/c', true],
    // no other wildcard: `?` and braces are literal (and refused by globProblems)
    ['gcr.io/a?', 'gcr.io/ab', false],
    ['gcr.io/{a,b}', 'gcr.io/a', false],
    ['gcr.io/[ab]', 'gcr.io/a', false],
  ])('%s ~ %s → %s', (pattern, name, expected) => {
    expect(compileGlob(pattern).test(name)).toBe(expected);
  });

  it('refuses the wildcards of other dialects', () => {
    for (const p of ['gcr.io/a?', 'gcr.io/{a,b}', 'gcr.io/[ab]', 'gcr.io/!a']) {
      expect(globProblems(p).join(), p).toMatch(/only "\*" and "\*\*" are wildcards/);
    }
  });

  it('agrees with a reference matcher (dynamic programming over segments) on random globs', () => {
    /** Oracle: memoised recursion, written independently of the two-pointer walk. */
    function reference(pattern: string, name: string): boolean {
      if (!pattern.includes('*')) return pattern === name;
      const ps = pattern.split('/');
      const ns = name.split('/');
      const trailing = ps.length > 1 && ps[ps.length - 1] === '**';
      const seg = (p: string, n: string) =>
        new RegExp(
          `^${p
            .split('*')
            .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ).test(n);
      const memo = new Map<string, boolean>();
      const go = (i: number, j: number): boolean => {
        const key = `${i},${j}`;
        const hit = memo.get(key);
        if (hit !== undefined) return hit;
        let out: boolean;
        if (i === ps.length) out = j === ns.length;
        else if (ps[i] === '**') {
          const min = trailing && i === ps.length - 1 ? 1 : 0;
          out = false;
          for (let k = j + min; k <= ns.length && !out; k++) out = go(i + 1, k);
        } else out = j < ns.length && seg(ps[i] as string, ns[j] as string) && go(i + 1, j + 1);
        memo.set(key, out);
        return out;
      };
      return go(0, 0);
    }
    const segment = fc.stringMatching(/^[ab*-]{0,4}$/).filter((s) => !s.includes('**'));
    const patternArb = fc
      .array(fc.oneof(segment, fc.constant('**')), { minLength: 1, maxLength: 5 })
      .map((s) => s.join('/'));
    const nameArb = fc
      .array(fc.stringMatching(/^[ab-]{1,4}$/), { minLength: 1, maxLength: 6 })
      .map((s) => s.join('/'));
    fc.assert(
      fc.property(patternArb, nameArb, (p, n) => compileGlob(p).test(n) === reference(p, n)),
      { numRuns: 3000 },
    );
  });
});
