// Reads the read-only real-world fixtures, which live in the shared/ folder beside the checkout (not in the repo).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findFixtures } from '../../scripts/lib/fixtures.js';

export const FIXTURES = findFixtures();

export function fixtureText(path: string): string {
  return readFileSync(join(FIXTURES, path), 'utf8');
}

export function fixture<T = unknown>(path: string): T {
  return JSON.parse(fixtureText(path)) as T;
}
