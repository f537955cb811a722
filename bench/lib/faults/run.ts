// The fault run: the same events once clean and sequential, once duplicated, shuffled and concurrent under faults; then the two ledgers compared.
import { sleep } from '../../../scripts/lib/process.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { storePolicy } from '../../../shared/policy/store/policy-source.js';
import { handlersSettled } from '../../../shared/runtime/deadline.js';
import { contentId } from '../../../shared/trust/uploads.js';
import { type Delivery, PushBroker, pullMessages } from './broker.js';
import { canonicalText, diffDumps, dumpLedger, forgetDeletedHistory } from './ledger-dump.js';
import {
  FAULTS_POLICY,
  seededRandom,
  shuffle,
  WEBHOOK_CONTENT_TYPE,
  WEBHOOK_PATH,
  type WorkloadEvent,
  workloadEvents,
} from './scenario.js';
import {
  type FaultInfra,
  type FunctionStack,
  type PushFunction,
  startFunctions,
  TOKENS,
} from './stack.js';

export interface FaultRunOptions {
  events: number;
  seed: number;
  /** Deliveries of each event (the first and its duplicates). */
  copies: number;
  batch: number;
  /** Probability that a push endpoint answers 5xx. */
  failRate: number;
  /** The subscriptions' max_delivery_attempts (infra default 10). */
  maxAttempts: number;
  /** Rounds the registry stays unreachable, and the Firestore emulator stays down each time. */
  registryOutageRounds?: number;
  firestoreOutageRounds?: number;
  /** Which outages to inject (default both); the 5xx answers are set by failRate. */
  outages?: readonly ('firestore' | 'registry')[];
}

export interface FaultRunResult {
  events: number;
  duplicates_delivered: number;
  faults_injected: number;
  ledger_equal: boolean;
  lost: number;
  duplicate_attestations: number;
  duplicate_alerts: number;
  /** gcr `DELETE` messages in the workload (of a digest, or of a tag). */
  deletes: number;
  /** Distribution webhook notifications in the workload (each a push, POSTed to ingestWebhook). */
  webhook_events: number;
  /** CI report uploads (Trivy) in the workload. */
  report_uploads: number;
  detail: {
    /** Images the faulty ledger holds as deleted, and the digest deletes that should have made them so. */
    deletedImages: number;
    digestDeletes: number;
    /** Deleted images never attested (or denied) in the faulty run because their delete came first. */
    historiesDiffering: number;
    /** Digest deletes acknowledged before any push of their image in the faulty run. */
    deletesBeforePush: number;
    /** Attestation occurrences left on deleted images in the faulty run (revocation missed). */
    attestedDeleted: number;
    rounds: number;
    firestoreRestarts: number;
    registryOutages: number;
    registryOutageRounds: number;
    firestoreOutageRounds: number;
    injected5xx: { before: number; after: number };
    posted: number;
    statuses: Record<string, number>;
    byTopic: Record<string, Record<string, number>>;
    deadLettered: { topic: string; messageId: string }[];
    lostEvents: string[];
    lostAlerts: number;
    lostAttestations: number;
    diff: { missing: string[]; extra: string[]; changed: string[] };
    cleanSeconds: number;
    faultySeconds: number;
    alerts: number;
    attestations: number;
  };
}

const EFFECT_TOPICS = (stack: FunctionStack) => Object.keys(stack.effectTargets);

const FUNCTION_OF: Record<WorkloadEvent['kind'], PushFunction> = {
  push: 'push',
  delete: 'push',
  'tag-delete': 'push',
  scan: 'scan',
  webhook: 'webhook',
  report: 'report',
};

/** How each HTTP channel is posted: its path and the sender's own credential. */
function httpOf(ev: WorkloadEvent): Delivery['http'] {
  switch (ev.kind) {
    case 'webhook':
      return {
        path: WEBHOOK_PATH,
        headers: {
          'content-type': WEBHOOK_CONTENT_TYPE,
          authorization: `Bearer ${TOKENS.distribution}`,
        },
      };
    case 'report':
      return {
        path: `/?image=${encodeURIComponent(ev.report?.image ?? '')}`,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.report}` },
      };
    case 'push':
    case 'delete':
    case 'tag-delete':
    case 'scan':
      return undefined;
    default: {
      const never: never = ev.kind;
      throw new Error(`unknown event kind ${String(never)}`);
    }
  }
}

function toDelivery(stack: FunctionStack, ev: WorkloadEvent): Delivery {
  return {
    topic: ev.topic,
    endpoint: stack.proxies[FUNCTION_OF[ev.kind]].url,
    messageId: ev.messageId,
    publishTime: ev.publishTime,
    data: Buffer.from(JSON.stringify(ev.data)),
    ...(httpOf(ev) ? { http: httpOf(ev) } : {}),
    attempts: 0,
    due: 0,
  };
}

/** Moves what the functions published to the effect topics into the broker. */
async function pumpEffects(
  stack: FunctionStack,
  broker: PushBroker,
  round: number,
): Promise<number> {
  let moved = 0;
  for (const topic of EFFECT_TOPICS(stack)) {
    const got = await pullMessages(stack.info.pubsubHost, stack.projectId, `${topic}-pull`);
    const target = stack.effectTargets[topic] as PushFunction;
    for (const m of got) {
      broker.enqueue({
        topic,
        endpoint: stack.proxies[target].url,
        messageId: m.messageId,
        publishTime: m.publishTime,
        data: m.data,
        attributes: m.attributes,
        attempts: 0,
        due: round,
      });
    }
    moved += got.length;
  }
  return moved;
}

/**
 * Chat messages by what they announce: the card's title and the image digest. The rest of a card
 * (the tags known when it was sent) depends on arrival order; one alert per event is the rule.
 */
function chatMessages(infra: FaultInfra, projectId: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of infra.chat.messages) {
    if (m.path !== `/v1/spaces/${projectId}/messages`) continue;
    const text = JSON.stringify(m.body);
    const title =
      (m.body as { cardsV2?: { card?: { header?: { title?: string } } }[] }).cardsV2?.[0]?.card
        ?.header?.title ?? canonicalText(text).slice(0, 200);
    // The card names the image's full digest after `digest `; a key id may come before it.
    const digest =
      /digest (sha256:[0-9a-f]{64})/.exec(text)?.[1] ?? /sha256:[0-9a-f]{64}/.exec(text)?.[0] ?? '';
    const key = `${title} ${digest}`.replaceAll(projectId, '<project>');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

/** How many more of each key `got` holds than `want`. */
function excess(want: Map<string, number>, got: Map<string, number>): number {
  let n = 0;
  for (const [k, v] of got) n += Math.max(0, v - (want.get(k) ?? 0));
  return n;
}

/** Attestation occurrences in the Container Analysis stand-in, per image. */
function attestations(infra: FaultInfra, projectId: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of infra.grafeas.occurrences.values()) {
    if (o.kind !== 'ATTESTATION' && !('attestation' in o)) continue;
    if (!String(o.name).startsWith(`projects/${projectId}/`)) continue;
    const key = `${String(o.noteName).replace(projectId, '<project>')} ${String(o.resourceUri)}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

export async function applyPolicy(stack: FunctionStack): Promise<void> {
  await storePolicy(stack.db, {
    source: FAULTS_POLICY,
    format: 'yaml',
    appliedBy: 'bench-faults',
    now: new Date('2026-11-30T07:00:00Z'),
  });
}

/** The clean run: each event once, in publish order, its effects delivered before the next. */
export async function cleanRun(
  stack: FunctionStack,
  events: readonly WorkloadEvent[],
  opts: Pick<FaultRunOptions, 'maxAttempts'>,
) {
  const broker = new PushBroker({
    projectId: stack.projectId,
    maxAttempts: opts.maxAttempts,
    maxBackoffRounds: 8,
    timeoutMs: 30_000,
  });
  for (const p of Object.values(stack.proxies)) p.rate = 0;
  for (const ev of events) {
    await broker.deliverNow(toDelivery(stack, ev));
    for (;;) {
      await pumpEffects(stack, broker, 0);
      const next = broker.take(0, 1000);
      if (next.length === 0) break;
      for (const d of next) await broker.deliverNow(d);
    }
  }
  // Effects published late (after an answer) are still delivered.
  for (let quietRounds = 0; quietRounds < 3; ) {
    await sleep(100);
    if ((await pumpEffects(stack, broker, 0)) === 0) quietRounds += 1;
    for (const d of broker.take(0, 1000)) await broker.deliverNow(d);
  }
  return broker;
}

interface Fault {
  round: number;
  what: 'firestore-down' | 'firestore-up' | 'registry-down' | 'registry-up';
}

function faultSchedule(rounds: number, fsLen: number, regLen: number): Fault[] {
  const fs1 = Math.max(1, Math.floor(rounds * 0.2));
  const reg = Math.max(fs1 + fsLen, Math.floor(rounds * 0.45));
  const fs2 = Math.max(reg + regLen, Math.floor(rounds * 0.7));
  return [
    { round: fs1, what: 'firestore-down' },
    { round: fs1 + fsLen, what: 'firestore-up' },
    { round: reg, what: 'registry-down' },
    { round: reg + regLen, what: 'registry-up' },
    { round: fs2, what: 'firestore-down' },
    { round: fs2 + fsLen, what: 'firestore-up' },
  ];
}

async function faultyRun(
  infra: FaultInfra,
  stack: FunctionStack,
  events: readonly WorkloadEvent[],
  opts: FaultRunOptions,
  random: () => number,
  log: (line: string) => void,
) {
  const broker = new PushBroker({
    projectId: stack.projectId,
    maxAttempts: opts.maxAttempts,
    maxBackoffRounds: 8,
    timeoutMs: 30_000,
  });
  const copies: Delivery[] = [];
  // A CI job uploads its report after its push, but Clearance may not have recorded the push yet;
  // a report for an unknown image is refused (400, dead-lettered), so uploads wait for the push's ack.
  let held: { after: string; d: Delivery }[] = [];
  for (const ev of events)
    for (let c = 0; c < opts.copies; c++) {
      const d = toDelivery(stack, ev);
      if (ev.report) held.push({ after: ev.report.after, d });
      else copies.push(d);
    }
  broker.enqueue(...shuffle(copies, random));
  const expectedRounds = Math.ceil(copies.length / opts.batch);
  const fsLen = opts.firestoreOutageRounds ?? Math.max(1, Math.round(expectedRounds / 30));
  const regLen = opts.registryOutageRounds ?? Math.max(1, Math.round(expectedRounds / 15));
  const outages = opts.outages ?? ['firestore', 'registry'];
  const schedule = faultSchedule(expectedRounds, fsLen, regLen).filter((f) =>
    outages.includes(f.what.startsWith('firestore') ? 'firestore' : 'registry'),
  );
  const counts = { firestoreRestarts: 0, registryOutages: 0 };
  for (const p of Object.values(stack.proxies)) p.rate = opts.failRate;
  let round = 0;
  let quiet = 0;
  for (;;) {
    for (const f of schedule.filter((s) => s.round === round)) {
      const t0 = Date.now();
      switch (f.what) {
        case 'firestore-down':
          // Between rounds no delivery is in flight, but a handler answered 5xx at its deadline
          // may still be writing: it settles first, then what is committed is exported and killed
          // (a write after the export would be lost, which a real database never does).
          if (!(await handlersSettled(120_000))) {
            log(
              '  handlers still running after 120 s: their later writes are lost with the restart',
            );
          }
          await infra.firestore.kill();
          break;
        case 'firestore-up':
          await infra.firestore.restart();
          counts.firestoreRestarts += 1;
          break;
        case 'registry-down':
          await infra.registry.stop();
          counts.registryOutages += 1;
          break;
        case 'registry-up':
          await infra.registry.start();
          break;
        default: {
          const never: never = f.what;
          throw new Error(`unknown fault ${String(never)}`);
        }
      }
      log(`  round ${round}: ${f.what} (${Date.now() - t0} ms)`);
    }
    // A backend that is down cannot be read for effects either: the emulator for Pub/Sub stays up.
    await pumpEffects(stack, broker, round);
    // Nothing left to deliver: a push that never got acknowledged (dead-lettered) frees its report.
    const ready = held.filter((h) => broker.acknowledgedIds.has(h.after) || broker.pending === 0);
    held = held.filter((h) => !ready.includes(h));
    for (const h of ready) broker.enqueueAmong({ ...h.d, due: round }, random);
    const batch = broker.take(round, opts.batch);
    const faultsLeft = schedule.some((s) => s.round > round);
    if (batch.length === 0 && broker.pending === 0 && held.length === 0 && !faultsLeft) {
      // Nothing queued: done once the effect topics stay empty for a while.
      quiet += 1;
      if (quiet >= 3) break;
      await sleep(200);
    } else quiet = 0;
    if (batch.length === 0 && broker.pending > 0) await sleep(50);
    const before = { ...broker.stats.statuses };
    const t = Date.now();
    await broker.deliver(round, batch);
    if (process.env.FAULTS_DEBUG)
      log(
        `  round ${round}: ${batch.length} deliveries in ${Date.now() - t} ms, ${(broker.stats.statuses['2xx'] ?? 0) - (before['2xx'] ?? 0)} acknowledged, ${broker.pending} pending`,
      );
    round += 1;
  }
  return { broker, rounds: round, ...counts, fsLen, regLen };
}

export const CLEAN_PROJECT = 'demo-clearance-clean';
export const FAULTY_PROJECT = 'demo-clearance-faults';

/**
 * The clean run goes in a child process: function instances keep caches (policy, fix sightings,
 * base layers) that would carry one run's state into the other within a process.
 */
async function cleanRunInChild(
  infra: FaultInfra,
  events: readonly WorkloadEvent[],
  opts: FaultRunOptions,
  logFile: string,
): Promise<{ deadLettered: number; seconds: number }> {
  const { writeFileSync, readFileSync, openSync, closeSync } = await import('node:fs');
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const { join } = await import('node:path');
  const eventsFile = join(infra.info.scratch, 'events.json');
  const resultFile = join(infra.info.scratch, 'clean-result.json');
  writeFileSync(eventsFile, JSON.stringify(events));
  const fd = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('./clean-child.js', import.meta.url))],
    {
      env: {
        ...process.env,
        FAULTS_INFRA: JSON.stringify(infra.info),
        FAULTS_EVENTS: eventsFile,
        FAULTS_RESULT: resultFile,
        FAULTS_MAX_ATTEMPTS: String(opts.maxAttempts),
      },
      stdio: ['ignore', fd, fd],
    },
  );
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  closeSync(fd);
  if (code !== 0) throw new Error(`the clean run failed (exit ${code}); see ${logFile}`);
  return JSON.parse(readFileSync(resultFile, 'utf8')) as { deadLettered: number; seconds: number };
}

function countKinds(events: readonly WorkloadEvent[]): Record<WorkloadEvent['kind'], number> {
  const out = { push: 0, scan: 0, delete: 0, 'tag-delete': 0, webhook: 0, report: 0 };
  for (const e of events) out[e.kind] += 1;
  return out;
}

export async function runFaultSuite(
  infra: FaultInfra,
  opts: FaultRunOptions,
  log: (line: string) => void,
  logFile: string,
  /** Runs with the faulty run's functions still up (the fuzz phase), before they stop. */
  after?: (stack: FunctionStack) => Promise<void>,
): Promise<FaultRunResult> {
  const random = seededRandom(opts.seed);
  const events = workloadEvents(infra.registry.host, infra.info.images, opts.events, random, {
    host: infra.info.webhookRegistryHost,
    images: infra.info.webhookImages,
  });
  const kinds = countKinds(events);
  log(
    `workload: ${events.length} events (${kinds.push} gcr pushes, ${kinds.scan} scans, ${kinds.delete} digest deletes, ${kinds['tag-delete']} tag deletes over ${infra.info.images.length} images; ${kinds.webhook} distribution webhook pushes over ${infra.info.webhookImages.length} images on ${infra.info.webhookRegistryHost}; ${kinds.report} Trivy report uploads), seed ${opts.seed}`,
  );

  const clean = await cleanRunInChild(infra, events, opts, logFile);
  process.env.FIRESTORE_EMULATOR_HOST = infra.info.firestoreHost;
  const { Firestore } = await import('@google-cloud/firestore');
  const cleanDb = new Firestore({ projectId: CLEAN_PROJECT });
  const cleanDump = await dumpLedger(cleanDb, CLEAN_PROJECT);
  await cleanDb.terminate();
  const cleanChat = chatMessages(infra, CLEAN_PROJECT);
  const cleanAttest = attestations(infra, CLEAN_PROJECT);
  log(
    `clean run: each event once, in order, no faults — ${clean.seconds.toFixed(1)} s, ${cleanDump.size} documents, ${[...cleanChat.values()].reduce((a, b) => a + b, 0)} chat messages, ${[...cleanAttest.values()].reduce((a, b) => a + b, 0)} attestation occurrences, ${clean.deadLettered} dead-lettered`,
  );

  const stack = await startFunctions(infra.info, {
    projectId: FAULTY_PROJECT,
    random: seededRandom(opts.seed ^ 0x5eed),
  });
  try {
    await applyPolicy(stack);
    const t1 = Date.now();
    log(
      `faulty run: ${events.length} events × ${opts.copies} deliveries, shuffled, ${opts.batch} at a time, ${Math.round(opts.failRate * 100)}% of pushes answered 5xx`,
    );
    const faulty = await faultyRun(infra, stack, events, opts, random, log);
    const faultySeconds = (Date.now() - t1) / 1000;
    // Every delivery is acknowledged, but a handler answered 5xx at its deadline may still be
    // working: the ledger and the stand-ins are compared once it has finished, as they would be
    // read later in a real deployment.
    const t2 = Date.now();
    const atLastAck = excess(cleanAttest, attestations(infra, FAULTY_PROJECT));
    const settled = await handlersSettled(120_000);
    log(
      settled
        ? `  handlers settled ${((Date.now() - t2) / 1000).toFixed(1)} s after the last acknowledgement`
        : '  handlers still running 120 s after the last acknowledgement: compared as they are',
    );
    if (atLastAck > 0)
      log(`  at the last acknowledgement ${atLastAck} attestation occurrence(s) more than clean`);
    const faultyDump = await dumpLedger(stack.db, FAULTY_PROJECT);
    const faultyChat = chatMessages(infra, FAULTY_PROJECT);
    const faultyAttest = attestations(infra, FAULTY_PROJECT);

    // A deleted image's attestation history depends on when its delete arrived (see forgetDeletedHistory).
    const cleanRaw = new Map(cleanDump);
    const faultyRaw = new Map(faultyDump);
    const deletedClean = forgetDeletedHistory(cleanDump);
    const deletedFaulty = new Set(forgetDeletedHistory(faultyDump));
    const historiesDiffering = deletedClean.filter(
      (id) =>
        deletedFaulty.has(id) &&
        cleanRaw.get(`images/${id}`) !== faultyRaw.get(`images/${id}`) &&
        cleanDump.get(`images/${id}`) === faultyDump.get(`images/${id}`),
    ).length;
    const diff = diffDumps(cleanDump, faultyDump);
    for (const [key, n] of faultyAttest) {
      const want = cleanAttest.get(key) ?? 0;
      if (n !== want) log(`  attestation occurrences of ${key}: ${n} (clean run: ${want})`);
    }
    if (process.env.FAULTS_DUMP_DIR) {
      const { writeFileSync } = await import('node:fs');
      for (const [name, dump] of [
        ['clean', cleanDump],
        ['faulty', faultyDump],
        ['clean-chat', cleanChat],
        ['faulty-chat', faultyChat],
      ] as const)
        writeFileSync(
          `${process.env.FAULTS_DUMP_DIR}/${name}.json`,
          JSON.stringify(Object.fromEntries([...dump].sort()), null, 1),
        );
    }
    // An event is lost when its audit entry (one per message) is in the clean ledger and not here.
    const audited = (dump: Map<string, string>) =>
      new Set(
        [...dump.keys()]
          .filter((k) => k.includes('/audit/'))
          // `…/audit/KIND:MESSAGE_ID`; a report's message id holds colons (content hash:image id).
          .map((k) => k.slice(k.indexOf(':', k.indexOf('/audit/')) + 1)),
      );
    const cleanAudited = audited(cleanDump);
    const faultyAudited = audited(faultyDump);
    // A report's audit entry is keyed by its content and image (the upload carries no message id).
    const reportImageId = (ref: string) => {
      const [, host, repository, digest] = /^([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(ref) ?? [];
      return imageDocId(host ?? '', repository ?? '', digest ?? '');
    };
    const auditId = (ev: WorkloadEvent) =>
      ev.kind === 'report'
        ? `${contentId(JSON.stringify(ev.data))}:${reportImageId(ev.report?.image ?? '')}`
        : ev.messageId;
    const lostEvents = events
      .filter((ev) => cleanAudited.has(auditId(ev)) && !faultyAudited.has(auditId(ev)))
      .map((ev) => `${ev.kind} ${ev.messageId}`);
    // An alert about an image deleted in both runs may not come when the delete came first (the
    // image was never denied or attested while it existed); doubled alerts still count.
    const goneDigests = deletedClean
      .filter((id) => deletedFaulty.has(id))
      .map((id) => id.slice(id.lastIndexOf('@') + 1));
    const aboutGone = (key: string) => goneDigests.some((d) => key.endsWith(` ${d}`));
    const lostAlerts = excess(faultyChat, new Map([...cleanChat].filter(([k]) => !aboutGone(k))));
    const lostAttestations = excess(faultyAttest, cleanAttest);
    const injected = { before: 0, after: 0 };
    for (const p of Object.values(stack.proxies)) {
      injected.before += p.injected.before;
      injected.after += p.injected.after;
    }
    // Every digest delete ends its image deleted, with no attestation occurrence left to admit it.
    const deletedIds = new Set(
      (await stack.db.collection('images').where('state', '==', 'deleted').get()).docs.map((d) =>
        String(`${d.get('registry')}/${d.get('repository')}@${d.get('digest')}`),
      ),
    );
    // Deletes the faulty run took before every push of their image (a Set keeps insertion order).
    const ackAt = new Map([...faulty.broker.acknowledgedIds].map((id, i) => [id, i]));
    const deletesBeforePush = events.filter(
      (d) =>
        d.kind === 'delete' &&
        events
          .filter((p) => p.kind === 'push' && p.image === d.image)
          .every(
            (p) =>
              (ackAt.get(d.messageId) ?? Number.POSITIVE_INFINITY) <
              (ackAt.get(p.messageId) ?? Number.POSITIVE_INFINITY),
          ),
    ).length;
    let attestedDeleted = 0;
    for (const [key, count] of faultyAttest)
      for (const uri of deletedIds) if (key.endsWith(uri)) attestedDeleted += count;
    await after?.(stack);
    return {
      events: events.length,
      duplicates_delivered: events.length * (opts.copies - 1),
      faults_injected:
        faulty.firestoreRestarts + faulty.registryOutages + injected.before + injected.after,
      ledger_equal: diff.equal,
      lost: lostEvents.length + lostAlerts + lostAttestations,
      duplicate_attestations: excess(cleanAttest, faultyAttest),
      duplicate_alerts: excess(cleanChat, faultyChat),
      deletes: kinds.delete + kinds['tag-delete'],
      webhook_events: kinds.webhook,
      report_uploads: kinds.report,
      detail: {
        deletedImages: deletedIds.size,
        historiesDiffering,
        deletesBeforePush,
        digestDeletes: kinds.delete,
        attestedDeleted,
        rounds: faulty.rounds,
        firestoreRestarts: faulty.firestoreRestarts,
        registryOutages: faulty.registryOutages,
        registryOutageRounds: faulty.regLen,
        firestoreOutageRounds: faulty.fsLen,
        injected5xx: injected,
        posted: faulty.broker.stats.posted,
        statuses: faulty.broker.stats.statuses,
        byTopic: faulty.broker.stats.byTopic,
        deadLettered: faulty.broker.stats.deadLettered.map((d) => ({
          topic: d.topic,
          messageId: d.messageId,
        })),
        lostEvents,
        lostAlerts,
        lostAttestations,
        diff,
        cleanSeconds: clean.seconds,
        faultySeconds,
        alerts: [...faultyChat.values()].reduce((a, b) => a + b, 0),
        attestations: [...faultyAttest.values()].reduce((a, b) => a + b, 0),
      },
    };
  } finally {
    await stack.close();
  }
}
