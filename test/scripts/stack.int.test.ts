// `npm start` as a user runs it: the compiled stack script, its printed endpoints, and a clean SIGTERM.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort, freePortRange, isAlive } from '../../scripts/lib/process.js';
import type { StackInfo } from '../../scripts/stack.js';
import { describeWithEmulators } from '../support/integration.js';

function pidsUnder(dir: string): number[] {
  const out: number[] = [];
  let groups: string[] = [];
  try {
    groups = readdirSync(dir);
  } catch {
    return out;
  }
  for (const g of groups)
    for (const f of readdirSync(join(dir, g)))
      out.push(Number(readFileSync(join(dir, g, f), 'utf8')));
  return out;
}

/** Runs a compiled script against the stack's own ports and state folder, collecting its output. */
function runScript(script: string, config: string, state: string) {
  const child = spawn(process.execPath, [resolve(script)], {
    env: {
      ...process.env,
      CLEARANCE_FIREBASE_JSON: config,
      CLEARANCE_STATE_DIR: state,
      FIRESTORE_EMULATOR_HOST: '',
      PUBSUB_EMULATOR_HOST: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, output: () => output };
}

describeWithEmulators('npm start (the local stack)', () => {
  const state = mkdtempSync(join(tmpdir(), 'clearance-stack-'));
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  it('starts everything, every printed endpoint answers, and SIGTERM leaves no process behind', async () => {
    const base = JSON.parse(readFileSync('firebase.json', 'utf8')) as {
      emulators: Record<string, { port: number }>;
    };
    for (const k of ['firestore', 'pubsub', 'registry', 'containeranalysis', 'chat']) {
      (base.emulators[k] as { port: number }).port = await freePort();
    }
    // The function servers take consecutive ports from this one: all free, and below the ephemeral
    // range, where an outgoing connection of a parallel test could hold one (EADDRINUSE once).
    (base.emulators.functions as { port: number }).port = await freePortRange(12);
    const config = join(state, 'firebase.json');
    writeFileSync(config, JSON.stringify(base));
    const started = Date.now();
    const stack = runScript('dist/scripts/stack.js', config, state);
    const child = stack.child;
    await new Promise<void>((res, rej) => {
      const timer = setInterval(() => {
        if (stack.output().includes('local stack is up')) {
          clearInterval(timer);
          res();
        } else if (stack.output().includes('could not start') || child.exitCode !== null) {
          clearInterval(timer);
          rej(new Error(`stack failed:\n${stack.output()}`));
        }
      }, 100);
    });
    process.stdout.write(`local stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    const info = JSON.parse(readFileSync(join(state, 'stack.json'), 'utf8')) as StackInfo;
    // Starting the stack logs no error: the readiness probe no longer sends a Pub/Sub function a GET.
    const logs = readdirSync(join(state, 'logs'), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.log'))
      .map((d) => readFileSync(join(d.parentPath, d.name), 'utf8'))
      .join('\n');
    expect(logs).not.toMatch(/TypeError|Cannot use 'in' operator/);
    expect(info.endpoints.length).toBeGreaterThanOrEqual(14);
    for (const e of info.endpoints) {
      expect(stack.output()).toContain(e.url);
      const res = await fetch(`${e.url}/`, { signal: AbortSignal.timeout(5000) });
      expect(res.status, `${e.name} at ${e.url}`).toBeGreaterThan(0);
      await res.arrayBuffer();
    }
    // The newcomer's next step: the demo tells the whole story from the images it builds and pushes.
    const demo = runScript('dist/scripts/demo.js', config, state);
    const demoCode = await demo.exited;
    const demoOut = demo.output();
    expect(demoCode, demoOut).toBe(0);
    const last = demoOut.trim().split('\n').at(-1) ?? '';
    const story = JSON.parse(last) as Record<string, unknown>;
    expect(story.allowed).toBeGreaterThanOrEqual(1);
    expect(story.denied).toBeGreaterThanOrEqual(1);
    expect(story.attested).toBeGreaterThanOrEqual(1);
    expect(story.signature_verified).toBe(true);
    expect(story.rebuild_alerts).toBeGreaterThanOrEqual(1);
    const ref = new RegExp(
      `^${info.registry.replaceAll('.', '\\.')}/apps/hello@sha256:[0-9a-f]{64}$`,
    );
    expect(story.allowed_image).toMatch(ref);
    expect(story.denied_image).toMatch(ref);
    expect(story.allowed_image).not.toBe(story.denied_image);
    // The story as told: the exception with its reason, the verification command, the remediation, the alerts.
    expect(demoOut).toMatch(
      /\[vulnerabilities\.exception-applied\] CVE-2005-2541 .*owner platform-team@example\.com/,
    );
    expect(demoOut).toMatch(
      /\$ openssl dgst -sha256 -verify \S+ -signature \S+ \S+\n.*Verified OK/,
    );
    expect(demoOut).toContain('→ upgrade go 1.22.1 → 1.22.2');
    expect(demoOut).toContain('│ Image denied for prod');
    expect(demoOut).toContain('│ Rebuild needed: base image patched');
    // Each reference is judged by the stack as the summary says.
    const token = readFileSync(info.tokenFile, 'utf8').trim();
    for (const [image, decision] of [
      [story.allowed_image, 'allow'],
      [story.denied_image, 'deny'],
    ] as const) {
      const res = await fetch(
        `${info.functions.checkImage}/v1/check?env=prod&image=${encodeURIComponent(String(image))}`,
        { headers: { authorization: `Bearer ${token}` } },
      );
      expect(((await res.json()) as { decision: string }).decision).toBe(decision);
    }
    // Its last step looks at the dashboard in Chromium and keeps a screenshot.
    expect(stack.output()).toContain(`dashboard: ${info.functions.dashboard}/`);
    expect(readFileSync(join(state, 'dashboard.png')).subarray(1, 4).toString()).toBe('PNG');
    const pids = pidsUnder(join(state, 'pids'));
    expect(pids.length).toBeGreaterThanOrEqual(11);
    child.kill('SIGTERM');
    expect(await stack.exited).toBe(0);
    const left = pids.filter(isAlive);
    expect(left, `processes left: ${left.join(', ')}`).toEqual([]);
    // Each service ran in its own process group (the emulators' Java children too): none may survive.
    const groups = new Set(
      execFileSync('ps', ['-e', '-o', 'pgid='])
        .toString()
        .split('\n')
        .map((l) => Number(l.trim())),
    );
    expect(pids.filter((p) => groups.has(p))).toEqual([]);
    for (const e of info.endpoints) {
      await expect(fetch(`${e.url}/`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    }
  }, 480_000);
});
