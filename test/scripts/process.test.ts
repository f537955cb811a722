// The local stack's process helpers, run as real processes (the stack's own test starts the stack).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { isAlive } from '../../scripts/lib/process.js';
import { eventually } from '../support/function-server.js';

const helpers = pathToFileURL(resolve('dist/scripts/lib/process.js')).href;

it('onParentExit: a process whose starter was killed outright (as `sh` under npm) stops itself', async () => {
  const child = `
    import { onParentExit } from ${JSON.stringify(helpers)};
    onParentExit(() => { process.stdout.write('parent gone\\n'); process.exit(0); }, 50);
    setInterval(() => {}, 1000);
    process.stdout.write('pid ' + process.pid + '\\n');`;
  // The trailing command keeps sh as the parent instead of exec'ing node, as `a && node …` does.
  const sh = spawn(
    'sh',
    ['-c', `"${process.execPath}" --input-type=module -e "$1"; :`, 'sh', child],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  sh.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  await eventually(async () => (/pid \d+/.test(out) ? true : undefined), 10_000, 'the child');
  const pid = Number(/pid (\d+)/.exec(out)?.[1]);
  try {
    expect(isAlive(pid)).toBe(true);
    // While its starter lives, it keeps running.
    await new Promise((r) => setTimeout(r, 300));
    expect(out).not.toContain('parent gone');
    sh.kill('SIGKILL');
    await eventually(async () => (isAlive(pid) ? undefined : true), 10_000, 'the child to stop');
    expect(out).toContain('parent gone');
    expect(isAlive(pid)).toBe(false);
  } finally {
    if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
});
