// The layer boundaries of docs/architecture.md are lint rules: a forbidden import fails `npm run lint`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIOME = resolve('node_modules/.bin/biome');
/** A scratch tree with the repository's Biome configuration (outside git, so no ignore file). */
const scratch = mkdtempSync(join(tmpdir(), 'clearance-lint-'));
const config = JSON.parse(readFileSync('biome.json', 'utf8'));
writeFileSync(join(scratch, 'biome.json'), JSON.stringify({ ...config, vcs: { enabled: false } }));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Lints `source` as the file at `path` with the repository's rules (overrides apply by path). */
function lintAs(path: string, source: string): { status: number | null; output: string } {
  const file = join(scratch, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, source);
  const r = spawnSync(BIOME, ['lint', '--error-on-warnings', path], {
    cwd: scratch,
    encoding: 'utf8',
  });
  rmSync(file);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('layer boundaries enforced by the linter', () => {
  it('rejects storage and transport imports in the pure policy and findings code', () => {
    for (const [path, spec] of [
      ['shared/policy/probe.ts', '@google-cloud/firestore'],
      ['shared/policy/probe.ts', '../ledger/ledger-store.js'],
      ['shared/policy/probe.ts', '../pipeline/effects.js'],
      ['shared/findings/probe.ts', '@google-cloud/pubsub'],
      ['shared/findings/probe.ts', '../ledger/collections.js'],
    ] as const) {
      const r = lintAs(path, `import { x } from '${spec}';\nexport const y = x;\n`);
      expect(r.status, `${path} importing ${spec}`).not.toBe(0);
      expect(r.output).toContain('noRestrictedImports');
    }
  });

  it('rejects a function writing the ledger or reaching Firestore itself', () => {
    for (const spec of ['@google-cloud/firestore', '../../shared/ledger/collections.js']) {
      const r = lintAs(
        'functions/probe/index.ts',
        `import { x } from '${spec}';\nexport const y = x;\n`,
      );
      expect(r.status, spec).not.toBe(0);
      expect(r.output).toContain('noRestrictedImports');
    }
  });

  it('rejects the ledger importing a use case, the runtime or the dashboard (its read side)', () => {
    for (const spec of [
      '../dashboard/queries.js',
      '../pipeline/effects.js',
      '../runtime/services.js',
    ]) {
      const r = lintAs(
        'shared/ledger/probe.ts',
        `import { x } from '${spec}';\nexport const y = x;\n`,
      );
      expect(r.status, spec).not.toBe(0);
      expect(r.output).toContain('noRestrictedImports');
    }
    const ok = lintAs(
      'shared/ledger/probe.ts',
      "import { z } from 'zod';\nimport { FLEET } from './collections.js';\nexport const y = z.literal(FLEET.rows);\n",
    );
    expect(ok.output).not.toContain('noRestrictedImports');
    expect(ok.status).toBe(0);
  });

  it('keeps pure policy and findings away from their own storage submodules', () => {
    for (const [path, spec] of [
      ['shared/policy/probe.ts', './store/policy-source.js'],
      ['shared/policy/probe.ts', './store/vex-store.js'],
      ['shared/findings/probe.ts', './store/occurrences.js'],
      ['shared/findings/probe.ts', '../policy/store/vex-store.js'],
    ] as const) {
      const r = lintAs(path, `import { x } from '${spec}';\nexport const y = x;\n`);
      expect(r.status, `${path} importing ${spec}`).not.toBe(0);
      expect(r.output).toContain('noRestrictedImports');
    }
    // The storage submodules themselves may reach Firestore and the ledger's collection names.
    const ok = lintAs(
      'shared/policy/store/probe.ts',
      "import type { Firestore } from '@google-cloud/firestore';\nimport { COLLECTIONS } from '../../ledger/collections.js';\nexport type D = Firestore;\nexport const c = COLLECTIONS;\n",
    );
    expect(ok.output).not.toContain('noRestrictedImports');
    expect(ok.status).toBe(0);
  });

  it('rejects a use case importing the runtime, a transport or a function (no runtime ↔ pipeline cycle)', () => {
    for (const spec of [
      '../runtime/services.js',
      '../runtime/root.js',
      '../http/http-function.js',
      '../../functions/reevaluate/index.js',
    ]) {
      const r = lintAs(
        'shared/pipeline/probe.ts',
        `import { x } from '${spec}';\nexport const y = x;\n`,
      );
      expect(r.status, spec).not.toBe(0);
      expect(r.output).toContain('noRestrictedImports');
    }
    const ok = lintAs(
      'shared/pipeline/probe.ts',
      "import { storePolicy } from '../policy/store/policy-source.js';\nexport const y = storePolicy;\n",
    );
    expect(ok.output).not.toContain('noRestrictedImports');
    expect(ok.status).toBe(0);
  });

  it('accepts what the layers allow (the same probe, allowed imports)', () => {
    const ok = lintAs(
      'shared/policy/probe.ts',
      "import type { ImageRecord } from '../image-record.js';\nimport { z } from 'zod';\nexport const y = z.string();\nexport type R = ImageRecord;\n",
    );
    expect(ok.output).not.toContain('noRestrictedImports');
    expect(ok.status).toBe(0);
  });
});
