// Child services for tests and the local stack: spawned in their own process group, logged to files, stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** Folder for logs, pid files and scratch state of local services (git-ignored). */
export const STATE_DIR = resolve(process.env.CLEARANCE_STATE_DIR ?? '.clearance');

export interface Service {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function stateDir(...parts: string[]): string {
  const dir = join(STATE_DIR, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Tries to bind the port on 127.0.0.1; true when it was free. */
function canBind(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/**
 * A free port below the kernel's ephemeral range (32768 and up on Linux): a port the kernel hands
 * out for outgoing connections can be taken between this check and the emulator's bind, which is
 * how a parallel test run once lost its Firestore emulator.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port between 20000 and 32000 on 127.0.0.1');
}

/** The first of `n` consecutive free ports, all below the kernel's ephemeral range (see freePort). */
export async function freePortRange(n: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const first = 20_000 + Math.floor(Math.random() * (12_000 - n));
    let all = true;
    for (let p = first; p < first + n && all; p++) all = await canBind(p);
    if (all) return first;
  }
  throw new Error(`no ${n} consecutive free ports between 20000 and 32000 on 127.0.0.1`);
}

/** Whether a process with this PID exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Calls `onGone` once the process that started this one has exited (this one was re-parented):
 * a SIGKILL to npm, or the end of a CI step's shell, reaches no child, and the stack with its
 * emulators would run on with no one to stop it.
 */
export function onParentExit(onGone: () => void, everyMs = 1000): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, everyMs);
  timer.unref();
}

/** Signals the whole process group (the emulators' shell wrappers start Java children). */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Whether any process of the group led by `pgid` is still there. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return isAlive(pgid);
  }
}

/** Stops a whole process group (the emulators' shell wrappers start Java children): TERM, then KILL, until none is left. */
export async function killTree(pid: number, graceMs = 3000): Promise<void> {
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(50);
  if (!groupAlive(pid)) return;
  signalGroup(pid, 'SIGKILL');
  const hard = Date.now() + 5000;
  while (groupAlive(pid) && Date.now() < hard) await sleep(25);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Kills services left behind by a run that died before cleaning up: every pid file under
 * `.clearance/pids/<group>/` names a process group we started.
 */
export async function reapStale(group: string): Promise<void> {
  const dir = stateDir('pids', group);
  const { readdirSync } = await import('node:fs');
  for (const f of readdirSync(dir)) {
    const file = join(dir, f);
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1 && isAlive(pid)) await killTree(pid, 1000);
    rmSync(file, { force: true });
  }
}

export function startService(opts: {
  name: string;
  group: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}): Service {
  const logFile = join(stateDir('logs', opts.group), `${opts.name}.log`);
  const fd = openSync(logFile, 'w');
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${opts.command})`);
  const pid = child.pid;
  const pidFile = join(stateDir('pids', opts.group), `${opts.name}-${pid}.pid`);
  writeFileSync(pidFile, String(pid));
  const exited = new Promise<number | null>((res) => {
    child.once('exit', (code) => res(code));
    child.once('error', () => res(null));
  });
  let stopping: Promise<void> | undefined;
  return {
    name: opts.name,
    pid,
    logFile,
    child,
    exited,
    stop: () => {
      stopping ??= (async () => {
        await killTree(pid);
        await Promise.race([exited, sleep(2000)]);
        rmSync(pidFile, { force: true });
      })();
      return stopping;
    },
  };
}

/** Polls `probe` until it succeeds, failing early when the process exits and after `timeoutMs`. */
async function waitUntil(
  probe: () => Promise<boolean>,
  what: { ready: string; within: string },
  service: Pick<Service, 'name' | 'logFile' | 'exited'>,
  timeoutMs: number,
): Promise<void> {
  let exitCode: number | null | undefined;
  void service.exited.then((c) => {
    exitCode = c;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(
        `${service.name} exited (code ${exitCode}) before it ${what.ready}; see ${service.logFile}:\n${tail(service.logFile)}`,
      );
    }
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(
    `${service.name} did not ${what.within} within ${timeoutMs} ms; see ${service.logFile}:\n${tail(service.logFile)}`,
  );
}

/**
 * Waits until something accepts TCP connections on 127.0.0.1:port. For function servers: an HTTP
 * probe would be handed to the function itself (a Pub/Sub function has nothing to say to a GET).
 */
export function waitForPort(
  port: number,
  service: Pick<Service, 'name' | 'logFile' | 'exited'>,
  timeoutMs = 60_000,
): Promise<void> {
  const probe = () =>
    new Promise<boolean>((res) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        res(true);
      });
      socket.once('error', () => res(false));
    });
  return waitUntil(
    probe,
    { ready: 'listened', within: `listen on port ${port}` },
    service,
    timeoutMs,
  );
}

/** Polls until the URL answers with any HTTP status, or the process exits, or time runs out. */
export function waitForHttp(
  url: string,
  service: Pick<Service, 'name' | 'logFile' | 'exited'>,
  timeoutMs = 60_000,
): Promise<void> {
  const probe = async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return true;
    } catch {
      return false;
    }
  };
  return waitUntil(probe, { ready: 'answered', within: `answer at ${url}` }, service, timeoutMs);
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** Reaps groups named `<prefix><ownerPid>` whose owning run is no longer alive. */
export async function reapOrphans(prefix: string): Promise<void> {
  const { readdirSync } = await import('node:fs');
  const root = stateDir('pids');
  for (const group of readdirSync(root)) {
    if (!group.startsWith(prefix)) continue;
    const owner = Number(group.slice(prefix.length));
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
    await reapStale(group);
    rmSync(join(root, group), { recursive: true, force: true });
  }
}
