import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorsMissingError, findEmulators, INSTALL_HINT } from '../../scripts/lib/emulators.js';

const tmp = mkdtempSync(join(tmpdir(), 'clearance-emu-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function executable(path: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '#!/bin/sh\nexit 0\n');
  chmodSync(path, 0o755);
}

describe('emulator discovery', () => {
  it('finds both emulators in the gcloud SDK named by $CLOUDSDK_ROOT', () => {
    const sdk = join(tmp, 'sdk');
    executable(join(sdk, 'platform/cloud-firestore-emulator/cloud_firestore_emulator'));
    executable(join(sdk, 'platform/pubsub-emulator/bin/cloud-pubsub-emulator'));
    const found = findEmulators(
      { ...process.env, CLOUDSDK_ROOT: sdk, XDG_CACHE_HOME: join(tmp, 'none') },
      { system: false },
    );
    expect(found.missing).toEqual([]);
    expect(found.firestore?.found).toBe(
      join(sdk, 'platform/cloud-firestore-emulator/cloud_firestore_emulator'),
    );
    expect(found.firestore?.args('127.0.0.1', 9)).toEqual([
      'start',
      '--host=127.0.0.1',
      '--port=9',
    ]);
    expect(found.pubsub?.args('127.0.0.1', 8)).toEqual(['--host=127.0.0.1', '--port=8']);
  });

  it("finds the firebase-tools cache's newest versions", () => {
    const cache = join(tmp, 'xdg');
    const dir = join(cache, 'firebase', 'emulators');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cloud-firestore-emulator-v1.9.0.jar'), '');
    writeFileSync(join(dir, 'cloud-firestore-emulator-v1.19.4.jar'), '');
    executable(join(dir, 'pubsub-emulator-0.8.14/pubsub-emulator/bin/cloud-pubsub-emulator'));
    const found = findEmulators(
      { ...process.env, CLOUDSDK_ROOT: join(tmp, 'no-sdk'), XDG_CACHE_HOME: cache },
      { system: false },
    );
    expect(found.missing).toEqual([]);
    expect(found.firestore?.args('127.0.0.1', 9)).toEqual([
      '-jar',
      join(dir, 'cloud-firestore-emulator-v1.19.4.jar'),
      '--host=127.0.0.1',
      '--port=9',
    ]);
    expect(found.pubsub?.found).toContain('pubsub-emulator-0.8.14');
  });

  it('names everything missing, with the install commands', () => {
    const found = findEmulators(
      { PATH: join(tmp, 'empty-path'), XDG_CACHE_HOME: join(tmp, 'none') },
      { system: false },
    );
    expect(found.missing).toEqual(['Firestore emulator', 'Pub/Sub emulator', 'Java (17 or newer)']);
    const err = new EmulatorsMissingError(found.missing);
    expect(err.message).toContain(
      'gcloud components install cloud-firestore-emulator pubsub-emulator',
    );
    expect(err.message).toContain(
      'google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator',
    );
    expect(INSTALL_HINT).toContain('Java 17');
  });
});
