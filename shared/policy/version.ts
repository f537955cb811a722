// Package version ordering good enough to pick the highest fixed version for a remediation hint.

/**
 * Compares two version strings the way distro tools mostly agree on: an optional numeric epoch
 * (`1:`), then alternating non-digit and digit runs, digits compared numerically and `~` sorting
 * before everything (Debian's pre-release marker). Total and deterministic: ties fall back to
 * plain string order so sorting never depends on input order.
 */
export function compareVersions(a: string, b: string): number {
  const c = compareParsed(a, b);
  if (c !== 0) return c;
  return a < b ? -1 : a > b ? 1 : 0;
}

function splitEpoch(v: string): [number, string] {
  const m = /^(\d+):(.*)$/.exec(v);
  return m ? [Number(m[1]), m[2]] : [0, v];
}

function compareParsed(a: string, b: string): number {
  const [ea, ra] = splitEpoch(a.trim().replace(/^v(?=\d)/, ''));
  const [eb, rb] = splitEpoch(b.trim().replace(/^v(?=\d)/, ''));
  if (ea !== eb) return ea < eb ? -1 : 1;
  let i = 0;
  let j = 0;
  while (i < ra.length || j < rb.length) {
    // Non-digit run.
    let sa = '';
    let sb = '';
    while (i < ra.length && !isDigit(ra[i])) sa += ra[i++];
    while (j < rb.length && !isDigit(rb[j])) sb += rb[j++];
    const c = compareLexical(sa, sb);
    if (c !== 0) return c;
    // Digit run.
    let na = '';
    let nb = '';
    while (i < ra.length && isDigit(ra[i])) na += ra[i++];
    while (j < rb.length && isDigit(rb[j])) nb += rb[j++];
    const d = compareNumeric(na, nb);
    if (d !== 0) return d;
  }
  return 0;
}

function isDigit(ch: string): boolean {
  return ch >= '0' && ch <= '9';
}

function compareNumeric(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Debian's rule: `~` sorts before anything (even the end), letters before other symbols. */
function charOrder(ch: string | undefined): number {
  if (ch === undefined) return 0;
  if (ch === '~') return -1;
  const code = ch.charCodeAt(0);
  if ((code >= 65 && code <= 90) || (code >= 97 && code <= 122)) return code;
  return code + 256;
}

function compareLexical(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  for (let k = 0; k < n; k++) {
    const x = charOrder(a[k]);
    const y = charOrder(b[k]);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * The version to suggest from a scanner's fixed-version field, which may list several
 * (Trivy: "1.2.3, 1.3.1" — fixed on either branch): the lowest candidate above the installed
 * version, so the hint never proposes a bigger jump than needed.
 */
export function suggestedFix(installed: string, fixed: string): string | null {
  const candidates = fixed
    .split(/\s*,\s*/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .sort(compareVersions);
  if (candidates.length === 0) return null;
  return candidates.find((c) => compareVersions(c, installed) > 0) ?? candidates.at(-1) ?? null;
}
