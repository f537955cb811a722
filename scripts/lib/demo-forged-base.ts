// Demo step: an app whose base label claims the trusted base while its layers come from elsewhere is caught at push.
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { ImageRecord } from '../../shared/image-record.js';
import { imageDocId } from '../../shared/image-ref/image-ref.js';
import { BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION } from '../../shared/registry/schemas.js';
import { skopeoCopy, writeOciImage } from './oci-image.js';
import { sleep } from './process.js';

export interface ForgedBaseDemo {
  /** The local registry's host (`127.0.0.1:PORT`); its notifications reach ingestWebhook. */
  registry: string;
  /** The trusted base the forged label claims, as pushed earlier in the demo. */
  trustedBase: { ref: string; digest: string };
  db: Firestore;
  /** A scratch folder for the OCI layout. */
  work: string;
  say(line?: string): void;
  /** Repository of the forged app (default apps/forged). */
  repository?: string;
  timeoutMs?: number;
}

/**
 * Builds an app on an untrusted base of its own, labels it as built on the trusted base, pushes it,
 * and prints the verdict the push gets: with `baseImage.verifyLayers: enforce` a denial naming the
 * first layer that differs. Returns the ledger record.
 */
export async function demoForgedBase(demo: ForgedBaseDemo): Promise<ImageRecord> {
  const { say } = demo;
  const repository = demo.repository ?? 'apps/forged';
  const layout = join(demo.work, 'forged');
  say(
    '\nForged base label: an app built on an unvetted base claims to be built on the trusted one',
  );
  const untrusted = writeOciImage(layout, {
    ref: 'untrusted-base',
    files: { 'etc/os-release': 'ID=somebodys-base\nVERSION_ID=0.1\n' },
  });
  writeOciImage(layout, {
    ref: 'app',
    files: { 'app/hello.txt': `forged base, ${new Date().toISOString()}\n` },
    baseLayers: untrusted.stack,
    config: {
      created: new Date().toISOString(),
      user: '1000',
      labels: {
        owner: 'demo-team',
        [BASE_NAME_ANNOTATION]: demo.trustedBase.ref,
        [BASE_DIGEST_ANNOTATION]: demo.trustedBase.digest,
      },
    },
  });
  const ref = `${demo.registry}/${repository}:1.0`;
  const digest = await skopeoCopy(layout, ref, { ref: 'app' });
  say(`   ${ref} → ${digest}`);
  say(`   label org.opencontainers.image.base.name=${demo.trustedBase.ref}`);
  say(`   label org.opencontainers.image.base.digest=${demo.trustedBase.digest}`);
  const id = imageDocId(demo.registry, repository, digest);
  const deadline = Date.now() + (demo.timeoutMs ?? 60_000);
  let rec: ImageRecord | null = null;
  while (Date.now() < deadline) {
    const snap = await demo.db.collection('images').doc(id).get();
    if (snap.exists) {
      const parsed = ImageRecord.safeParse(snap.data());
      if (
        parsed.success &&
        parsed.data.base?.verification &&
        Object.keys(parsed.data.verdicts).length > 0
      ) {
        rec = parsed.data;
        break;
      }
    }
    await sleep(250);
  }
  if (!rec)
    throw new Error(`timed out waiting for the forged push to be verified (see .clearance/logs)`);
  const v = rec.base?.verification;
  say(`   base check: ${v?.status}${v?.detail ? ` — ${v.detail}` : ''}`);
  for (const [env, verdict] of Object.entries(rec.verdicts).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    say(`   ${env} (${verdict.mode}): ${verdict.decision.toUpperCase()}`);
    for (const r of verdict.reasons.filter((x) => x.ruleId === 'base-image.layers')) {
      say(`     - [${r.ruleId}] ${r.message}${r.remediation ? `\n       → ${r.remediation}` : ''}`);
    }
  }
  return rec;
}
