// Each rule of the offline infra check, proven on small Terraform trees written to temp folders.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are HCL, where ${...} is interpolation.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatHcl, parseHcl } from '../../scripts/lib/infra-hcl.js';
import {
  checkInfra,
  entryPointFor,
  formatProblems,
  type InfraProblem,
  type InfraReport,
} from '../../scripts/lib/infra-lint.js';

// The HCL tools are Go compiled to WASM: the first call instantiates them, which is slow on a busy machine.
const SLOW = { timeout: 60_000 };
beforeAll(async () => {
  await parseHcl('warm-up.tf', '');
  await formatHcl('');
}, 120_000);

const scratch = mkdtempSync(join(tmpdir(), 'clearance-infra-lint-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Tree {
  /** Terraform files by path under infra/; formatted before writing unless `raw`. */
  tf: Record<string, string>;
  /** Function folders under functions/, with the source of their index.ts (null: empty folder). */
  functions?: Record<string, string | null>;
  raw?: boolean;
  indexes?: string;
}

let treeCount = 0;
async function check(tree: Tree): Promise<InfraReport> {
  const root = join(scratch, `t${++treeCount}`);
  for (const [path, content] of Object.entries(tree.tf)) {
    const file = join(root, 'infra', path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, tree.raw ? content : await formatHcl(content));
  }
  mkdirSync(join(root, 'functions'), { recursive: true });
  for (const [folder, source] of Object.entries(tree.functions ?? {})) {
    mkdirSync(join(root, 'functions', folder));
    if (source !== null) writeFileSync(join(root, 'functions', folder, 'index.ts'), source);
  }
  let firestoreIndexesFile: string | undefined;
  if (tree.indexes !== undefined) {
    firestoreIndexesFile = join(root, 'firestore.indexes.json');
    writeFileSync(firestoreIndexesFile, tree.indexes);
  }
  return checkInfra({
    root,
    infraDir: join(root, 'infra'),
    functionsDir: join(root, 'functions'),
    firestoreIndexesFile,
  });
}

const rules = (r: InfraReport): string[] => r.problems.map((p) => p.rule);
const only = (r: InfraReport, rule: string): InfraProblem[] =>
  r.problems.filter((p) => p.rule === rule);

/** A clean module: one Pub/Sub and one HTTP function, each with its own service account. */
const MODULE = `
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
  }
}

variable "project" {
  type = string
}

variable "region" {
  type    = string
  default = "us-central1"
}

variable "tags" {
  type = map(object({ a = optional(string) }))
  default = {}
}

locals {
  pubsub_fns = {
    "on-thing" = { entry_point = "onThing", topic = "things" }
  }
  http_fns = {
    "get-thing" = { entry_point = "getThing" }
  }
  fns    = merge(local.pubsub_fns, local.http_fns)
  labels = { for k, v in var.tags : k => v.a if v.a != null }
  note   = <<-EOT
    workspace \${terraform.workspace} in \${path.module}, literal $\${var.nope}
    %{ for k, v in local.labels }\${k}=\${v} %{ endfor }
  EOT
}

data "google_project" "this" {
  project_id = var.project
}

resource "google_pubsub_topic" "things" {
  project = var.project
  name    = "things-\${data.google_project.this.number}"
  labels  = local.labels
}

resource "google_service_account" "fn" {
  for_each   = local.fns
  project    = var.project
  account_id = each.key
}

resource "terraform_data" "n" {
  count = 2
  input = "\${count.index}-\${local.note}"
}

resource "google_cloudfunctions2_function" "pubsub" {
  for_each = local.pubsub_fns
  project  = var.project
  location = var.region
  name     = each.key

  build_config {
    runtime     = "nodejs22"
    entry_point = each.value.entry_point
  }

  service_config {
    service_account_email = google_service_account.fn[each.key].email
  }

  event_trigger {
    event_type   = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic = google_pubsub_topic.things.id
    retry_policy = "RETRY_POLICY_RETRY"
  }

  depends_on = [terraform_data.n]
}

resource "google_cloudfunctions2_function" "http" {
  for_each = local.http_fns
  project  = var.project
  location = var.region
  name     = each.key

  build_config {
    runtime     = "nodejs22"
    entry_point = each.value.entry_point
  }

  service_config {
    service_account_email = google_service_account.fn[each.key].email
    dynamic "secret_environment_variables" {
      for_each = { TOKEN = "t" }
      content {
        key    = secret_environment_variables.key
        secret = secret_environment_variables.value
      }
    }
  }
}

output "urls" {
  value = [for k, f in google_cloudfunctions2_function.http : f.url]
}

output "splat" {
  value = terraform_data.n[*].id
}
`;

const FUNCTIONS = {
  'on-thing': "functions.cloudEvent('onThing', handler);\n",
  'get-thing': "functions.http('getThing', handler);\n",
};

describe('checkInfra on a clean tree', SLOW, () => {
  it('reports nothing and lists the functions it checked', async () => {
    const report = await check({ tf: { 'main.tf': MODULE }, functions: FUNCTIONS });
    expect(formatProblems(report.problems)).toBe('');
    expect(report.functions).toEqual(['getThing', 'onThing']);
    expect(report.files).toEqual(['infra/main.tf']);
  });
});

describe('references', SLOW, () => {
  it('fails on an undeclared variable, naming the file and the variable', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE.replace('name     = each.key\n', 'name = var.prefix\n') },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['undeclared-variable']);
    expect(report.problems[0].file).toBe('infra/main.tf');
    expect(report.problems[0].message).toMatch(/var\.prefix is used but no variable "prefix"/);
  });

  it('fails on an undeclared local', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE.replace('labels  = local.labels', 'labels  = local.label') },
    });
    expect(rules(report)).toEqual(['undeclared-local']);
    expect(report.problems[0].message).toMatch(/local\.label is used but no local "label"/);
  });

  it('fails on a reference to a resource, data source or module that is not declared', async () => {
    const report = await check({
      tf: {
        'main.tf': MODULE.replace(
          'pubsub_topic = google_pubsub_topic.things.id',
          'pubsub_topic = google_pubsub_topic.other.id',
        ).replace(
          'data.google_project.this.number',
          'data.google_project.that.number}-${module.net.id',
        ),
      },
    });
    const messages = only(report, 'undeclared-reference').map((p) => p.message);
    expect(messages).toHaveLength(3);
    expect(messages.join('\n')).toMatch(/google_pubsub_topic\.other is used but no resource/);
    expect(messages.join('\n')).toMatch(/data\.google_project\.that is used but no data/);
    expect(messages.join('\n')).toMatch(/module\.net is used but no module "net"/);
  });

  it('fails on an unused variable', async () => {
    const report = await check({
      tf: { 'main.tf': `${MODULE}\nvariable "forgotten" {\n  type = string\n}\n` },
    });
    expect(rules(report)).toEqual(['unused-variable']);
    expect(report.problems[0].message).toBe('variable "forgotten" is declared but never used');
  });

  it("does not count a variable's own validation as a use", async () => {
    const report = await check({
      tf: {
        'main.tf': `${MODULE}
variable "mode" {
  type = string
  validation {
    condition     = contains(["a", "b"], var.mode)
    error_message = "mode is a or b."
  }
}
`,
      },
    });
    expect(report.problems).toEqual([
      {
        rule: 'unused-variable',
        file: 'infra/main.tf',
        message: 'variable "mode" is declared but never used',
      },
    ]);
  });

  it('fails when a tfvars file sets a variable its root module does not declare', async () => {
    const report = await check({
      tf: {
        'root/main.tf':
          'variable "project" {\n  type = string\n}\noutput "p" {\n  value = var.project\n}\n',
        'root/terraform.tfvars.example': 'project = "p"\nregoin  = "us-central1"\n',
      },
    });
    expect(report.problems).toEqual([
      {
        rule: 'undeclared-variable',
        file: 'infra/root/terraform.tfvars.example',
        message: 'sets "regoin" but no variable "regoin" is declared in infra/root',
      },
    ]);
    expect(report.files).toContain('infra/root/terraform.tfvars.example');
  });

  it('resolves references across the files of one module, not across modules', async () => {
    const report = await check({
      tf: {
        'mod/vars.tf': 'variable "x" {\n  type = string\n}\n',
        'mod/main.tf': 'output "x" {\n  value = var.x\n}\n',
        'other/main.tf': 'output "y" {\n  value = var.x\n}\n',
      },
    });
    expect(rules(report)).toEqual(['undeclared-variable']);
    expect(report.problems[0].file).toBe('infra/other/main.tf');
  });
});

describe('module calls', SLOW, () => {
  const child = {
    'modules/c/main.tf':
      'variable "need" {\n  type = string\n}\nvariable "opt" {\n  type    = string\n  default = "x"\n}\noutput "out" {\n  value = "${var.need}${var.opt}"\n}\n',
  };

  it('accepts a call that sets required inputs and reads declared outputs', async () => {
    const report = await check({
      tf: {
        ...child,
        'root/main.tf':
          'module "c" {\n  source = "../modules/c"\n  need   = "y"\n}\noutput "o" {\n  value = module.c.out\n}\n',
      },
    });
    expect(report.problems).toEqual([]);
  });

  it('fails on unknown arguments, missing required variables and unknown outputs', async () => {
    const report = await check({
      tf: {
        ...child,
        'root/main.tf':
          'module "c" {\n  source = "../modules/c"\n  typo   = "y"\n}\noutput "o" {\n  value = module.c.nope\n}\n',
      },
    });
    const messages = only(report, 'module-interface').map((p) => p.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/passes "typo" but .* declares no variable "typo"/),
        expect.stringMatching(/does not set required variable "need"/),
        expect.stringMatching(/module\.c\.nope is used but module "c" .* has no output "nope"/),
      ]),
    );
    expect(messages).toHaveLength(3);
  });

  it('fails when a local module source has no Terraform files', async () => {
    const report = await check({
      tf: { 'root/main.tf': 'module "c" {\n  source = "../missing"\n}\n' },
    });
    expect(only(report, 'module-interface')[0].message).toMatch(
      /source "\.\.\/missing" but no Terraform files were found there/,
    );
  });
});

describe('syntax and formatting', SLOW, () => {
  it('fails on a file that does not parse, and still checks the others', async () => {
    const report = await check({
      tf: {
        'a.tf': 'resource "google_x" "y" {\n',
        'b.tf': 'output "o" {\n  value = var.nope\n}\n',
      },
      raw: true,
    });
    expect(rules(report).sort()).toEqual(['parse', 'undeclared-variable']);
    expect(only(report, 'parse')[0]).toMatchObject({ file: 'infra/a.tf' });
    expect(only(report, 'parse')[0].message).toMatch(
      /does not parse: .*Unclosed configuration block/,
    );
  });

  it('fails on a file terraform fmt would change, pointing at the first changed line', async () => {
    const report = await check({
      tf: {
        'main.tf':
          'variable "x" {\n  type = string\n  default  =  "a"\n}\noutput "o" {\n  value = var.x\n}\n',
      },
      raw: true,
    });
    expect(rules(report)).toEqual(['format']);
    expect(report.problems[0].message).toBe(
      'is not formatted (first difference on line 2); run `terraform fmt`',
    );
  });

  it('fails when there is no Terraform at all', async () => {
    const report = await check({ tf: {} });
    expect(rules(report)).toEqual(['parse']);
    expect(report.problems[0].message).toBe('no .tf files found');
  });
});

describe('functions', SLOW, () => {
  it('fails on a function folder with no Cloud Function resource', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE },
      functions: { ...FUNCTIONS, 'do-stuff': "functions.http('doStuff', h);\n" },
    });
    expect(rules(report)).toEqual(['function-missing']);
    expect(report.problems[0]).toEqual({
      rule: 'function-missing',
      file: 'functions/do-stuff',
      message:
        'function doStuff has no google_cloudfunctions2_function resource with build_config.entry_point = "doStuff"',
    });
  });

  it('fails when the trigger does not match what the source registers', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE },
      functions: {
        'on-thing': "functions.http('onThing', handler);\n",
        'get-thing': "functions.cloudEvent<MessagePublishedData>('getThing', handler);\n",
      },
    });
    const messages = only(report, 'function-trigger').map((p) => p.message);
    expect(messages).toHaveLength(2);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /\["on-thing"\] \(onThing, .*\): is an HTTP function but has an event_trigger block/,
        ),
        expect.stringMatching(
          /\["get-thing"\] \(getThing, .*\): is a Pub\/Sub function but has no event_trigger block/,
        ),
      ]),
    );
  });

  it('fails when a folder registers an entry point its name does not give', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE },
      functions: { ...FUNCTIONS, 'get-thing': "functions.http('fetchThing', handler);\n" },
    });
    expect(report.problems).toEqual([
      {
        rule: 'function-entry-point',
        file: 'functions/get-thing',
        message:
          'registers fetchThing, but a folder named get-thing is deployed with entry point getThing; rename one to match',
      },
      {
        rule: 'function-missing',
        file: 'functions/get-thing',
        message:
          'function fetchThing has no google_cloudfunctions2_function resource with build_config.entry_point = "fetchThing"',
      },
    ]);
  });

  it('checks every function a folder registers, and skips _shared and hidden folders', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE },
      functions: {
        ...FUNCTIONS,
        'on-thing':
          "functions.cloudEvent('onThing', handler);\nfunctions.http('thingAdmin', admin);\n",
        _shared: "functions.http('notAFunction', h);\n",
        '.cache': null,
      },
    });
    expect(report.functions).toEqual(['getThing', 'onThing', 'thingAdmin']);
    expect(rules(report)).toEqual(['function-missing']);
    expect(report.problems[0].message).toMatch(/function thingAdmin has no/);
  });

  it('falls back to the decided trigger table when the source does not say', async () => {
    const tf = MODULE.replaceAll('getThing', 'checkImage').replaceAll('onThing', 'reevaluate');
    const clean = await check({
      tf: { 'main.tf': tf },
      functions: { 'check-image': null, reevaluate: null },
    });
    expect(clean.problems).toEqual([]);
    const swapped = await check({
      tf: {
        'main.tf': MODULE.replaceAll('getThing', 'reevaluate').replaceAll('onThing', 'checkImage'),
      },
      functions: { 'check-image': null, reevaluate: null },
    });
    expect(rules(swapped)).toEqual(['function-trigger', 'function-trigger']);
  });

  it('fails on a Pub/Sub trigger that does not retry', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE.replace('    retry_policy = "RETRY_POLICY_RETRY"\n', '') },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['function-trigger']);
    expect(report.problems[0].message).toMatch(
      /retry_policy must be "RETRY_POLICY_RETRY" .*found nothing resolvable/,
    );
  });

  it('fails on a dynamic event_trigger it cannot check', async () => {
    const report = await check({
      tf: {
        'main.tf': MODULE.replace(
          '  event_trigger {\n    event_type   = "google.cloud.pubsub.topic.v1.messagePublished"\n    pubsub_topic = google_pubsub_topic.things.id\n    retry_policy = "RETRY_POLICY_RETRY"\n  }',
          '  dynamic "event_trigger" {\n    for_each = [1]\n    content {\n      pubsub_topic = google_pubsub_topic.things.id\n    }\n  }',
        ),
      },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['function-trigger']);
    expect(report.problems[0].message).toMatch(/event_trigger is a dynamic block/);
  });

  it('fails when two functions share a service account', async () => {
    const report = await check({
      tf: {
        'main.tf': MODULE.replace(
          `  service_config {
    service_account_email = google_service_account.fn[each.key].email
    dynamic`,
          `  service_config {
    service_account_email = google_service_account.fn["on-thing"].email
    dynamic`,
        ),
      },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['function-service-account', 'function-service-account']);
    expect(report.problems[0].message).toMatch(
      /service account google_service_account\.fn\["on-thing"\] is shared by getThing, onThing; each function needs its own/,
    );
  });

  it('fails when a function has no service account, or one that is not declared', async () => {
    const noAccount = await check({
      tf: {
        'main.tf': MODULE.replace(
          '    service_account_email = google_service_account.fn[each.key].email\n  }\n\n  event_trigger',
          '  }\n\n  event_trigger',
        ),
      },
      functions: FUNCTIONS,
    });
    expect(only(noAccount, 'function-service-account')[0].message).toMatch(
      /\(onThing, .*\): has no service_config\.service_account_email/,
    );
    const undeclared = await check({
      tf: {
        'main.tf': MODULE.replaceAll('google_service_account.fn', 'google_service_account.gone'),
      },
      functions: FUNCTIONS,
    });
    expect(only(undeclared, 'function-service-account').map((p) => p.message)).toEqual([
      expect.stringMatching(/uses google_service_account\.gone, which is not declared/),
      expect.stringMatching(/uses google_service_account\.gone, which is not declared/),
    ]);
    // The reference check reports it too.
    expect(only(undeclared, 'undeclared-reference')).toHaveLength(1);
  });

  it('fails when a service account index names no instance of the account resource', async () => {
    const report = await check({
      tf: {
        'main.tf': MODULE.replace(
          '  for_each   = local.fns\n',
          '  for_each   = local.pubsub_fns\n',
        ),
      },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['function-service-account']);
    expect(report.problems[0].message).toMatch(
      /google_service_account\.fn\["get-thing"\], but that resource has no instance "get-thing"/,
    );
  });

  it('fails on a runtime other than nodejs22', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE.replace('runtime     = "nodejs22"', 'runtime     = "nodejs20"') },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['function-runtime']);
    expect(report.problems[0].message).toMatch(/runtime must be "nodejs22", found "nodejs20"/);
  });

  it('fails on a for_each it cannot resolve statically', async () => {
    const report = await check({
      tf: {
        'main.tf': MODULE.replace(
          '  for_each = local.http_fns\n',
          '  for_each = { for k, v in local.http_fns : k => v }\n',
        ),
      },
      functions: FUNCTIONS,
    });
    expect(rules(report)).toEqual(['function-unresolvable', 'function-missing']);
    expect(report.problems[0].message).toMatch(
      /google_cloudfunctions2_function\.http: for_each\/count cannot be resolved statically/,
    );
  });

  it('accepts a literal entry point on a single function', async () => {
    const report = await check({
      tf: {
        'main.tf': `
resource "google_service_account" "one" {
  account_id = "one"
}
resource "google_cloudfunctions2_function" "one" {
  name = "one"
  build_config {
    runtime     = "nodejs22"
    entry_point = "watchBaseImages"
  }
  service_config {
    service_account_email = google_service_account.one.email
  }
}
`,
      },
      functions: { 'watch-base-images': null },
    });
    expect(report.problems).toEqual([]);
  });
});

describe('firestore.indexes.json', SLOW, () => {
  it('accepts composite indexes and field overrides the module can deploy', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE },
      indexes: JSON.stringify({
        indexes: [
          {
            collectionGroup: 'images',
            queryScope: 'COLLECTION',
            fields: [
              { fieldPath: 'base.digest', order: 'ASCENDING' },
              { fieldPath: 'tags', arrayConfig: 'CONTAINS' },
            ],
          },
        ],
        fieldOverrides: [
          { collectionGroup: 'alertDedup', fieldPath: 'expireAt', ttl: true, indexes: [] },
        ],
      }),
    });
    expect(report.problems).toEqual([]);
  });

  it('fails on entries the module cannot turn into resources', async () => {
    const report = await check({
      tf: { 'main.tf': MODULE },
      indexes: JSON.stringify({
        indexes: [
          { collectionGroup: 'images', fields: [{ fieldPath: 'embedding', vectorConfig: {} }] },
        ],
      }),
    });
    expect(report.problems).toEqual([
      {
        rule: 'firestore-indexes',
        file: 'firestore.indexes.json',
        message:
          'indexes.0.fields.0: each field needs exactly one of order or arrayConfig (the Terraform module deploys this file)',
      },
    ]);
  });
});

describe('entryPointFor', SLOW, () => {
  it('maps kebab-case folders to camelCase entry points', () => {
    expect(entryPointFor('on-registry-push')).toBe('onRegistryPush');
    expect(entryPointFor('reevaluate')).toBe('reevaluate');
    expect(entryPointFor('watch-base-images')).toBe('watchBaseImages');
  });
});

/** Two HTTP functions, each with its own audience (its own URL) and its own callers. */
const AUDIENCE_MODULE = `
variable "project" {
  type = string
}

variable "deployers" {
  type = list(string)
}

variable "uploaders" {
  type = list(string)
}

locals {
  http_functions = {
    "check-thing"  = { entry_point = "checkThing" }
    "upload-thing" = { entry_point = "uploadThing" }
  }
  function_urls_static = { for key, _ in local.http_functions : key => "https://r-\${var.project}.cloudfunctions.net/\${key}" }
  common_env = {
    PROJECT = var.project
  }
  http_auth_env = {
    "check-thing" = {
      CLEARANCE_CHECK_AUDIENCES       = local.function_urls_static["check-thing"]
      CLEARANCE_CHECK_ALLOWED_CALLERS = join(",", var.deployers)
    }
    "upload-thing" = {
      CLEARANCE_REPORT_AUDIENCES       = local.function_urls_static["upload-thing"]
      CLEARANCE_REPORT_ALLOWED_CALLERS = join(",", var.uploaders)
    }
  }
}

resource "google_service_account" "fn" {
  for_each   = local.http_functions
  project    = var.project
  account_id = each.key
}

resource "google_cloudfunctions2_function" "http" {
  for_each = local.http_functions
  project  = var.project
  name     = each.key

  build_config {
    runtime     = "nodejs22"
    entry_point = each.value.entry_point
  }

  service_config {
    service_account_email = google_service_account.fn[each.key].email
    environment_variables = merge(local.common_env, local.http_auth_env[each.key])
  }
}
`;
const AUDIENCE_FUNCTIONS = {
  'check-thing': "functions.http('checkThing', handler);\n",
  'upload-thing': "functions.http('uploadThing', handler);\n",
};

describe('per-function audiences and callers', SLOW, () => {
  const audienceProblems = async (tf: string) =>
    only(
      await check({ tf: { 'main.tf': tf }, functions: AUDIENCE_FUNCTIONS }),
      'function-audience',
    ).map((p) => p.message);

  it('accepts each HTTP function with its own URL as audience and its own callers', async () => {
    const report = await check({
      tf: { 'main.tf': AUDIENCE_MODULE },
      functions: AUDIENCE_FUNCTIONS,
    });
    expect(formatProblems(report.problems)).toBe('');
  });

  it('fails on audience or caller lists every function shares (common_env)', async () => {
    const shared = AUDIENCE_MODULE.replace(
      'PROJECT = var.project',
      'PROJECT = var.project\n    CLEARANCE_CHECK_AUDIENCES = join(",", values(local.function_urls_static))',
    );
    expect(await audienceProblems(shared)).toEqual([
      expect.stringMatching(
        /local.common_env sets CLEARANCE_CHECK_AUDIENCES, which every function would share/,
      ),
    ]);
  });

  it('fails when a function accepts tokens minted for another, or names no URL of its own', async () => {
    const crossed = AUDIENCE_MODULE.replace(
      'CLEARANCE_REPORT_AUDIENCES       = local.function_urls_static["upload-thing"]',
      'CLEARANCE_REPORT_AUDIENCES       = join(",", [local.function_urls_static["upload-thing"], local.function_urls_static["check-thing"]])',
    );
    expect(await audienceProblems(crossed)).toEqual([
      'CLEARANCE_REPORT_AUDIENCES of "upload-thing" accepts tokens minted for "check-thing"',
    ]);
    const foreign = AUDIENCE_MODULE.replace(
      'CLEARANCE_REPORT_AUDIENCES       = local.function_urls_static["upload-thing"]',
      'CLEARANCE_REPORT_AUDIENCES       = local.function_urls_static["check-thing"]',
    );
    expect(await audienceProblems(foreign)).toEqual([
      'CLEARANCE_REPORT_AUDIENCES of "upload-thing" does not name its own URL (local.function_urls_static["upload-thing"])',
      'CLEARANCE_REPORT_AUDIENCES of "upload-thing" accepts tokens minted for "check-thing"',
    ]);
  });

  it('fails when two functions share one caller list', async () => {
    const twins = AUDIENCE_MODULE.replace(
      'CLEARANCE_REPORT_ALLOWED_CALLERS = join(",", var.uploaders)',
      'CLEARANCE_REPORT_ALLOWED_CALLERS = join(",", var.deployers)',
    );
    expect(
      await audienceProblems(
        twins.replace('variable "uploaders" {\n  type = list(string)\n}\n', ''),
      ),
    ).toEqual([
      '"upload-thing" and "check-thing" share one caller list (CLEARANCE_REPORT_ALLOWED_CALLERS): give each its own',
    ]);
  });

  it('fails when a function has no entry, or the resource does not merge the entries', async () => {
    const missing = AUDIENCE_MODULE.replace(
      /"upload-thing" = \{\n\s+CLEARANCE_REPORT_AUDIENCES[^}]+\}/,
      '',
    ).replace('variable "uploaders" {\n  type = list(string)\n}\n', '');
    expect(await audienceProblems(missing)).toEqual([
      'local.http_auth_env has no entry for the HTTP function "upload-thing"',
    ]);
    const unmerged = AUDIENCE_MODULE.replace(
      'merge(local.common_env, local.http_auth_env[each.key])',
      'local.common_env',
    );
    expect(await audienceProblems(unmerged)).toEqual([
      expect.stringMatching(/does not merge local.http_auth_env\[each.key\]/),
    ]);
  });
});
