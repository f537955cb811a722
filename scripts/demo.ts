// `npm run demo`: pushes an example image to the running local stack, feeds it a real scan, and shows the verdict.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { imageDocId } from '../shared/image-ref/image-ref.js';
import type { ImageRecord } from '../shared/ledger/image-record.js';
import { dashboardShot } from './lib/dashboard-shot.js';
import { firebasePorts } from './lib/emulators.js';
import { skopeoCopy, writeOciImage } from './lib/oci-image.js';
import { STATE_DIR, sleep } from './lib/process.js';
import type { StackInfo } from './stack.js';

const say = (s = '') => process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  let info: StackInfo;
  try {
    info = JSON.parse(readFileSync(join(STATE_DIR, 'stack.json'), 'utf8')) as StackInfo;
  } catch {
    throw new Error('the local stack is not running: start it with `npm start` first');
  }
  const ports = firebasePorts(resolve(process.env.CLEARANCE_FIREBASE_JSON ?? 'firebase.json'));
  process.env.FIRESTORE_EMULATOR_HOST ||= `127.0.0.1:${ports.firestore}`;
  process.env.PUBSUB_EMULATOR_HOST ||= `127.0.0.1:${ports.pubsub}`;
  process.env.METADATA_SERVER_DETECTION ||= 'none';
  const token = readFileSync(info.tokenFile, 'utf8').trim();
  const db = new Firestore({ projectId: info.projectId });
  const pubsub = new PubSub({ projectId: info.projectId });
  // Interim: the demo still reads two payloads kept in the repository (test/fixtures); to be replaced by generated events.
  const fixtures = resolve('test', 'fixtures', 'real-world');
  const work = mkdtempSync(join(tmpdir(), 'clearance-demo-'));
  try {
    say(
      '1. Build a base image and an app image (OCI layout written by code) and push them with skopeo',
    );
    const baseLayout = join(work, 'base');
    writeOciImage(baseLayout, {
      files: { 'etc/os-release': 'ID=debian\nVERSION_ID=12\n' },
      config: { created: new Date().toISOString() },
    });
    const baseRef = `${info.registry}/base/debian12:latest`;
    const baseDigest = await skopeoCopy(baseLayout, baseRef);
    say(`   ${baseRef} → ${baseDigest}`);
    const appLayout = join(work, 'app');
    writeOciImage(appLayout, {
      files: { 'app/hello.txt': `hello from the Clearance demo, ${new Date().toISOString()}\n` },
      config: { created: new Date().toISOString(), user: '1000', labels: { owner: 'demo-team' } },
      annotations: {
        'org.opencontainers.image.base.name': baseRef,
        'org.opencontainers.image.base.digest': baseDigest,
      },
    });
    const appRef = `${info.registry}/apps/hello:1.0`;
    const digest = await skopeoCopy(appLayout, appRef);
    const repository = 'apps/hello';
    const id = imageDocId(info.registry, repository, digest);
    say(`   ${appRef} → ${digest}`);

    say(
      '\n2. The registry notifies ingestWebhook; the gcr topic gets the same push in its own format',
    );
    const gcr = JSON.parse(
      readFileSync(join(fixtures, 'gcr', 'gcr-insert-digest-tag.json'), 'utf8'),
    ) as Record<string, string>;
    await pubsub.topic('gcr').publishMessage({
      json: { ...gcr, digest: `${info.registry}/${repository}@${digest}`, tag: appRef },
    });
    const pushed = await waitFor(
      db,
      id,
      (r) => r.pushedAt !== null,
      'the push to reach the ledger',
    );
    say(
      `   ledger: state ${pushed.state}, tags ${pushed.tags.join(', ')}, base ${pushed.base?.name ?? 'unknown'}`,
    );
    for (const [env, v] of Object.entries(pushed.verdicts))
      say(`   ${env}: ${v.decision} (${v.reasons[0]?.message ?? ''})`);

    say(
      '\n3. Artifact Analysis finishes a scan: real occurrences from the fixtures, pointed at our image',
    );
    const scan = JSON.parse(
      readFileSync(
        join(fixtures, 'containeranalysis', 'gcloud-describe-vulns-discovery-debian12.json'),
        'utf8',
      ),
    ) as {
      discovery_summary: { discovery: Record<string, unknown>[] };
      package_vulnerability_summary: { vulnerabilities: Record<string, Record<string, unknown>[]> };
    };
    const resourceUri = `https://${info.registry}/${repository}@${digest}`;
    const grafeas = info.endpoints.find((e) => e.name === 'Container Analysis stand-in')?.url;
    const create = async (o: Record<string, unknown>) => {
      const res = await fetch(`${grafeas}/v1/projects/${info.projectId}/occurrences`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer local-token' },
        body: JSON.stringify({ ...o, name: undefined, resourceUri }),
      });
      return ((await res.json()) as { name: string }).name;
    };
    const vulns = Object.values(scan.package_vulnerability_summary.vulnerabilities).flat();
    for (const v of vulns) await create(v);
    const discovery = await create({
      ...scan.discovery_summary.discovery[0],
      updateTime: new Date().toISOString(),
    });
    const notification = JSON.parse(
      readFileSync(join(fixtures, 'containeranalysis', 'ca-notification-occurrence.json'), 'utf8'),
    ) as Record<string, unknown>;
    await pubsub.topic('container-analysis-occurrences-v1').publishMessage({
      json: {
        ...notification,
        name: discovery,
        kind: 'DISCOVERY',
        notificationTime: new Date().toISOString(),
      },
    });
    say(`   ${vulns.length} vulnerability occurrences + 1 DISCOVERY (FINISHED_SUCCESS) published`);
    const scanned = await waitFor(
      db,
      id,
      (r) =>
        r.scan.status === 'finished' &&
        Object.values(r.verdicts).some((v) => v.decision !== 'pending'),
      'the verdict',
    );
    say(`   scan: ${scanned.scan.counts?.total ?? 0} findings; state ${scanned.state}`);
    for (const [env, v] of Object.entries(scanned.verdicts)) {
      say(`   ${env} (${v.mode}): ${v.decision.toUpperCase()}`);
      for (const r of v.reasons.slice(0, 4))
        say(
          `     - [${r.ruleId}] ${r.message}${r.remediation ? `\n       → ${r.remediation}` : ''}`,
        );
    }

    say('\n4. Ask checkImage, as a deployer or CI pipeline would');
    const check = info.functions.checkImage;
    const res = await fetch(`${check}/v1/check?image=${encodeURIComponent(appRef)}&env=prod`, {
      headers: { authorization: `Bearer ${token}` },
    });
    say(`   GET /v1/check?image=${appRef}&env=prod → ${res.status}`);
    say(`   ${JSON.stringify(await res.json()).slice(0, 400)}`);
    say(
      '\nThe owner alert (if the image was denied) is printed by `npm start` and kept in .clearance/chat/messages.jsonl.',
    );
    await dashboardShot(info, token, id);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await Promise.all([db.terminate(), pubsub.close()]);
  }
}

async function waitFor(
  db: Firestore,
  id: string,
  done: (r: ImageRecord) => boolean,
  what: string,
): Promise<ImageRecord> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const snap = await db.collection('images').doc(id).get();
    if (snap.exists && done(snap.data() as ImageRecord)) return snap.data() as ImageRecord;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what} (see the function logs under .clearance/logs)`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
