// Starts the emulators once for the integration project, on free ports, and stops them when the run ends.
import type { TestProject } from 'vitest/node';
import {
  EmulatorsMissingError,
  type RunningEmulators,
  startEmulators,
} from '../../scripts/lib/emulators.js';
import { reapOrphans } from '../../scripts/lib/process.js';

export interface EmulatorInfo {
  firestoreHost: string;
  pubsubHost: string;
  projectId: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    emulators: EmulatorInfo | null;
    emulatorsMissing: string;
  }
}

let running: RunningEmulators | undefined;

export async function setup(project: TestProject): Promise<void> {
  await reapOrphans('test-');
  try {
    running = await startEmulators({
      ports: 'free',
      projectId: 'demo-clearance-test',
      group: `test-${process.pid}`,
    });
  } catch (err) {
    if (err instanceof EmulatorsMissingError && process.env.CLEARANCE_REQUIRE_EMULATORS !== '1') {
      process.env.CLEARANCE_EMULATORS_MISSING = err.message;
      project.provide('emulators', null);
      project.provide('emulatorsMissing', err.message);
      return;
    }
    throw err;
  }
  Object.assign(process.env, running.env);
  project.provide('emulators', {
    firestoreHost: running.firestoreHost,
    pubsubHost: running.pubsubHost,
    projectId: running.projectId,
  });
  project.provide('emulatorsMissing', '');
}

export async function teardown(): Promise<void> {
  await running?.stop();
}
