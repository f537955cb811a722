// Thin functions (docs/architecture.md): each functions/<name>/index.ts is short, registers without casts, and builds its deps with one typed factory.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const FOLDERS = readdirSync('functions', { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);
const source = (folder: string) => readFileSync(join('functions', folder, 'index.ts'), 'utf8');

describe('functions are thin', () => {
  it('finds every function folder', () => {
    expect(FOLDERS).toEqual(expect.arrayContaining(['check-image', 'ingest-webhook', 'dashboard']));
    expect(FOLDERS.length).toBeGreaterThanOrEqual(10);
  });

  it.each(FOLDERS)('%s/index.ts is at most 100 lines', (folder) => {
    expect(source(folder).trimEnd().split('\n').length).toBeLessThanOrEqual(100);
  });

  it.each(FOLDERS)('%s registers through registerHttp / registerEvent, with no cast', (folder) => {
    const s = source(folder);
    expect(s).toMatch(/\bregister(Http|Event)\('/);
    expect(s).not.toContain('as unknown as');
    expect(s).not.toMatch(/\bff\.(http|cloudEvent)\(/);
  });

  it('no function or shared module keeps a string-keyed lazy service', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts') && /\.lazy\(\s*'/.test(readFileSync(p, 'utf8')))
          offenders.push(p);
      }
    };
    walk('functions');
    walk('shared');
    expect(offenders).toEqual([]);
  });
});
