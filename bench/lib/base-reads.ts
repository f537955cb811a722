// Registry requests a push costs when its base is proven: counted in the registry's own access log, for a known and a new base digest.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skopeoCopy, writeOciImage } from '../../scripts/lib/oci-image.js';
import { BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION } from '../../shared/registry/schemas.js';

/** distribution's access log: `HOST - - [time] "METHOD /v2/… HTTP/1.1" status bytes "referer" "user agent"`. */
const ACCESS =
  /^\S+ - - \[[^\]]+\] "(GET|HEAD) (\/v2\/\S*) HTTP\/[\d.]+" \d+ \S+ "[^"]*" "([^"]*)"/;

export interface BaseReadsOptions {
  registryHost: string;
  /** The registry's log file (startLocalRegistry's service.logFile). */
  registryLog: string;
  /** Publishes a gcr push message for `HOST/REPO@DIGEST` tagged `HOST/REPO:TAG`. */
  publishPush(message: { action: 'INSERT'; digest: string; tag: string }): Promise<unknown>;
  /** Resolves once the pushed image's record carries a base verification. */
  waitVerified(repository: string, digest: string): Promise<void>;
}

function size(file: string): number {
  return statSync(file).size;
}

/** Requests Clearance (Node's fetch; skopeo has its own user agent) sent to the registry since `offset`. */
function clearanceRequests(file: string, offset: number): string[] {
  const text = readFileSync(file).subarray(offset).toString('utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = ACCESS.exec(line);
    if (m && m[3] === 'node') out.push(`${m[1]} ${m[2]}`);
  }
  return out;
}

/**
 * Pushes an app on a base digest Clearance has never read, then a second app on the same base, and
 * counts the registry requests each push made Clearance send (its own manifest and config, plus
 * the base's the first time).
 */
export async function measureBaseReads(o: BaseReadsOptions): Promise<{
  newBase: number;
  knownBase: number;
  requests: { newBase: string[]; knownBase: string[] };
}> {
  const work = mkdtempSync(join(tmpdir(), 'clearance-bench-base-'));
  try {
    const base = writeOciImage(work, {
      ref: 'base',
      files: { 'etc/os-release': `bench base ${process.pid} ${Date.now()}\n` },
    });
    const baseRef = `${o.registryHost}/bench/base:1`;
    const baseDigest = await skopeoCopy(work, baseRef, { ref: 'base' });
    const labels = { [BASE_NAME_ANNOTATION]: baseRef, [BASE_DIGEST_ANNOTATION]: baseDigest };
    const measure = async (name: string) => {
      writeOciImage(work, {
        ref: name,
        files: { 'app.txt': `${name}\n` },
        baseLayers: base.stack,
        config: { labels },
      });
      const repository = `bench/${name}`;
      const digest = await skopeoCopy(work, `${o.registryHost}/${repository}:v1`, { ref: name });
      const offset = size(o.registryLog);
      await o.publishPush({
        action: 'INSERT',
        digest: `${o.registryHost}/${repository}@${digest}`,
        tag: `${o.registryHost}/${repository}:v1`,
      });
      await o.waitVerified(repository, digest);
      // The access log line is written as the response completes: give the last one a moment.
      await new Promise((r) => setTimeout(r, 300));
      return clearanceRequests(o.registryLog, offset);
    };
    const first = await measure('on-new-base');
    const second = await measure('on-known-base');
    return {
      newBase: first.length,
      knownBase: second.length,
      requests: { newBase: first, knownBase: second },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
