// Binary Authorization-style name globs (`*` within a path segment, `**` across segments), matched segment by segment in linear time.

/** A compiled glob: `test(name)` says whether the name matches. */
export interface GlobMatcher {
  readonly pattern: string;
  test(name: string): boolean;
}

/** Problems with a glob pattern, or an empty list when it is usable. */
export function globProblems(pattern: string): string[] {
  const problems: string[] = [];
  if (pattern.length === 0) problems.push('pattern is empty');
  if (/\s/.test(pattern)) problems.push('pattern contains whitespace');
  if (pattern.split('/').some((seg) => seg.includes('**') && seg !== '**')) {
    // `a**b` is ambiguous; Binary Authorization only allows `**` as a whole segment.
    problems.push('"**" must be a whole path segment (e.g. "gcr.io/org/**")');
  }
  if (/[?[\]{}!]/.test(pattern)) {
    // Other glob dialects read these as wildcards; here they would be literal and never match a name.
    problems.push(
      'only "*" and "**" are wildcards; "?", "[", "]", "{", "}" and "!" are not allowed',
    );
  }
  return problems;
}

/** `**` as a whole segment; ANY is one segment of any content (from a trailing `/**`). */
const GLOBSTAR = Symbol('**');
const ANY = Symbol('any segment');
type Token = string | typeof GLOBSTAR | typeof ANY;

/**
 * Wildcard match of one segment (`*` = any run of characters): the greedy two-pointer walk that
 * backtracks only to the last `*`, so it costs at most pattern × name steps, never exponential.
 */
function segmentMatches(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  if (pattern === '*') return true;
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** The same walk one level up: `**` is the star, path segments are the characters. */
function segmentsMatch(tokens: readonly Token[], names: readonly string[]): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < names.length) {
    const t = p < tokens.length ? tokens[p] : undefined;
    if (t === GLOBSTAR) {
      star = p++;
      mark = n;
    } else if (t !== undefined && (t === ANY || segmentMatches(t, names[n] as string))) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else return false;
  }
  while (p < tokens.length && tokens[p] === GLOBSTAR) p++;
  return p === tokens.length;
}

/** Without `**`: segment i of the pattern against segment i of the name, walking the name in place. */
function sameSegments(tokens: readonly string[], name: string): boolean {
  let start = 0;
  for (let i = 0; i < tokens.length; i++) {
    const end = i === tokens.length - 1 ? name.length : name.indexOf('/', start);
    if (end < 0) return false;
    const seg = name.slice(start, end);
    if (i === tokens.length - 1 && seg.includes('/')) return false;
    if (!segmentMatches(tokens[i] as string, seg)) return false;
    start = end + 1;
  }
  return true;
}

function tokenise(pattern: string): Token[] {
  const tokens: Token[] = pattern
    .split('/')
    .map((seg) => (seg === '**' ? GLOBSTAR : seg.replace(/\*{2,}/g, '*')));
  // `a/**` matches everything below `a`, not `a` itself: at least one segment.
  if (tokens.length > 1 && tokens[tokens.length - 1] === GLOBSTAR) tokens.splice(-1, 0, ANY);
  return tokens;
}

const cache = new Map<string, GlobMatcher>();
const CACHE_LIMIT = 10_000;

/**
 * Compiles a glob (memoised: patterns come from a handful of policies, so each compiles once).
 * `*` matches within one path segment, `**` any number of whole segments (`a/**` at least one);
 * every other character is literal. The same matcher serves policy, VEX and alert routing.
 */
export function compileGlob(pattern: string): GlobMatcher {
  let m = cache.get(pattern);
  if (m) return m;
  const exact = !pattern.includes('*');
  const tokens = exact ? [] : tokenise(pattern);
  // Most names are refused by the literal text before the first wildcard (the registry host).
  const prefix = pattern.slice(0, pattern.indexOf('*'));
  const segmentsOnly = !tokens.includes(GLOBSTAR) && !tokens.includes(ANY);
  m = {
    pattern,
    test: exact
      ? (name) => name === pattern
      : segmentsOnly
        ? (name) => name.startsWith(prefix) && sameSegments(tokens as string[], name)
        : (name) => name.startsWith(prefix) && segmentsMatch(tokens, name.split('/')),
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
