import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run as policy } from '../../cli/commands/policy.js';
import { run as reevaluate } from '../../cli/commands/reevaluate.js';
import type { Io } from '../../cli/lib/command.js';

/** Dispatches as cli/clearance.ts does: the command word picks the module, the rest is its arguments. */
const run = (args: string[], io: Io) =>
  args[0] === 'reevaluate' ? reevaluate(args.slice(1), io) : policy(args.slice(1), io);

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const value: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env,
    now: () => new Date('2026-11-29T10:00:00Z'),
    errIsTTY: false,
    outIsTTY: false,
  };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

describe('clearance policy / reevaluate: arguments and validation (no Google calls)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clearance-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a YAML policy with every problem, file:line:column first, exit 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: clearance/v1',
        'environments:',
        '  Prod: { mode: enforce }',
        'rules:',
        '  vulnerabilities:',
        '    maximumFixableSeverity: SEVERE',
        '',
      ].join('\n'),
    );
    const t = io();
    expect(await run(['policy', 'apply', file], t.io)).toBe(1);
    const lines = t.err().trim().split('\n');
    expect(lines[0]).toBe(`${file}: policy refused (2 problems)`);
    expect(lines[1]).toMatch(new RegExp(`^  ${file}:3:\\d+: environments\\.Prod: `));
    expect(lines[2]).toMatch(
      new RegExp(`^  ${file}:6:\\d+: rules\\.vulnerabilities\\.maximumFixableSeverity: `),
    );
    expect(t.out()).toBe('');
  });

  it('reads .json files as JSON and reports a syntax error with its line', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{\n  "apiVersion": "clearance/v1",\n  "environments": {,}\n}\n');
    const t = io();
    expect(await run(['policy', 'preview', file], t.io)).toBe(1);
    expect(t.err()).toMatch(new RegExp(`${file}:3:\\d+: \\(document\\): JSON syntax: `));
  });

  it('says when the file cannot be read', async () => {
    const t = io();
    expect(await run(['policy', 'apply', join(dir, 'missing.yaml')], t.io)).toBe(1);
    expect(t.err()).toContain(`cannot read ${join(dir, 'missing.yaml')}`);
  });

  it.each([
    [['policy'], 'policy needs a command'],
    [['policy', 'remove', 'x'], 'unknown policy command "remove"'],
    [['policy', 'apply'], 'policy apply takes one FILE'],
    [['policy', 'apply', 'a', 'b'], 'policy apply takes one FILE'],
    [['policy', 'apply', 'a', '--force'], "Unknown option '--force'"],
    [['policy', 'apply', 'a', '--by'], "Option '--by <value>' argument missing"],
    [['policy', 'preview', 'a', '--limit', 'ten'], '--limit must be a whole number'],
    [['reevaluate', 'status'], 'reevaluate status takes one RUN_ID'],
    [['reevaluate', 'now'], 'unexpected argument now'],
  ])('usage error for %j → exit 2', async (args, message) => {
    const t = io();
    expect(await run(args, t.io)).toBe(2);
    expect(t.err()).toContain(message);
    expect(t.err()).toContain('usage:');
  });
});
