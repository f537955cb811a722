// Cold-start guard: what checkImage's module loads at start, followed through static (non-type) imports.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Packages the check may load at start; everything heavy (Firestore, Pub/Sub, yaml, auth) is lazy. */
const ALLOWED = new Set(['@google-cloud/functions-framework', 'zod']);

/** Static value imports of a TypeScript module (`import type` and `await import()` are not loads at start). */
function staticImports(source: string): string[] {
  const out: string[] = [];
  const re = /^import\s+(?!type\s)([\s\S]*?)\s+from\s+'([^']+)';/gm;
  for (const m of source.matchAll(re)) {
    const names = m[1] as string;
    // `import { type A, type B } from …` loads nothing either.
    const inner = /^\{([\s\S]*)\}$/.exec(names.trim())?.[1];
    if (inner?.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '))) continue;
    out.push(m[2] as string);
  }
  for (const m of source.matchAll(/^import\s+'([^']+)';/gm)) out.push(m[1] as string);
  return out;
}

function loadGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of staticImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:')) {
        packages.add(
          spec.startsWith('@')
            ? spec.split('/').slice(0, 2).join('/')
            : (spec.split('/')[0] as string),
        );
      }
    }
  };
  visit(resolve(entry));
  return { files, packages };
}

describe('checkImage start-up imports', () => {
  const graph = loadGraph('functions/check-image/index.ts');

  it('loads only functions-framework and zod at start', () => {
    expect([...graph.packages].filter((p) => !ALLOWED.has(p))).toEqual([]);
    expect(graph.packages.has('@google-cloud/functions-framework')).toBe(true);
  });

  it('does not load the policy engine, the ingest path or the alert formatting', () => {
    const rel = [...graph.files].map((f) => f.slice(resolve('.').length + 1));
    expect(
      rel.filter((f) => /shared\/(policy|ingest|alerts|attestations|registry)\//.test(f)),
    ).toEqual([]);
  });

  it('sees through type-only imports (the parser is not blind)', () => {
    expect(
      staticImports(
        "import type { A } from 'x';\nimport { type B } from 'y';\nimport { c } from 'z';",
      ),
    ).toEqual(['z']);
  });
});
