// Reads the real-world payloads kept in test/fixtures/real-world (sources and licences in its SOURCES.md).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'real-world',
);

export function fixturePath(path: string): string {
  return join(FIXTURES, path);
}

export function fixtureText(path: string): string {
  return readFileSync(fixturePath(path), 'utf8');
}

export function fixture<T = unknown>(path: string): T {
  return JSON.parse(fixtureText(path)) as T;
}
