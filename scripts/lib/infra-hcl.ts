// HCL tooling for the offline infra check: parse and format through HashiCorp's WASM builds, and scan expressions for references.

/** HCL as JSON, the shape @cdktf/hcl2json returns (blocks are arrays of bodies). */
export type HclJson = Record<string, unknown>;

/** Parses one .tf file; rejects with HashiCorp's own diagnostic on a syntax error. */
export async function parseHcl(filename: string, content: string): Promise<HclJson> {
  const { parse } = await import('@cdktf/hcl2json');
  return (await parse(filename, content)) as HclJson;
}

/** Formats like `terraform fmt` (hclwrite.Format). */
export async function formatHcl(content: string): Promise<string> {
  const { format } = await import('@cdktf/hcl-tools');
  return format(content);
}

/** A traversal found in an expression, split at dots (`google_x.y[each.key].id` → ["google_x", "y"]). */
export type Traversal = readonly string[];

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_-]/;
const KEYWORDS = new Set(['true', 'false', 'null', 'for', 'in', 'if', 'else', 'endif', 'endfor']);

interface Scan {
  readonly src: string;
  pos: number;
  readonly out: Traversal[];
  /** Names bound by `for` expressions and template directives: never references. */
  readonly bound: Set<string>;
}

/**
 * Lists the traversals (`var.x`, `local.y`, `google_t.n`, `module.m.o`, `data.t.n`, ...) in one
 * hcl2json string value: a literal, a template with `${...}`/`%{...}` parts, or a whole expression
 * wrapped in `${...}`. Function names, object keys and names bound by `for` are left out.
 */
export function findTraversals(value: string): Traversal[] {
  const s: Scan = { src: value, pos: 0, out: [], bound: new Set() };
  scanTemplate(s, null);
  return s.out.filter((t) => !s.bound.has(t[0]));
}

/** Reads template text up to `close` (a quote) or the end; descends into interpolations. */
function scanTemplate(s: Scan, close: '"' | null): void {
  const { src } = s;
  while (s.pos < src.length) {
    const c = src[s.pos];
    if (close !== null && c === '\\') {
      s.pos += 2;
      continue;
    }
    if (close !== null && c === close) {
      s.pos++;
      return;
    }
    if ((c === '$' || c === '%') && src[s.pos + 1] === c && src[s.pos + 2] === '{') {
      s.pos += 3; // $${ and %%{ are escapes for a literal ${ / %{
      continue;
    }
    if ((c === '$' || c === '%') && src[s.pos + 1] === '{') {
      s.pos += 2;
      scanExpression(s, c === '%');
      continue;
    }
    s.pos++;
  }
}

/** Reads an expression up to its closing brace (already past the opening one). */
function scanExpression(s: Scan, directive: boolean): void {
  const { src } = s;
  let depth = 0;
  let prevSignificant = '{';
  let expectForNames = false;
  while (s.pos < src.length) {
    const c = src[s.pos];
    if (c === '"') {
      s.pos++;
      scanTemplate(s, '"');
      prevSignificant = '"';
      continue;
    }
    if (c === '(' || c === '[' || c === '{') {
      depth++;
      s.pos++;
      prevSignificant = c;
      continue;
    }
    if (c === ')' || c === ']' || c === '}') {
      s.pos++;
      if (depth === 0) return;
      depth--;
      prevSignificant = c;
      continue;
    }
    if (IDENT_START.test(c)) {
      const start = s.pos;
      const first = readIdent(s);
      if (first === 'for' && (prevSignificant === '[' || prevSignificant === '{' || directive)) {
        expectForNames = true;
        prevSignificant = 'r';
        continue;
      }
      if (expectForNames) {
        if (first === 'in') expectForNames = false;
        else s.bound.add(first);
        prevSignificant = 'r';
        continue;
      }
      // Numbers glued to identifiers (e.g. 1e5) do not start here; an identifier preceded by '.' is an attribute.
      if (start > 0 && src[start - 1] === '.') {
        prevSignificant = 'r';
        continue;
      }
      const parts = [first];
      while (src[s.pos] === '.' && s.pos + 1 < src.length) {
        const next = src[s.pos + 1];
        if (IDENT_START.test(next) || /[0-9]/.test(next)) {
          s.pos++;
          parts.push(readIdent(s));
        } else if (next === '*') {
          s.pos += 2;
        } else break;
      }
      const after = skipSpaces(s);
      if (after === '(' && parts.length === 1) {
        prevSignificant = 'r'; // a function call
        continue;
      }
      if (!KEYWORDS.has(first) && parts.length > 1) s.out.push(parts);
      prevSignificant = 'r';
      continue;
    }
    if (!/\s/.test(c)) prevSignificant = c;
    s.pos++;
  }
}

function readIdent(s: Scan): string {
  const start = s.pos;
  while (s.pos < s.src.length && IDENT_PART.test(s.src[s.pos])) s.pos++;
  return s.src.slice(start, s.pos);
}

function skipSpaces(s: Scan): string | undefined {
  let p = s.pos;
  while (p < s.src.length && /\s/.test(s.src[p])) p++;
  return s.src[p];
}

/** Visits every string in a hcl2json value (attribute values, list items, nested blocks). */
export function forEachString(value: unknown, visit: (s: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) for (const v of value) forEachString(v, visit);
  else if (value !== null && typeof value === 'object')
    for (const v of Object.values(value)) forEachString(v, visit);
}

/** The text inside `${...}` when the whole string is one interpolation, else undefined. */
export function wholeExpression(value: unknown): string | undefined {
  if (typeof value !== 'string' || !value.startsWith('${') || !value.endsWith('}'))
    return undefined;
  const inner = value.slice(2, -1);
  // "${a}-${b}" is a template, not one expression.
  let depth = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return undefined;
      depth--;
    }
  }
  return inner.trim();
}
