// Benchmark of checkImage: `npm run bench:check`; throughput and latency on cache hits and misses next to a hello-world, and cold start next to the one-read floor. The last line is one JSON object.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { startEmulators } from '../scripts/lib/emulators.js';
import {
  freePort,
  reapOrphans,
  type Service,
  sleep,
  startService,
} from '../scripts/lib/process.js';

const GROUP = `bench-check-${process.pid}`;
const TOKEN = 'bench-check-bearer-token-0123456789abcdef';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
/** Distinct images for the miss run: more than misses/s × TTL, so no image is asked twice inside the TTL. */
const MISS_IMAGES = Number(process.env.BENCH_MISS_IMAGES ?? 20_000);
const TARGETS = { hitRatio: 0.9, hitCpuRatio: 1.1, hitP99Ms: 10, coldStartRatio: 1.25 };
/** Interleaved hello-world / cache-hit rounds; the median is reported with each round's figure. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/**
 * A directory: the hello-world and check servers run under `node --cpu-prof` and only the hit rounds
 * are measured (no cold starts, no misses), so the profiles show the two request paths side by side.
 */
const PROFILE = process.env.BENCH_CHECK_PROFILE_DIR;
/** Only the interleaved hello-world / cache-hit rounds (implied by a profile): a quick comparison. */
const HIT_ONLY = Boolean(PROFILE) || process.env.BENCH_CHECK_HIT_ONLY === '1';
/** functions-framework's server on 127.0.0.1, the same launcher for every function measured. */
const SERVE = resolve('dist/scripts/serve-function.js');

const REGISTRY = 'us-docker.pkg.dev';
const REPOSITORY = 'bench/apps/service';
const digestOf = (n: number) => `sha256:${createHash('sha256').update(`image-${n}`).digest('hex')}`;
const refOf = (n: number) => `${REGISTRY}/${REPOSITORY}@${digestOf(n)}`;
const idOf = (n: number) => refOf(n).replaceAll('/', '~');
const HOT = 0;

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function imageRecord(n: number, now: string) {
  const verdict = (environment: string) => ({
    environment,
    decision: 'allow',
    mode: 'enforce',
    reasons: [],
    policyHash: `sha256:${'c'.repeat(64)}`,
    evaluatedAt: now,
  });
  return {
    id: idOf(n),
    registry: REGISTRY,
    repository: REPOSITORY,
    digest: digestOf(n),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    tags: [],
    platforms: [],
    parents: [],
    pushedAt: now,
    created: now,
    user: '65532',
    labels: {},
    owner: 'team-bench',
    base: null,
    provenance: null,
    scan: {
      status: 'finished',
      scanner: 'bench',
      completedAt: now,
      counts: null,
      failureReason: null,
    },
    scanRefs: {},
    verdicts: { prod: verdict('prod') },
    attestations: [
      {
        format: 'binauthz',
        keyId: 'bench-key',
        policyHash: `sha256:${'c'.repeat(64)}`,
        occurrence: `projects/bench/occurrences/${n}`,
        envelope: null,
        createdAt: now,
        revokedAt: null,
        revokedReason: null,
      },
    ],
    state: 'attested',
    deletedAt: null,
    version: 1,
    updatedAt: now,
  };
}

/** Round i runs hello-world first when even and the cache hit first when odd, so neither always runs on a warmer machine. */
async function interleaved(
  i: number,
  runHello: () => Promise<Loaded>,
  runHit: () => Promise<Loaded>,
): Promise<[Loaded, Loaded]> {
  if (i % 2 === 0) {
    const h = await runHello();
    return [h, await runHit()];
  }
  const c = await runHit();
  return [await runHello(), c];
}

async function seed(env: Record<string, string>): Promise<void> {
  const { Firestore } = await import('@google-cloud/firestore');
  const db = new Firestore({ projectId: env.GOOGLE_CLOUD_PROJECT });
  const now = '2026-11-29T10:00:00.000Z';
  await db
    .collection('policies')
    .doc('admission')
    .set({
      unknownImage: 'deny',
      requireAttestation: true,
      environments: { prod: { mode: 'enforce', breakglass: false } },
      policyHash: `sha256:${'c'.repeat(64)}`,
    });
  for (let start = 0; start <= MISS_IMAGES; start += 500) {
    const batch = db.batch();
    for (let n = start; n < Math.min(start + 500, MISS_IMAGES + 1); n++) {
      batch.set(db.collection('images').doc(idOf(n)), imageRecord(n, now));
    }
    await batch.commit();
  }
  await db.terminate();
}

interface Fn {
  service: Service;
  url: string;
}

async function spawnFunction(
  name: string,
  target: string,
  source: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<Fn & { port: number; startedAt: bigint }> {
  const port = await freePort();
  const startedAt = process.hrtime.bigint();
  const service = startService({
    name,
    group: GROUP,
    command: process.execPath,
    args: [
      ...nodeArgs,
      SERVE,
      `--target=${target}`,
      `--source=${resolve(source)}`,
      `--port=${port}`,
    ],
    env: { ...env, NODE_ENV: 'production', CLEARANCE_LOG_LEVEL: 'WARNING' },
  });
  return { service, url: `http://127.0.0.1:${port}`, port, startedAt };
}

/** Spawns the function and polls `path` until it answers 200: process spawn to first answer, in ms. */
async function coldStart(
  name: string,
  target: string,
  source: string,
  env: Record<string, string>,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ ms: number; fn: Fn }> {
  const fn = await spawnFunction(name, target, source, env);
  let exited = false;
  void fn.service.exited.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited) throw new Error(`${name} exited before answering; see ${fn.service.logFile}`);
    try {
      const res = await fetch(`${fn.url}${path}`, { headers });
      const body = await res.text();
      if (res.status === 200) {
        return { ms: Number(process.hrtime.bigint() - fn.startedAt) / 1e6, fn };
      }
      throw new Error(`${name} answered ${res.status}: ${body.slice(0, 300)}`);
    } catch (err) {
      if (err instanceof Error && err.message.includes('answered')) throw err;
      await sleep(2);
    }
  }
}

/** User + system CPU time of a process in microseconds (Linux /proc), or NaN elsewhere. */
async function cpuMicros(pid: number): Promise<number> {
  try {
    const { readFile } = await import('node:fs/promises');
    const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
    // Fields 14 and 15 (utime, stime) in clock ticks; 100 ticks a second on Linux.
    return (Number(stat[11]) + Number(stat[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

/**
 * Load with autocannon after a short warm-up (JIT, connection pools, the cache). Also returns the
 * server's CPU time per request, which other processes on a shared machine do not distort.
 */
async function load(pid: number, opts: Parameters<typeof autocannon>[0]): Promise<Loaded> {
  await autocannon({ ...opts, duration: 1, connections: CONNECTIONS });
  const before = await cpuMicros(pid);
  const r = await autocannon({ ...opts, duration: DURATION_S, connections: CONNECTIONS });
  const used = (await cpuMicros(pid)) - before;
  return { ...r, cpuUsPerRequest: used / Math.max(1, r.requests.total) };
}

type Loaded = Result & { cpuUsPerRequest: number };

function report(label: string, r: Loaded): void {
  const rps = String(Math.round(r.requests.average)).padStart(7);
  const p50 = String(r.latency.p50).padStart(4);
  const p99 = String(r.latency.p99).padStart(4);
  const cpu = String(Math.round(r.cpuUsPerRequest)).padStart(5);
  console.log(
    `  ${label.padEnd(22)} ${rps} req/s   p50 ${p50} ms   p99 ${p99} ms   server CPU ${cpu} µs/req   errors ${r.errors}   non-2xx ${r.non2xx}`,
  );
}

async function main(): Promise<void> {
  const results: Record<string, number | boolean | string | number[]> = {};
  console.log('checkImage benchmark (loopback, Firestore emulator)');
  // Services of an earlier run that died before cleaning up.
  await reapOrphans('bench-check-');
  const emulators = await startEmulators({
    ports: 'free',
    projectId: 'demo-bench-check',
    group: GROUP,
  });
  const running: Service[] = [];
  // The seeding client in this process talks to the emulator too.
  Object.assign(process.env, emulators.env);
  try {
    const env = {
      ...emulators.env,
      CLEARANCE_CHECK_BEARER_TOKEN: TOKEN,
      CLEARANCE_CHECK_CACHE_TTL_MS: '5000',
    };
    const t0 = Date.now();
    await seed(env);
    console.log(`  seeded ${MISS_IMAGES + 1} ledger records in ${Date.now() - t0} ms`);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const checkPath = (n: number) => `/v1/check?image=${encodeURIComponent(refOf(n))}&env=prod`;

    // ── Cold starts: spawn → first answered request, alternating so both see the same machine load ──
    const check: number[] = [];
    const floor: number[] = [];
    let missSeq = MISS_IMAGES;
    for (let i = 0; i < (HIT_ONLY ? 0 : COLD_RUNS); i++) {
      const f = await coldStart(
        'floor',
        'checkFloor',
        'dist/bench/lib/check-floor.js',
        env,
        `/?id=${idOf(i + 1)}`,
      );
      floor.push(f.ms);
      await f.fn.service.stop();
      // Each cold check asks for an image it has never seen: a cache miss by construction.
      const c = await coldStart(
        'check',
        'checkImage',
        'dist/functions/check-image/index.js',
        env,
        checkPath(missSeq--),
        auth,
      );
      check.push(c.ms);
      await c.fn.service.stop();
    }
    if (!HIT_ONLY) {
      results.cold_start_ms = round(median(check), 1);
      results.floor_cold_start_ms = round(median(floor), 1);
      results.cold_start_ratio = round(median(check) / median(floor), 3);
      console.log('cold start (spawn → first answered request, median of runs)');
      console.log(
        `  checkImage (cache miss)  ${results.cold_start_ms} ms   runs ${check.map((x) => Math.round(x)).join(', ')}`,
      );
      console.log(
        `  floor (ff + 1 read)      ${results.floor_cold_start_ms} ms   runs ${floor.map((x) => Math.round(x)).join(', ')}`,
      );
    }

    // ── Throughput and latency ──
    const profiled = (name: string) =>
      PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${resolve(PROFILE, name)}`] : [];
    const hello = await spawnFunction(
      'hello',
      'checkHello',
      'dist/bench/lib/check-hello.js',
      env,
      profiled('hello'),
    );
    running.push(hello.service);
    const fn = await spawnFunction(
      'check',
      'checkImage',
      'dist/functions/check-image/index.js',
      env,
      profiled('check'),
    );
    running.push(fn.service);
    for (const s of [hello, fn]) {
      for (;;) {
        try {
          await (await fetch(`${s.url}/healthz`)).text();
          break;
        } catch {
          await sleep(20);
        }
      }
    }
    const sample = await (await fetch(`${fn.url}${checkPath(HOT)}`, { headers: auth })).json();
    if ((sample as { decision?: string }).decision !== 'allow') {
      throw new Error(`the hot image is not allowed: ${JSON.stringify(sample)}`);
    }
    // The same load for all: the same request line and headers (the hello-world ignores them).
    console.log(
      `load: ${CONNECTIONS} connections, ${DURATION_S} s each (after 1 s warm-up), GET /v1/check?image=…&env=prod with a bearer token`,
    );
    // Three rounds, hello-world and cache hit back to back, the order alternating (H C, C H, H C):
    // a burst of load from other processes on the shared cores then hits both sides alike, and the
    // median of the rounds is reported with every round's figure.
    const rounds: { hello: Loaded; hit: Loaded; ratio: number; cpuRatio: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const runHello = () =>
        load(hello.service.pid, { url: `${hello.url}${checkPath(HOT)}`, headers: auth });
      const runHit = () =>
        load(fn.service.pid, { url: `${fn.url}${checkPath(HOT)}`, headers: auth });
      const [h, c] = await interleaved(i, runHello, runHit);
      const ratio = c.requests.average / h.requests.average;
      const cpuRatio = c.cpuUsPerRequest / h.cpuUsPerRequest;
      rounds.push({ hello: h, hit: c, ratio, cpuRatio });
      console.log(
        `round ${i + 1} (${i % 2 === 0 ? 'hello first' : 'hit first'}): hit/hello throughput ${round(ratio, 3)}, CPU per request hit/hello ${round(cpuRatio, 3)}`,
      );
      report('hello-world', h);
      report('checkImage cache hit', c);
    }
    const byRatio = [...rounds].sort((a, b) => a.ratio - b.ratio);
    // The round whose throughput ratio is the median supplies the single-run figures below.
    const mid = byRatio[Math.floor(byRatio.length / 2)] as (typeof rounds)[number];
    const helloRun = mid.hello;
    const hitRun = mid.hit;
    results.hit_ratio = round(median(rounds.map((r) => r.ratio)), 3);
    results.hit_ratio_runs = rounds.map((r) => round(r.ratio, 3));
    results.hit_cpu_ratio_saturated = round(median(rounds.map((r) => r.cpuRatio)), 3);
    results.hit_cpu_ratio_saturated_runs = rounds.map((r) => round(r.cpuRatio, 3));
    console.log(
      `median of ${ROUNDS} rounds: hit/hello throughput ${results.hit_ratio} (runs ${rounds.map((r) => round(r.ratio, 3)).join(', ')}), CPU per request at saturation ${results.hit_cpu_ratio_saturated} (runs ${rounds.map((r) => round(r.cpuRatio, 3)).join(', ')})`,
    );
    // CPU per request is compared at one fixed rate for both (half the hello-world's saturated
    // throughput): saturated, the faster server packs more requests into each event-loop turn and
    // so pays less per request, which would charge the slower one for being slower. Interleaved too.
    const rate = Math.max(100, Math.round(median(rounds.map((r) => r.hello.requests.average)) / 2));
    console.log(`CPU per request at a fixed ${rate} req/s for both, ${ROUNDS} interleaved rounds`);
    const atRate: { hello: Loaded; hit: Loaded; cpuRatio: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const runHello = () =>
        load(hello.service.pid, {
          url: `${hello.url}${checkPath(HOT)}`,
          headers: auth,
          overallRate: rate,
        });
      const runHit = () =>
        load(fn.service.pid, {
          url: `${fn.url}${checkPath(HOT)}`,
          headers: auth,
          overallRate: rate,
        });
      const [h, c] = await interleaved(i, runHello, runHit);
      atRate.push({ hello: h, hit: c, cpuRatio: c.cpuUsPerRequest / h.cpuUsPerRequest });
      console.log(
        `round ${i + 1}: CPU per request hit/hello ${round(c.cpuUsPerRequest / h.cpuUsPerRequest, 3)}`,
      );
      report('hello-world @rate', h);
      report('checkImage hit @rate', c);
    }
    results.hit_cpu_ratio = round(median(atRate.map((r) => r.cpuRatio)), 3);
    results.hit_cpu_ratio_runs = atRate.map((r) => round(r.cpuRatio, 3));
    results.hello_cpu_us_per_req_runs = atRate.map((r) => Math.round(r.hello.cpuUsPerRequest));
    results.hit_cpu_us_per_req_runs = atRate.map((r) => Math.round(r.hit.cpuUsPerRequest));
    console.log(
      `median of ${ROUNDS} rounds at ${rate} req/s: CPU per request hit/hello ${results.hit_cpu_ratio} (runs ${atRate.map((r) => round(r.cpuRatio, 3)).join(', ')})`,
    );
    const midRate = [...atRate].sort((a, b) => a.cpuRatio - b.cpuRatio)[
      Math.floor(atRate.length / 2)
    ] as (typeof atRate)[number];
    results.fixed_rate_rps = rate;
    results.hello_p99_at_rate_ms = midRate.hello.latency.p99;
    results.hit_p99_at_rate_ms = midRate.hit.latency.p99;
    if (HIT_ONLY) {
      if (PROFILE)
        console.log(`CPU profiles written to ${PROFILE}/{hello,check} as the servers stop`);
      return;
    }
    let next = 1;
    const missRun = await load(fn.service.pid, {
      url: fn.url,
      headers: auth,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => {
            const n = next;
            next = next >= MISS_IMAGES - COLD_RUNS ? 1 : next + 1;
            return { ...req, path: checkPath(n) };
          },
        },
      ],
    });
    report('checkImage cache miss', missRun);
    if (missRun.requests.total + 2 * CONNECTIONS > MISS_IMAGES - COLD_RUNS) {
      console.log('  note: the miss run wrapped around its images; some "misses" were hits');
    }
    results.hello_rps = Math.round(helloRun.requests.average);
    results.hit_rps = Math.round(hitRun.requests.average);
    results.miss_rps = Math.round(missRun.requests.average);
    results.hit_p50_ms = hitRun.latency.p50;
    results.hit_p99_ms = hitRun.latency.p99;
    results.hit_p99_saturated_ms = hitRun.latency.p99;
    results.miss_p50_ms = missRun.latency.p50;
    results.miss_p99_ms = missRun.latency.p99;
    results.hello_p99_ms = helloRun.latency.p99;
    results.hello_cpu_us_per_req = Math.round(midRate.hello.cpuUsPerRequest);
    results.hit_cpu_us_per_req = Math.round(midRate.hit.cpuUsPerRequest);
    results.miss_cpu_us_per_req = Math.round(missRun.cpuUsPerRequest);
    const all = [...[...rounds, ...atRate].flatMap((r) => [r.hello, r.hit]), missRun];
    results.errors = all.reduce((n, r) => n + r.errors, 0);
    results.non2xx = all.reduce((n, r) => n + r.non2xx, 0);
    results.hit_ratio_ok = (results.hit_ratio as number) >= TARGETS.hitRatio;
    results.hit_cpu_ratio_ok = (results.hit_cpu_ratio as number) <= TARGETS.hitCpuRatio;
    results.hit_p99_ok = hitRun.latency.p99 < TARGETS.hitP99Ms;
    results.hit_p99_at_rate_ok = midRate.hit.latency.p99 < TARGETS.hitP99Ms;
    results.cold_start_ok = (results.cold_start_ratio as number) <= TARGETS.coldStartRatio;
    console.log(
      `targets: hit/hello ≥ ${TARGETS.hitRatio} → median ${results.hit_ratio} ${results.hit_ratio_ok ? 'ok' : 'MISSED'}; ` +
        `hit/hello CPU per request ≤ ${TARGETS.hitCpuRatio} → median ${results.hit_cpu_ratio} ${results.hit_cpu_ratio_ok ? 'ok' : 'MISSED'}; ` +
        `hit p99 < ${TARGETS.hitP99Ms} ms → saturated ${results.hit_p99_ms} ${results.hit_p99_ok ? 'ok' : 'MISSED'}, at a fixed rate ${results.hit_p99_at_rate_ms} ${results.hit_p99_at_rate_ok ? 'ok' : 'MISSED'}; ` +
        `cold/floor ≤ ${TARGETS.coldStartRatio} → ${results.cold_start_ratio} ${results.cold_start_ok ? 'ok' : 'MISSED'}`,
    );
  } finally {
    await Promise.all(running.map((s) => s.stop()));
    await emulators.stop();
  }
  console.log(JSON.stringify(results));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
