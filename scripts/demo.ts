// `npm run demo`: the whole story on the running local stack, from images it builds and the scan events it generates for them.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { z } from 'zod';
import { CheckAnswerView } from '../cli/commands/check.js';
import { verifyBinauthzSignature } from '../shared/attestations/binauthz.js';
import { dsseVerify, parseDsseEnvelope } from '../shared/attestations/dsse.js';
import { localKeyId } from '../shared/attestations/signer.js';
import type { ImageRecord } from '../shared/image-record.js';
import { imageDocId } from '../shared/image-ref/image-ref.js';
import type { Reason } from '../shared/verdict.js';
import { dashboardShot } from './lib/dashboard-shot.js';
import {
  baseImageFiles,
  discoveryOccurrence,
  goStdlibOccurrence,
  occurrenceNotification,
  tarOccurrence,
} from './lib/demo-events.js';
import { demoForgedBase } from './lib/demo-forged-base.js';
import { firebasePorts } from './lib/emulators.js';
import { skopeoCopy, writeOciImage } from './lib/oci-image.js';
import { STATE_DIR, sleep } from './lib/process.js';
import type { StackInfo } from './stack.js';

const say = (s = '') => process.stdout.write(`${s}\n`);
const OCCURRENCES_TOPIC = 'container-analysis-occurrences-v1';
const WAIT_MS = 90_000;

const WatchResult = z.object({
  bases: z.array(
    z.object({
      name: z.string(),
      digest: z.string().nullable(),
      change: z.string(),
      markedStale: z.number(),
      alerts: z.number(),
    }),
  ),
});

/** A Grafeas ATTESTATION occurrence as the REST API returns it (bytes fields in base64). */
const AttestationOccurrence = z.object({
  attestation: z.object({
    serializedPayload: z.string(),
    signatures: z.array(z.object({ signature: z.string(), publicKeyId: z.string() })).min(1),
  }),
});

const ChatLogLine = z.object({
  kind: z.string(),
  receivedAt: z.string(),
  body: z.object({ text: z.string().optional() }).passthrough(),
});

interface Demo {
  info: StackInfo;
  token: string;
  watchToken: string;
  db: Firestore;
  pubsub: PubSub;
  grafeas: string;
  work: string;
}

function loadStack(): StackInfo {
  try {
    return JSON.parse(readFileSync(join(STATE_DIR, 'stack.json'), 'utf8')) as StackInfo;
  } catch {
    throw new Error('the local stack is not running: start it with `npm start` first');
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const found = await probe();
    if (found !== null) return found;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what} (see the function logs under .clearance/logs)`);
}

function waitForImage(d: Demo, id: string, what: string, done: (r: ImageRecord) => boolean) {
  return waitFor(what, async () => {
    const snap = await d.db.collection('images').doc(id).get();
    const r = snap.data() as ImageRecord | undefined;
    return r && done(r) ? r : null;
  });
}

/** Messages the chat-webhook sink received since `since` about an image (its short digest), one per alert. */
function chatMessages(info: StackInfo, since: string, digest: string, title: string): string[] {
  if (!existsSync(info.chatLog)) return [];
  const short = digest.replace(/^sha256:/, '').slice(0, 12);
  const texts = readFileSync(info.chatLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => ChatLogLine.parse(JSON.parse(l)))
    // Each alert reaches both of the team's channels; the Slack copy carries the plain text.
    .filter((m) => m.kind === 'slack' && m.receivedAt >= since)
    .map((m) => m.body.text ?? '');
  return texts.filter((t) => t.includes(short) && t.startsWith(title));
}

type ShownReason = Pick<Reason, 'ruleId' | 'level' | 'message'> & { remediation?: string | null };

function printReasons(reasons: readonly ShownReason[], indent = '     '): void {
  for (const r of reasons) {
    say(`${indent}${r.level === 'deny' ? '✗' : '!'} [${r.ruleId}] ${r.message}`);
    if (r.remediation) say(`${indent}  → ${r.remediation}`);
  }
}

async function push(
  d: Demo,
  name: string,
  ref: string,
  build: (dir: string) => void,
  ociRef?: string,
) {
  const layout = join(d.work, name);
  build(layout);
  const digest = await skopeoCopy(layout, ref, ociRef ? { ref: ociRef } : {});
  say(`   ${ref} → ${digest}`);
  return digest;
}

async function watchBases(d: Demo) {
  const res = await fetch(`${d.info.functions.watchBaseImages}/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.watchToken}` },
  });
  if (!res.ok) throw new Error(`watchBaseImages answered HTTP ${res.status}`);
  return WatchResult.parse(await res.json()).bases;
}

/** Artifact Analysis finishing a scan: the occurrences, then the DISCOVERY notification onScanComplete listens for. */
async function finishScan(d: Demo, resourceUri: string, vulns: Record<string, unknown>[]) {
  const create = async (o: Record<string, unknown>) => {
    const res = await fetch(`${d.grafeas}/v1/projects/${d.info.projectId}/occurrences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer local-token' },
      body: JSON.stringify(o),
    });
    return ((await res.json()) as { name: string }).name;
  };
  const now = new Date().toISOString();
  for (const v of vulns) {
    const name = await create(v);
    await d.pubsub
      .topic(OCCURRENCES_TOPIC)
      .publishMessage({ json: occurrenceNotification(name, 'VULNERABILITY', now) });
  }
  const discovery = await create(discoveryOccurrence(resourceUri, now));
  await d.pubsub
    .topic(OCCURRENCES_TOPIC)
    .publishMessage({ json: occurrenceNotification(discovery, 'DISCOVERY', now) });
}

async function check(d: Demo, image: string): Promise<CheckAnswerView> {
  const url = `${d.info.functions.checkImage}/v1/check?image=${encodeURIComponent(image)}&env=prod`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${d.token}` } });
  if (!res.ok) throw new Error(`checkImage answered HTTP ${res.status}: ${await res.text()}`);
  const answer = CheckAnswerView.parse(await res.json());
  say(`   GET /v1/check?image=${image}&env=prod → ${answer.decision.toUpperCase()}`);
  return answer;
}

function run(cmd: string, args: string[]): Promise<{ code: number; output: string } | null> {
  return new Promise((res) => {
    execFile(cmd, args, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') res(null);
      else
        res({
          code: err ? Number((err as { code?: number }).code ?? 1) : 0,
          output: `${stdout}${stderr}`.trim(),
        });
    });
  });
}

/** Verifies the Binary Authorization signature as anyone holding the public key would: openssl, else Node's crypto. */
async function verifySignature(d: Demo, image: ImageRecord): Promise<boolean> {
  const binauthz = image.attestations.find((a) => a.format === 'binauthz' && !a.revokedAt);
  if (!binauthz?.occurrence) throw new Error('no Binary Authorization attestation in the ledger');
  const res = await fetch(`${d.grafeas}/v1/${binauthz.occurrence}`, {
    headers: { authorization: 'Bearer local-token' },
  });
  const occ = AttestationOccurrence.parse(await res.json());
  const publicKey = readFileSync(d.info.attestorPublicKeyFile, 'utf8');
  const payload = Buffer.from(occ.attestation.serializedPayload, 'base64');
  const signature = Buffer.from(occ.attestation.signatures[0]?.signature ?? '', 'base64');
  // Kept in the stack's state folder, so the printed command can be run again by hand.
  const dir = join(STATE_DIR, 'demo', 'verify');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = {
    payload: join(dir, 'payload.json'),
    signature: join(dir, 'signature.der'),
    key: join(dir, 'attestor.pub.pem'),
  };
  writeFileSync(files.payload, payload);
  writeFileSync(files.signature, signature);
  writeFileSync(files.key, publicKey);
  const keyId = occ.attestation.signatures[0]?.publicKeyId;
  say(`   occurrence ${binauthz.occurrence} (key ${keyId})`);
  if (keyId !== localKeyId(publicKey)) {
    say(`   the signature names key ${keyId}, not the attestor's ${localKeyId(publicKey)}`);
    return false;
  }
  say('   payload (as `gcloud container binauthz create-signature-payload` writes it):');
  for (const line of payload.toString('utf8').trimEnd().split('\n')) say(`     ${line}`);
  const args = [
    'dgst',
    '-sha256',
    '-verify',
    files.key,
    '-signature',
    files.signature,
    files.payload,
  ];
  say(`   $ openssl ${args.join(' ')}`);
  const result = await run('openssl', args);
  let verified: boolean;
  if (result) {
    say(`   ${result.output}`);
    verified = result.code === 0 && /Verified OK/.test(result.output);
  } else {
    verified = verifyBinauthzSignature(payload, signature, publicKey);
    say(
      `   (openssl is not installed here; Node's crypto says: ${verified ? 'Verified OK' : 'Verification failure'})`,
    );
  }
  const dsse = image.attestations.find((a) => a.format === 'dsse' && !a.revokedAt);
  if (dsse?.envelope) {
    const envelope = parseDsseEnvelope(JSON.parse(dsse.envelope));
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as {
      predicateType: string;
      predicate: { verificationResult?: string; policy?: { digest?: Record<string, string> } };
    };
    say(
      `   DSSE envelope: ${envelope.payloadType}, ${statement.predicateType}, result ${statement.predicate.verificationResult ?? '?'}; signature ${dsseVerify(envelope, publicKey) ? 'verifies' : 'DOES NOT verify'} with the same key`,
    );
  }
  return verified;
}

async function main(): Promise<void> {
  const info = loadStack();
  const ports = firebasePorts(resolve(process.env.CLEARANCE_FIREBASE_JSON ?? 'firebase.json'));
  process.env.FIRESTORE_EMULATOR_HOST ||= `127.0.0.1:${ports.firestore}`;
  process.env.PUBSUB_EMULATOR_HOST ||= `127.0.0.1:${ports.pubsub}`;
  process.env.METADATA_SERVER_DETECTION ||= 'none';
  const grafeas = info.endpoints.find((e) => e.name === 'Container Analysis stand-in')?.url;
  if (!grafeas) throw new Error('stack.json names no Container Analysis stand-in');
  const d: Demo = {
    info,
    token: readFileSync(info.tokenFile, 'utf8').trim(),
    // watchBaseImages has a credential of its own (docs/trust.md); the stack keeps it beside the check's.
    watchToken: readFileSync(join(dirname(info.tokenFile), 'dev-watch-token'), 'utf8').trim(),
    db: new Firestore({ projectId: info.projectId }),
    pubsub: new PubSub({ projectId: info.projectId }),
    grafeas,
    work: mkdtempSync(join(tmpdir(), 'clearance-demo-')),
  };
  const baseTag = `${info.registry}/base/distroless-debian12:nonroot`;
  if (!info.baseImages.includes(baseTag)) {
    throw new Error(
      `the stack does not watch ${baseTag} (CLEARANCE_BASE_IMAGES): restart it without that override`,
    );
  }
  const repository = 'apps/hello';
  const runId = new Date().toISOString();
  const summary = {
    allowed: 0,
    denied: 0,
    attested: 0,
    signature_verified: false,
    rebuild_alerts: 0,
    allowed_image: null as string | null,
    denied_image: null as string | null,
  };
  try {
    say(
      '1. A trusted minimal base: distroless-like (no shell, user 65532, four Debian packages), built by code',
    );
    let baseStack: ReturnType<typeof writeOciImage>['stack'] | undefined;
    const baseDigest = await push(d, 'base', baseTag, (dir) => {
      baseStack = writeOciImage(dir, {
        files: baseImageFiles(0),
        config: {
          user: '65532',
          labels: { 'org.opencontainers.image.title': 'distroless-like base' },
        },
      }).stack;
    });
    for (const b of await watchBases(d))
      say(`   base watcher: ${b.name} ${b.change} at ${b.digest}`);

    // Built FROM the base, in the base's own layout (its layer blobs are there), so the base claim is proven.
    const appOn = (version: string, files: Record<string, string>) => (dir: string) =>
      writeOciImage(dir, {
        ref: version,
        baseLayers: baseStack,
        files: { ...files, 'app/VERSION': `${version} (demo run ${runId})\n` },
        config: { created: runId, user: '65532', labels: { owner: 'demo-team' } },
        annotations: {
          'org.opencontainers.image.base.name': baseTag,
          'org.opencontainers.image.base.digest': baseDigest,
        },
      });

    say('\n2. hello:1.0 on that base; the registry notifies ingestWebhook, the ledger records it');
    const goodRef = `${info.registry}/${repository}:1.0`;
    const good = await push(
      d,
      'base',
      goodRef,
      appOn('1.0', { 'app/server': 'static binary, Go 1.22.2\n' }),
      '1.0',
    );
    const goodId = imageDocId(info.registry, repository, good);
    const pushed = await waitForImage(
      d,
      goodId,
      'the push to reach the ledger',
      (r) => r.pushedAt !== null,
    );
    say(
      `   ledger: state ${pushed.state}, base ${pushed.base?.name} (${pushed.base?.status}), owner ${pushed.owner ?? pushed.labels.owner}`,
    );

    say(
      '\n3. Artifact Analysis finishes its scan: only CVE-2005-2541 in tar (CVSS 10, Debian: LOW, no fix)',
    );
    const goodUri = `https://${info.registry}/${repository}@${good}`;
    await finishScan(d, goodUri, [tarOccurrence(goodUri, new Date().toISOString())]);
    const allowedRec = await waitForImage(
      d,
      goodId,
      'the verdict',
      (r) => r.verdicts.prod?.decision !== undefined && r.verdicts.prod.decision !== 'pending',
    );
    const prod = allowedRec.verdicts.prod;
    say(
      `   prod (${prod?.mode}): ${prod?.decision.toUpperCase()}, policy ${prod?.policyHash?.slice(0, 19)}…`,
    );
    printReasons(prod?.reasons ?? []);

    say('\n4. attestImage signs it: Binary Authorization occurrence + DSSE envelope');
    const attested = await waitForImage(d, goodId, 'the attestations', (r) =>
      ['binauthz', 'dsse'].every((f) => r.attestations.some((a) => a.format === f && !a.revokedAt)),
    );
    for (const a of attested.attestations)
      say(`   ${a.format}: key ${a.keyId}${a.occurrence ? `, ${a.occurrence}` : ''}`);
    summary.attested += 1;
    say('\n5. Anyone with the public key verifies the signature');
    summary.signature_verified = await verifySignature(d, attested);

    say('\n6. A deployer asks checkImage');
    const allow = await check(d, goodRef);
    printReasons(allow.reasons);
    if (allow.decision === 'allow') {
      summary.allowed += 1;
      summary.allowed_image = `${info.registry}/${repository}@${good}`;
    }

    await demoForgedBase({
      registry: info.registry,
      trustedBase: { ref: baseTag, digest: baseDigest },
      db: d.db,
      work: d.work,
      say,
    });
    say(
      '\n7. hello:1.1 ships a server built with Go 1.22.1: the scan finds CVE-2023-45288 (HIGH, fixed in 1.22.2)',
    );
    const badRef = `${info.registry}/${repository}:1.1`;
    const since = new Date().toISOString();
    const bad = await push(
      d,
      'base',
      badRef,
      appOn('1.1', { 'app/server': 'static binary, Go 1.22.1\n' }),
      '1.1',
    );
    const badId = imageDocId(info.registry, repository, bad);
    await waitForImage(d, badId, 'the push to reach the ledger', (r) => r.pushedAt !== null);
    const badUri = `https://${info.registry}/${repository}@${bad}`;
    const now = new Date().toISOString();
    await finishScan(d, badUri, [tarOccurrence(badUri, now), goStdlibOccurrence(badUri, now)]);
    const deniedRec = await waitForImage(
      d,
      badId,
      'the verdict',
      (r) => r.verdicts.prod?.decision === 'deny' || r.verdicts.prod?.decision === 'allow',
    );
    say(
      `   prod (${deniedRec.verdicts.prod?.mode}): ${deniedRec.verdicts.prod?.decision.toUpperCase()}`,
    );
    printReasons(deniedRec.verdicts.prod?.reasons ?? []);
    const deny = await check(d, badRef);
    if (deny.decision === 'deny') {
      summary.denied += 1;
      summary.denied_image = `${info.registry}/${repository}@${bad}`;
    }
    say('   the owner (label owner=demo-team) hears it in chat — from the chat-webhook sink:');
    const [denied] = await waitFor('the denial alert in chat', async () => {
      const m = chatMessages(info, since, bad, 'Image denied');
      return m.length > 0 ? m : null;
    });
    for (const line of (denied ?? '').split('\n').slice(0, 8)) say(`     │ ${line}`);

    say(
      '\n8. The base tag moves to a patched digest (base-files, tzdata point release); the watcher runs',
    );
    const moved = new Date().toISOString();
    await push(d, 'base-patched', baseTag, (dir) =>
      writeOciImage(dir, {
        files: baseImageFiles(1),
        config: {
          user: '65532',
          labels: { 'org.opencontainers.image.title': 'distroless-like base' },
        },
      }),
    );
    for (const b of await watchBases(d))
      say(
        `   base watcher: ${b.name} ${b.change}, ${b.markedStale} image(s) marked stale, ${b.alerts} rebuild alert(s)`,
      );
    const stale = await waitForImage(
      d,
      goodId,
      'the base to be marked stale',
      (r) => r.base?.status === 'stale',
    );
    say(`   hello:1.0 base: ${stale.base?.status}, current base ${stale.base?.currentDigest}`);
    const rebuilds = await waitFor('the rebuild alert in chat', async () => {
      const m = chatMessages(info, moved, good, 'Rebuild needed');
      return m.length > 0 ? m : null;
    });
    summary.rebuild_alerts = rebuilds.length;
    for (const line of (rebuilds[0] ?? '').split('\n').slice(0, 6)) say(`     │ ${line}`);
    const reevaluated = await waitForImage(d, goodId, 'the re-evaluation', (r) =>
      (r.verdicts.prod?.reasons ?? []).some((x) => x.ruleId === 'base-image.fresh'),
    );
    say(
      `   re-evaluated: prod ${reevaluated.verdicts.prod?.decision.toUpperCase()}, until the grace period ends`,
    );
    printReasons(
      (reevaluated.verdicts.prod?.reasons ?? []).filter((r) => r.ruleId === 'base-image.fresh'),
    );
    say(`\nEvery chat message is also kept in ${info.chatLog}.\n`);
    await dashboardShot(info, d.token, goodId);
  } finally {
    rmSync(d.work, { recursive: true, force: true });
    await Promise.all([d.db.terminate(), d.pubsub.close()]);
  }
  say(JSON.stringify(summary));
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
