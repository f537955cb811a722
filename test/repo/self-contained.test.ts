// Guards rule 3: nothing in the code, tests, scripts or benchmarks reads a path outside the repository.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCANNED = ['test', 'scripts', 'bench', 'cli', 'shared', 'functions'];

/** System tools the stack looks for where the OS installs them; the only absolute paths allowed. */
const SYSTEM_PATHS = [
  /^\/usr\/(lib|share)\/google-cloud-sdk\b/,
  /^\/opt\/google-cloud-sdk\b/,
  /^\/usr\/bin\/[\w.-]+$/,
  /^\/proc\/\$\{/,
];
const FS_ROOTS =
  /^(\/(work|home|root|tmp|var|mnt|srv|opt|etc|usr|Users|private|data|builds|workspace)(\/|$)|[A-Za-z]:\\)/;

type Escape = { file: string; line: number; text: string; why: string };

/** Every place in one source file that names an absolute path or climbs out of the repository. */
function findEscapes(file: string, source: string, root = ROOT): Escape[] {
  const out: Escape[] = [];
  const dir = dirname(file);
  const inside = (p: string) => {
    const rel = relative(root, p);
    return !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel));
  };
  source.split('\n').forEach((text, i) => {
    const line = i + 1;
    for (const m of text.matchAll(/(['"`])((?:\\.|(?!\1).)*)\1/g)) {
      const lit = m[2] ?? '';
      if (FS_ROOTS.test(lit) && !SYSTEM_PATHS.some((re) => re.test(lit))) {
        out.push({ file, line, text: text.trim(), why: `absolute path ${lit}` });
      }
      if (/^(\.\.\/)+/.test(lit) && !inside(resolve(dir, lit))) {
        out.push({ file, line, text: text.trim(), why: `climbs out of the repository: ${lit}` });
      }
      if (/shared\/fixtures/.test(lit)) {
        out.push({
          file,
          line,
          text: text.trim(),
          why: 'names the shared/ folder beside a checkout',
        });
      }
    }
    // join(here, '..', '..', …): count the climb from this file's folder.
    for (const m of text.matchAll(/(?:join|resolve)\(([^)]*)\)/g)) {
      const climbs = [...(m[1] ?? '').matchAll(/'\.\.'/g)].length;
      if (climbs > 0 && !inside(resolve(dir, ...Array(climbs).fill('..')))) {
        out.push({ file, line, text: text.trim(), why: `climbs ${climbs} folders up` });
      }
    }
  });
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'fixtures') return [];
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|js|mjs|cjs|sh)$/.test(name) ? [path] : [];
  });
}

describe('the repository is self-contained', () => {
  it('names no absolute path and climbs out of its root nowhere', () => {
    const escapes = SCANNED.flatMap((d) => sources(join(ROOT, d))).flatMap((f) =>
      findEscapes(f, readFileSync(f, 'utf8')),
    );
    expect(escapes.map((e) => `${relative(ROOT, e.file)}:${e.line} ${e.why}`)).toEqual([]);
  });

  it('scans the folders it is meant to', () => {
    const files = SCANNED.flatMap((d) => sources(join(ROOT, d)));
    for (const d of SCANNED) expect(files.some((f) => f.startsWith(join(ROOT, d, '')))).toBe(true);
  });

  it('catches each kind of escape', () => {
    const file = join(ROOT, 'test', 'shared', 'x.test.ts');
    const cases = [
      // Built from pieces so that this file passes its own scan.
      `const F = '/${'work'}/shared/${'fixtures'}/real-world';`,
      `readFileSync('/home/me/payload.json')`,
      `import { x } from '../../../../elsewhere/x.js';`,
      `const p = join(here, ${"'..', ".repeat(3)}'shared');`,
      `const p = 'C:\\\\Users\\\\me';`,
    ];
    for (const c of cases) expect(findEscapes(file, c), c).not.toEqual([]);
    expect(findEscapes(file, `import { y } from '../../shared/y.js';`)).toEqual([]);
    expect(findEscapes(file, `roots.push('/usr/lib/google-cloud-sdk');`)).toEqual([]);
    expect(findEscapes(file, `app.get('/v1/check', handler)`)).toEqual([]);
  });
});
