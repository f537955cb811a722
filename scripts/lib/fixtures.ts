// Finds the read-only real-world fixtures, which live in a shared/ folder beside the checkout (not in the repo).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export function findFixtures(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CLEARANCE_FIXTURES) return env.CLEARANCE_FIXTURES;
  // The repo has a shared/ of its own (source code), so walk up until a shared/ holds the fixtures.
  let dir = resolve(process.cwd());
  for (;;) {
    const candidate = join(dir, 'shared', 'fixtures', 'real-world');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    'real-world fixtures not found: set CLEARANCE_FIXTURES to shared/fixtures/real-world',
  );
}
