// A private Firestore emulator that can be killed and started again on the same port with its committed documents (export before, import after).
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findEmulators } from './emulators.js';
import { freePort, type Service, startService, waitForHttp } from './process.js';

export interface RestartableFirestore {
  readonly host: string;
  readonly port: number;
  readonly running: boolean;
  /**
   * Exports every document, then kills the emulator. The emulator keeps data only in memory;
   * the export stands in for the durability a real database has, so call it when no write is
   * in flight (a write after the export would be lost, which Firestore itself never does).
   */
  kill(): Promise<void>;
  /** Starts the emulator again on the same port with the last export. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartableFirestore(opts: {
  /** The project whose documents survive a restart (the emulator imports one export). */
  projectId: string;
  group: string;
  /** Folder for the exports. */
  scratch: string;
}): Promise<RestartableFirestore> {
  const found = findEmulators();
  if (!found.firestore) throw new Error('no Firestore emulator');
  const emulator = found.firestore;
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let service: Service | undefined;
  let saved: string | undefined;
  let starts = 0;

  const start = async () => {
    starts += 1;
    const s = startService({
      name: `firestore-restartable-${port}-${starts}`,
      group: opts.group,
      command: emulator.command,
      args: [...emulator.args('127.0.0.1', port), ...(saved ? [`--import-data=${saved}`] : [])],
      env: { JAVA: found.java ?? 'java', JAVA_TOOL_OPTIONS: '-Xss2m' },
    });
    await waitForHttp(`http://${host}/`, s, 60_000);
    service = s;
  };

  const exportData = async (): Promise<string> => {
    const { projectId } = opts;
    const dir = join(opts.scratch, `export-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    const res = await fetch(`http://${host}/emulator/v1/projects/${projectId}:export`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        database: `projects/${projectId}/databases/(default)`,
        export_directory: dir,
      }),
    });
    if (res.status !== 200)
      throw new Error(`Firestore export failed: ${res.status} ${await res.text()}`);
    const sub = readdirSync(dir)[0] as string;
    return join(dir, sub, `${sub}.overall_export_metadata`);
  };

  await start();
  return {
    host,
    port,
    get running() {
      return service !== undefined;
    },
    async kill() {
      saved = await exportData();
      await service?.stop();
      service = undefined;
    },
    async restart() {
      if (service) throw new Error('the Firestore emulator is running');
      await start();
    },
    async stop() {
      await service?.stop();
      service = undefined;
    },
  };
}
