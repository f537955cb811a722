// The repository's own infra/ against its functions/ (read at run time), and the module's function table against the design.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInfraCheck } from '../../scripts/infra-check.js';
import { formatHcl, parseHcl } from '../../scripts/lib/infra-hcl.js';
import { checkInfra, KNOWN_TRIGGERS } from '../../scripts/lib/infra-lint.js';

// The HCL tools are Go compiled to WASM: the first call instantiates them, which is slow on a busy machine.
const SLOW = { timeout: 60_000 };
beforeAll(async () => {
  await parseHcl('warm-up.tf', '');
  await formatHcl('');
}, 120_000);

const repo = fileURLToPath(new URL('../..', import.meta.url));
const moduleDir = join(repo, 'infra/modules/clearance');
const scratch = mkdtempSync(join(tmpdir(), 'clearance-infra-check-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function capture(): {
  out: string[];
  err: string[];
  io: { out(l: string): void; err(l: string): void };
} {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

type Body = Record<string, unknown>;
/** How hcl2json writes a whole-expression attribute: `${expr}`. */
const hclExpr = (expr: string): string => `${'$'}{${expr}}`;

const kebab = (entryPoint: string): string =>
  entryPoint.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

describe('infra check on this repository', SLOW, () => {
  it('finds no problem in infra/, functions/ and firestore.indexes.json', async () => {
    const { out, err, io } = capture();
    const code = await runInfraCheck([], io, repo);
    expect(err.join('\n')).toBe('');
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/infra check: \d+ \.tf files in 2 module\(s\)/);
  });

  it('deploys every function of the design with its trigger and its own service account', async () => {
    const functionsDir = join(scratch, 'functions');
    for (const [entryPoint, kind] of Object.entries(KNOWN_TRIGGERS)) {
      mkdirSync(join(functionsDir, kebab(entryPoint)), { recursive: true });
      writeFileSync(
        join(functionsDir, kebab(entryPoint), 'index.ts'),
        kind === 'pubsub'
          ? `functions.cloudEvent('${entryPoint}', handler);\n`
          : `functions.http('${entryPoint}', handler);\n`,
      );
    }
    const report = await checkInfra({ root: repo, infraDir: join(repo, 'infra'), functionsDir });
    expect(report.problems).toEqual([]);
    expect([...report.functions].sort()).toEqual(Object.keys(KNOWN_TRIGGERS).sort());
  });

  it('fails through the CLI, exit code 1, on a copy of infra/ with an undeclared variable', async () => {
    const copy = join(scratch, 'broken');
    cpSync(join(repo, 'infra'), join(copy, 'infra'), { recursive: true });
    const scheduler = join(copy, 'infra/modules/clearance/scheduler.tf');
    writeFileSync(
      scheduler,
      readFileSync(scheduler, 'utf8').replace(
        'time_zone   = var.scheduler_time_zone',
        'time_zone   = var.scheduler_timezone',
      ),
    );
    const { out, err, io } = capture();
    const code = await runInfraCheck(['--root', copy], io, repo);
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain(
      'infra/modules/clearance/scheduler.tf: [undeclared-variable] var.scheduler_timezone is used but no variable "scheduler_timezone" is declared in infra/modules/clearance',
    );
    expect(err.at(-1)).toBe('infra check: 1 problem(s)');
  });

  it("parses the example routing (tfvars and examples/) and policy with the functions' parsers", async () => {
    const copy = join(scratch, 'old-routing');
    cpSync(join(repo, 'infra'), join(copy, 'infra'), { recursive: true });
    cpSync(join(repo, 'examples'), join(copy, 'examples'), { recursive: true });
    cpSync(join(repo, 'functions'), join(copy, 'functions'), { recursive: true });
    const tfvars = join(copy, 'infra/examples/basic/terraform.tfvars.example');
    // The schema the example used to show: channels inside rules, `webhook` instead of `secret`.
    const old = await formatHcl(
      readFileSync(tfvars, 'utf8').replace(
        /routing = \{[\s\S]*?\n\}\n/,
        `routing = {
  rules = [
    {
      repositories = ["**"]
      team = "platform"
      channels = [{ kind = "google-chat", webhook = "projects/p/secrets/s/versions/latest" }]
    },
  ]
}
`,
      ),
    );
    writeFileSync(tfvars, old);
    writeFileSync(
      join(copy, 'examples/policy.yaml'),
      'apiVersion: clearance/v1\nrules:\n  nope: 1\n',
    );
    const kms = join(copy, 'infra/modules/clearance/kms.tf');
    writeFileSync(
      kms,
      await formatHcl(
        readFileSync(kms, 'utf8').replace(
          /\n {2}lifecycle \{\n {4}prevent_destroy = true\n {2}\}\n/g,
          '\n',
        ),
      ),
    );
    const { err, io } = capture();
    expect(await runInfraCheck(['--root', copy], io, repo)).toBe(1);
    const text = err.join('\n');
    expect(text).toMatch(
      /infra\/examples\/basic\/terraform\.tfvars\.example: \[example-config\] routing: invalid routing document/,
    );
    expect(text).toMatch(/examples\/policy\.yaml: \[example-config\]/);
    expect(text).toContain(
      '[prevent-destroy] google_kms_key_ring.clearance needs lifecycle { prevent_destroy = true }',
    );
    expect(text).toContain(
      '[prevent-destroy] google_kms_crypto_key.attestor needs lifecycle { prevent_destroy = true }',
    );
  });

  it('rejects unknown command-line options with exit code 2', async () => {
    const { err, io } = capture();
    expect(await runInfraCheck(['--nope'], io, repo)).toBe(2);
    expect(err.join('\n')).toMatch(/usage: infra-check/);
  });
});

describe('the module function table', SLOW, () => {
  async function locals(): Promise<Record<string, unknown>> {
    const json = await parseHcl('locals.tf', readFileSync(join(moduleDir, 'locals.tf'), 'utf8'));
    return (json.locals as Record<string, unknown>[])[0];
  }

  it('subscribes each Pub/Sub function to the topic the design names', async () => {
    const l = await locals();
    const pubsub = l.pubsub_functions as Record<string, { entry_point: string; topic: string }>;
    const topics = Object.fromEntries(Object.values(pubsub).map((f) => [f.entry_point, f.topic]));
    expect(topics).toEqual({
      onRegistryPush: 'gcr',
      onScanComplete: 'occurrences',
      reevaluate: 'reevaluate',
      attestImage: 'verdicts',
      notifyOwners: 'alerts',
    });
    expect(l.google_topics).toEqual({
      gcr: 'gcr',
      occurrences: 'container-analysis-occurrences-v1',
    });
    expect(Object.keys(l.internal_topics as object).sort()).toEqual([
      'alerts',
      'reevaluate',
      'verdicts',
    ]);
    const http = l.http_functions as Record<string, { entry_point: string }>;
    for (const f of Object.values(http)) expect(KNOWN_TRIGGERS[f.entry_point]).toBe('http');
  });

  it('gives every function Firestore access and the narrow extras only to the functions that need them', async () => {
    const l = await locals();
    const roles = l.function_project_roles as Record<string, string[]>;
    const all = { ...(l.pubsub_functions as object), ...(l.http_functions as object) };
    expect(Object.keys(roles).sort()).toEqual(Object.keys(all).sort());
    for (const [fn, list] of Object.entries(roles)) {
      // The dashboard only reads; every other function writes the ledger.
      expect(list).toContain(
        fn === 'dashboard' ? 'roles/datastore.viewer' : 'roles/datastore.user',
      );
    }
    const holders = (role: string): string[] =>
      Object.keys(roles)
        .filter((fn) => roles[fn].includes(role))
        .sort();
    expect(holders('roles/containeranalysis.occurrences.editor')).toEqual(['attest-image']);
    expect(holders('roles/containeranalysis.occurrences.viewer')).toEqual(['on-scan-complete']);
    expect(Object.keys(l.function_secret_env as object).sort()).toEqual([
      'check-image',
      'ingest-report',
      'ingest-webhook',
    ]);
  });

  it('passes every configuration variable the functions read', async () => {
    const l = await locals();
    const env = Object.keys(l.common_env as object);
    expect(env).toEqual(
      expect.arrayContaining([
        'GOOGLE_CLOUD_PROJECT',
        'CLEARANCE_ALERTS_TOPIC',
        'CLEARANCE_REEVALUATE_TOPIC',
        'CLEARANCE_VERDICTS_TOPIC',
        'CLEARANCE_SIGNER',
        'CLEARANCE_KMS_KEY_VERSION',
        'CLEARANCE_ATTESTOR_NOTE',
        'CLEARANCE_BASE_IMAGES',
        'CLEARANCE_BASE_REGISTRIES',
        'CLEARANCE_WATCH_REPOSITORIES',
      ]),
    );
    // An empty routing document would dead-letter every alert: the variable is set only when there is one.
    expect(env).not.toContain('CLEARANCE_ROUTING');
    expect(String(l.function_env)).toContain(
      'var.routing == null ? {} : { CLEARANCE_ROUTING = jsonencode(var.routing) }',
    );
    // One secret per channel: each webhook registry's (a for-expression over var.webhook_registries),
    // the report uploaders' (when enabled) and the check's; none shared by two functions.
    const secretEnv = l.function_secret_env as Record<string, unknown>;
    expect(String(secretEnv['ingest-webhook'])).toMatch(/CLEARANCE_WEBHOOK_\$\{upper\(kind\)\}_/);
    expect(String(secretEnv['ingest-webhook'])).toContain('webhook-$' + '{kind}');
    expect(String(secretEnv['ingest-report'])).toContain('CLEARANCE_REPORT_TOKEN');
    expect(secretEnv['check-image']).toEqual({ CLEARANCE_CHECK_BEARER_TOKEN: 'check' });
    // Secrets never travel as plain environment variables, and audiences are never shared.
    for (const name of env) expect(name).not.toMatch(/TOKEN|SECRET|AUDIENCES|ALLOWED_CALLERS/);
    const auth = l.http_auth_env as Record<string, Record<string, string>>;
    expect(Object.keys(auth['check-image'] ?? {}).sort()).toEqual([
      'CLEARANCE_CHECK_ALLOWED_CALLERS',
      'CLEARANCE_CHECK_AUDIENCES',
    ]);
    expect(auth['ingest-report']?.CLEARANCE_REPORT_AUDIENCES).toContain(
      'local.function_urls_static["ingest-report"]',
    );
    expect(auth['watch-base-images']?.CLEARANCE_WATCH_ALLOWED_CALLERS).toContain(
      'google_service_account.scheduler.email',
    );
  });

  it('gives each function a handler deadline 10 s inside its own timeout', async () => {
    const l = await locals();
    expect(String(l.function_env)).toMatch(/for name, f in local\.functions : name => merge\(/);
    expect(String(l.function_env)).toContain(
      'CLEARANCE_HANDLER_DEADLINE_MS = tostring((f.timeout - 10) * 1000)',
    );
    const functionsTf = await parseHcl(
      'functions.tf',
      readFileSync(join(moduleDir, 'functions.tf'), 'utf8'),
    );
    const resources = functionsTf.resource as Record<string, Record<string, Body[]>>;
    for (const kind of ['pubsub', 'http']) {
      const config = resources.google_cloudfunctions2_function?.[kind]?.[0]
        ?.service_config as Body[];
      expect(config[0]?.environment_variables, kind).toBe(
        hclExpr(
          kind === 'http'
            ? 'merge(local.function_env[each.key], local.http_auth_env[each.key])'
            : 'local.function_env[each.key]',
        ),
      );
    }
    const all = { ...(l.pubsub_functions as object), ...(l.http_functions as object) } as Record<
      string,
      { timeout: number }
    >;
    for (const [name, f] of Object.entries(all)) expect(f.timeout, name).toBeGreaterThan(10);
  });

  it('runs checkImage on one vCPU with about 80 requests per instance, so its cache is shared', async () => {
    const l = await locals();
    const http = l.http_functions as Record<string, { cpu: string | null; concurrency: number }>;
    expect(http['check-image']).toMatchObject({ cpu: '1', concurrency: 80 });
    const functionsTf = await parseHcl(
      'functions.tf',
      readFileSync(join(moduleDir, 'functions.tf'), 'utf8'),
    );
    const resources = functionsTf.resource as Record<string, Record<string, Body[]>>;
    const blocks = resources.google_cloudfunctions2_function?.http?.[0]?.service_config;
    const config = (blocks as Body[] | undefined)?.[0];
    expect(config).toMatchObject({
      available_cpu: hclExpr('each.value.cpu'),
      max_instance_request_concurrency: hclExpr('each.value.concurrency'),
    });
  });

  it('matches the least-privilege table in infra/README.md', async () => {
    const l = await locals();
    const roles = l.function_project_roles as Record<string, string[]>;
    const publishes = l.function_publishes as Record<string, string[]>;
    const readme = readFileSync(join(repo, 'infra/README.md'), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of readme.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells.length >= 6 && cells[1] in KNOWN_TRIGGERS) rows.set(cells[1], cells.slice(2, 5));
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(KNOWN_TRIGGERS).sort());
    for (const [entryPoint, [, projectRoles, single]] of rows) {
      const fn = kebab(entryPoint);
      expect(projectRoles.match(/roles\/[\w.]+/g)?.sort(), entryPoint).toEqual(
        [...roles[fn]].sort(),
      );
      const topics = /publisher on ([^;]+)/
        .exec(single)?.[1]
        .match(/`(\w+)`/g)
        ?.map((t) => t.slice(1, -1));
      expect(topics?.sort() ?? [], entryPoint).toEqual([...publishes[fn]].sort());
    }
  });
});
