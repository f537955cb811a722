// What integration tests use to reach the emulators; their suites are skipped (never passed) when the emulators are missing.
import { describe, inject } from 'vitest';
import type { EmulatorInfo } from './global-setup.js';

export const emulators: EmulatorInfo | null = inject('emulators');

/** `describe` that skips, loudly counted by the skip reporter, when the emulators are not installed. */
export const describeWithEmulators = describe.skipIf(emulators === null);

export function requireEmulators(): EmulatorInfo {
  if (!emulators) throw new Error('emulators are not running');
  return emulators;
}
