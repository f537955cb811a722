// Fuzzed input for every inbound channel: values from the zod schemas, mutated real-world fixtures and damaged bytes → no 5xx, and every rejected input kept as a dead letter with its exact bytes.
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { z } from 'zod';
import { Alert } from '../../../shared/alerts/alert.js';
import { GcrMessage } from '../../../shared/events/gcr-event.js';
import {
  DistributionEnvelope,
  GithubPackageEvent,
  HarborPayload,
} from '../../../shared/events/registry-events.js';
import { OccurrenceNotification } from '../../../shared/findings/container-analysis.js';
import { GrypeReport } from '../../../shared/findings/grype.js';
import { OpenVexDocument } from '../../../shared/findings/openvex.js';
import { TrivyReport } from '../../../shared/findings/trivy.js';
import { imageDocId } from '../../../shared/image-ref/image-ref.js';
import { externalDocId } from '../../../shared/ledger/collections.js';
import { ReevaluateMessage, VerdictMessage } from '../../../shared/messages.js';
import { deletesDigest } from './scenario.js';
import type { FunctionStack, PushFunction } from './stack.js';
import { serveFunctionHere, TOKENS } from './stack.js';
import { arbitraryOf, byteMutations, damage, mutate, mutations } from './zod-arbitrary.js';

/** Where the real-world fixtures live, from the repository root (the bench runs there). */
const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'real-world');

function fixtures(dir: string, pattern: RegExp): Buffer[] {
  const path = join(FIXTURES, dir);
  return readdirSync(path)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => readFileSync(join(path, f)));
}

type Send = (body: Buffer, n: number) => Promise<Outcome>;
interface Outcome {
  status: number;
  /** The dead letter the channel says it wrote, or where a Pub/Sub function writes one. */
  deadLetter: string | null;
  /** The channel answered that it refused the input (4xx, or `accepted: false`). */
  refused: boolean;
  /** Whether the answer says refused or accepted (HTTP); a Pub/Sub push answers 2xx either way. */
  answers: boolean;
}

interface Channel {
  name: string;
  /**
   * The channel's schemas: fuzz values come from them and, for Pub/Sub (whose answer is a bare 2xx
   * either way), an input they refuse counts as refused. An HTTP channel says what it refused.
   */
  schemas: z.ZodType[];
  fixtures: Buffer[];
  send: Send;
  /** Check answers keep nothing: only the absence of 5xx counts. */
  keepsRejects: boolean;
}

export interface FuzzResult {
  fuzz_cases: number;
  fuzz_5xx: number;
  dead_letters_missing: number;
  perChannel: Record<string, { cases: number; fiveXx: number; missing: number; rejected: number }>;
  samples: string[];
}

const MAX_RAW = 256 * 1024;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The dead letter's `raw` as the ledger must store these bytes: UTF-8 text, or base64 when not UTF-8. */
function expectedRaw(bytes: Buffer): { raw: string; rawEncoding: string } {
  try {
    return { raw: strictUtf8.decode(bytes), rawEncoding: 'utf8' };
  } catch {
    return { raw: bytes.toString('base64'), rawEncoding: 'base64' };
  }
}

function refusedBySchemas(schemas: z.ZodType[], bytes: Buffer): boolean {
  if (schemas.length === 0) return false;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return true;
  }
  return !schemas.some((s) => s.safeParse(value).success);
}

async function answer(res: Response): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: {} };
  }
}

export async function runFuzz(
  stack: FunctionStack,
  opts: { seed: number; runs: number },
  log: (line: string) => void,
): Promise<FuzzResult> {
  await import('../../../functions/ingest-webhook/index.js');
  await import('../../../functions/ingest-report/index.js');
  await import('../../../functions/check-image/index.js');
  const webhook = await serveFunctionHere('ingestWebhook');
  const report = await serveFunctionHere('ingestReport');
  const check = await serveFunctionHere('checkImage');
  for (const p of Object.values(stack.proxies)) p.rate = 0;
  const { projectId } = stack;
  // Reports go to an image the ledger holds, so a well-formed one is taken and the ingest code
  // behind the parser is fuzzed too (for an image not recorded yet the answer is "retry later").
  const reportImage = await (async () => {
    for (const i of stack.info.images.filter((x) => !deletesDigest(x))) {
      const snap = await stack.db
        .collection('images')
        .doc(imageDocId(stack.info.registryHost, i.repository, i.digest))
        .get();
      if (snap.exists) return `${stack.info.registryHost}/${i.repository}@${i.digest}`;
    }
    throw new Error('fuzz: no image of the run is in the ledger to upload reports for');
  })();

  const pubsub = (fn: PushFunction, topic: string, source: string): Send => {
    return async (body, n) => {
      const messageId = `fuzz-${source}-${opts.seed}-${n}`;
      const res = await fetch(`${stack.proxies[fn].url}/projects/${projectId}/topics/${topic}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          message: {
            data: body.toString('base64'),
            messageId,
            publishTime: '2026-11-30T09:00:00.000Z',
          },
          subscription: `projects/${projectId}/subscriptions/${topic}-push`,
        }),
      });
      await res.arrayBuffer();
      return {
        status: res.status,
        deadLetter: externalDocId(`${source}:${messageId}`),
        refused: false,
        answers: false,
      };
    };
  };
  const http =
    (url: string, headers: (body: Buffer, n: number) => Record<string, string>): Send =>
    async (body, n) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: headers(body, n),
        body: new Uint8Array(body),
      });
      const a = await answer(res);
      const error = a.body.error as { deadLetter?: string } | undefined;
      const deadLetter =
        (typeof a.body.deadLetter === 'string' ? a.body.deadLetter : null) ??
        (typeof error?.deadLetter === 'string' ? error.deadLetter : null);
      return {
        status: a.status,
        deadLetter,
        refused: (a.status >= 400 && a.status < 500) || a.body.accepted === false,
        answers: true,
      };
    };
  const bearer =
    (token: string, type = 'application/json') =>
    () => ({
      authorization: `Bearer ${token}`,
      'content-type': type,
    });

  const channels: Channel[] = [
    {
      name: 'registry Pub/Sub (gcr)',
      schemas: [GcrMessage],
      fixtures: fixtures('gcr', /\.json$/),
      send: pubsub('push', 'gcr', 'gcr'),
      keepsRejects: true,
    },
    {
      name: 'scan Pub/Sub (Container Analysis)',
      schemas: [OccurrenceNotification],
      fixtures: fixtures('containeranalysis', /^ca-notification/),
      send: pubsub('scan', 'container-analysis-occurrences-v1', 'container-analysis'),
      keepsRejects: true,
    },
    {
      name: 'verdicts Pub/Sub (attestImage)',
      schemas: [VerdictMessage],
      fixtures: [],
      send: pubsub('attest', 'faults-verdicts', 'verdicts'),
      keepsRejects: true,
    },
    {
      name: 'alerts Pub/Sub (notifyOwners)',
      schemas: [Alert],
      fixtures: [],
      send: pubsub('notify', 'faults-alerts', 'alerts'),
      keepsRejects: true,
    },
    {
      name: 'reevaluate Pub/Sub',
      schemas: [ReevaluateMessage],
      fixtures: [],
      send: pubsub('reevaluate', 'faults-reevaluate', 'reevaluate'),
      keepsRejects: true,
    },
    {
      name: 'webhook distribution',
      schemas: [DistributionEnvelope],
      fixtures: fixtures('registry', /^distribution/),
      send: http(
        `${webhook.url}/distribution`,
        bearer(TOKENS.distribution, 'application/vnd.docker.distribution.events.v2+json'),
      ),
      keepsRejects: true,
    },
    {
      name: 'webhook Harbor',
      schemas: [HarborPayload],
      fixtures: fixtures('registry', /^harbor/),
      send: http(`${webhook.url}/harbor`, bearer(TOKENS.harbor)),
      keepsRejects: true,
    },
    {
      name: 'webhook GitHub',
      schemas: [GithubPackageEvent],
      fixtures: [],
      send: http(`${webhook.url}/github`, (body, n) => ({
        'content-type': 'application/json',
        'x-github-event': 'package',
        'x-github-delivery': `fuzz-${opts.seed}-${n}`,
        'x-hub-signature-256': `sha256=${createHmac('sha256', TOKENS.github).update(body).digest('hex')}`,
      })),
      keepsRejects: true,
    },
    {
      name: 'report upload',
      schemas: [TrivyReport, GrypeReport, OpenVexDocument],
      fixtures: [...fixtures('scanners', /\.json$/), ...fixtures('vex', /\.json$/)],
      send: http(`${report.url}/?image=${encodeURIComponent(reportImage)}`, bearer(TOKENS.report)),
      keepsRejects: true,
    },
    {
      name: 'check REST',
      schemas: [],
      fixtures: [],
      send: http(`${check.url}/v1/check`, bearer(TOKENS.check)),
      keepsRejects: false,
    },
    {
      name: 'check admission',
      schemas: [],
      fixtures: fixtures('k8s', /\.json$/),
      send: http(`${check.url}/admission`, bearer(TOKENS.check)),
      keepsRejects: false,
    },
    {
      name: 'check Gatekeeper',
      schemas: [],
      fixtures: [],
      send: http(`${check.url}/gatekeeper`, bearer(TOKENS.check)),
      keepsRejects: false,
    },
  ];

  const result: FuzzResult = {
    fuzz_cases: 0,
    fuzz_5xx: 0,
    dead_letters_missing: 0,
    perChannel: {},
    samples: [],
  };
  const deadLetters = stack.db.collection('deadLetters');
  let n = 0;
  for (const [ci, channel] of channels.entries()) {
    const seed = opts.seed + ci;
    const third = Math.max(1, Math.floor(opts.runs / 3));
    const inputs: Buffer[] = [];
    const base = channel.schemas.length > 0 ? channel.schemas : [];
    for (const [si, schema] of base.entries())
      for (const v of fc.sample(arbitraryOf(schema), {
        seed: seed + si,
        numRuns: Math.ceil(third / base.length),
      }))
        inputs.push(Buffer.from(JSON.stringify(v) ?? 'null'));
    if (base.length === 0)
      for (const v of fc.sample(fc.jsonValue({ maxDepth: 3 }), { seed, numRuns: third }))
        inputs.push(Buffer.from(JSON.stringify(v) ?? 'null'));
    // Mutations of the real payloads (or of schema values where the channel has no fixture).
    const originals = channel.fixtures.length > 0 ? channel.fixtures : inputs.slice(0, 5);
    for (const [i, m] of fc.sample(mutations, { seed: seed + 100, numRuns: third }).entries()) {
      const original = originals[i % originals.length] as Buffer;
      let value: unknown;
      try {
        value = JSON.parse(original.toString('utf8'));
      } catch {
        continue;
      }
      inputs.push(Buffer.from(JSON.stringify(mutate(value, m.pick, m.how, m.filler)) ?? 'null'));
    }
    for (const [i, d] of fc.sample(byteMutations, { seed: seed + 200, numRuns: third }).entries())
      inputs.push(damage(originals[i % originals.length] as Buffer, d));

    const stats = { cases: 0, fiveXx: 0, missing: 0, rejected: 0 };
    for (const body of inputs) {
      n += 1;
      stats.cases += 1;
      let out: Outcome;
      try {
        out = await channel.send(body, n);
      } catch (err) {
        out = { status: 599, deadLetter: null, refused: false, answers: true };
        result.samples.push(`${channel.name}: no answer (${(err as Error).message})`);
      }
      if (out.status >= 500) {
        stats.fiveXx += 1;
        if (result.samples.length < 20)
          result.samples.push(
            `${channel.name}: ${out.status} for ${body.subarray(0, 120).toString('utf8')}`,
          );
      }
      if (!channel.keepsRejects) continue;
      const rejected = out.refused || (!out.answers && refusedBySchemas(channel.schemas, body));
      const doc = out.deadLetter ? await deadLetters.doc(out.deadLetter).get() : null;
      if (rejected) stats.rejected += 1;
      if (doc?.exists) {
        const d = doc.data() as { raw: string; rawEncoding?: string; rawBytes?: number };
        const want = expectedRaw(body);
        const stored = want.raw.length > MAX_RAW ? want.raw.slice(0, MAX_RAW) : want.raw;
        if (d.raw !== stored || (d.rawEncoding ?? 'utf8') !== want.rawEncoding) {
          stats.missing += 1;
          if (result.samples.length < 20)
            result.samples.push(
              `${channel.name}: dead letter ${doc.id} does not hold the input's bytes (${d.rawEncoding ?? 'utf8'}, ${d.rawBytes} bytes stored; input ${body.length} bytes, ${want.rawEncoding})`,
            );
        }
      } else if (rejected) {
        stats.missing += 1;
        if (result.samples.length < 20)
          result.samples.push(
            `${channel.name}: rejected (${out.status}) without a dead letter: ${body.subarray(0, 100).toString('utf8')}`,
          );
      }
    }
    result.perChannel[channel.name] = stats;
    result.fuzz_cases += stats.cases;
    result.fuzz_5xx += stats.fiveXx;
    result.dead_letters_missing += stats.missing;
    log(
      `  ${channel.name.padEnd(36)} ${String(stats.cases).padStart(4)} cases, ${stats.rejected} rejected, ${stats.fiveXx} 5xx, ${stats.missing} dead letters missing`,
    );
  }
  await Promise.all([webhook.close(), report.close(), check.close()]);
  return result;
}
