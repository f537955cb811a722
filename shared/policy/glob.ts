// Binary Authorization-style name globs (`*` within a path segment, `**` across segments), compiled once and cached.

/** A compiled glob: `test(name)` says whether the name matches. */
export interface GlobMatcher {
  readonly pattern: string;
  test(name: string): boolean;
}

const REGEX_SPECIAL = /[.+?^${}()|[\]\\]/g;

/** Problems with a glob pattern, or an empty list when it is usable. */
export function globProblems(pattern: string): string[] {
  const problems: string[] = [];
  if (pattern.length === 0) problems.push('pattern is empty');
  if (/\s/.test(pattern)) problems.push('pattern contains whitespace');
  if (pattern.split('/').some((seg) => seg.includes('**') && seg !== '**')) {
    // `a**b` is ambiguous; Binary Authorization only allows `**` as a whole segment.
    problems.push('"**" must be a whole path segment (e.g. "gcr.io/org/**")');
  }
  return problems;
}

function compile(pattern: string): RegExp {
  let re = '';
  let i = 0;
  while (i < pattern.length) {
    if (pattern.startsWith('/**/', i)) {
      // `a/**/b` also matches `a/b`.
      re += '(?:/.*)?/';
      i += 4;
    } else if (pattern.startsWith('/**', i) && i + 3 === pattern.length) {
      // `a/**` matches everything below `a`, not `a` itself.
      re += '/.+';
      i += 3;
    } else if (pattern.startsWith('**', i)) {
      re += '.*';
      i += 2;
    } else if (pattern[i] === '*') {
      re += '[^/]*';
      i += 1;
    } else {
      re += pattern[i].replace(REGEX_SPECIAL, '\\$&');
      i += 1;
    }
  }
  return new RegExp(`^${re}$`);
}

const cache = new Map<string, GlobMatcher>();
const CACHE_LIMIT = 10_000;

/** Compiles a glob (memoised: patterns come from a handful of policies, so each compiles once). */
export function compileGlob(pattern: string): GlobMatcher {
  let m = cache.get(pattern);
  if (m) return m;
  const exact = !pattern.includes('*');
  const re = exact ? null : compile(pattern);
  m = {
    pattern,
    test: exact ? (name) => name === pattern : (name) => (re as RegExp).test(name),
  };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, m);
  return m;
}

/** The first pattern (in the given order) that matches, or null. */
export function firstMatch(patterns: readonly string[], name: string): string | null {
  for (const p of patterns) if (compileGlob(p).test(name)) return p;
  return null;
}

/**
 * The name part of an image reference: `REGISTRY/REPO:tag@sha256:…` → `REGISTRY/REPO`.
 * A colon after the last slash starts a tag; one before it belongs to a registry port.
 */
export function referenceName(ref: string): string {
  let name = ref;
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) name = name.slice(0, colon);
  return name;
}

/** The digest of an image reference (`…@sha256:…`), or null. */
export function referenceDigest(ref: string): string | null {
  const at = ref.indexOf('@');
  return at >= 0 ? ref.slice(at + 1) : null;
}
