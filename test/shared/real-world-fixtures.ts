// Reads the read-only real-world fixtures, which live in the shared/ folder beside the checkout (not in the repo).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function findFixtures(): string {
  const fromEnv = process.env.CLEARANCE_FIXTURES;
  if (fromEnv) return fromEnv;
  // The repo has a shared/ of its own (source code), so walk up until a shared/ holds the fixtures.
  let dir = resolve(process.cwd());
  for (;;) {
    const candidate = join(dir, 'shared', 'fixtures', 'real-world');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error('real-world fixtures not found: set CLEARANCE_FIXTURES');
}

export const FIXTURES = findFixtures();

export function fixtureText(path: string): string {
  return readFileSync(join(FIXTURES, path), 'utf8');
}

export function fixture<T = unknown>(path: string): T {
  return JSON.parse(fixtureText(path)) as T;
}
