// Offline Terraform check: every infra/**/*.tf parses and is formatted, references resolve, and every function folder is deployed.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { parseRoutingDocument } from '../../shared/alerts/routing.js';
import { parsePolicy } from '../../shared/policy/policy.js';
import {
  findTraversals,
  forEachString,
  formatHcl,
  type HclJson,
  parseHcl,
  type Traversal,
  wholeExpression,
} from './infra-hcl.js';

export const INFRA_RULES = [
  'parse',
  'format',
  'undeclared-variable',
  'undeclared-local',
  'undeclared-reference',
  'unused-variable',
  'module-interface',
  'function-missing',
  'function-trigger',
  'function-service-account',
  'function-runtime',
  'function-unresolvable',
  'function-entry-point',
  'firestore-indexes',
  'function-audience',
  'example-config',
  'prevent-destroy',
] as const;
export type InfraRule = (typeof INFRA_RULES)[number];

export const InfraProblem = z.object({
  rule: z.enum(INFRA_RULES),
  /** Path of the offending file or folder, relative to the report root. */
  file: z.string(),
  message: z.string(),
});
export type InfraProblem = z.infer<typeof InfraProblem>;

export const InfraCheckOptions = z.object({
  /** Folder holding the Terraform (every folder with .tf files below it is a module). */
  infraDir: z.string().min(1),
  /** Folder whose sub-folders are the deployable functions (may be missing: no functions yet). */
  functionsDir: z.string().min(1),
  /** firestore.indexes.json, which the module deploys: checked against the shapes the module reads. */
  firestoreIndexesFile: z.string().optional(),
  /** Paths in messages are relative to this (default: the current directory). */
  root: z.string().optional(),
  /** Folder with example routing.yaml / policy.yaml: parsed with the functions' own parsers. */
  examplesDir: z.string().optional(),
});
export type InfraCheckOptions = z.infer<typeof InfraCheckOptions>;

export interface InfraReport {
  readonly files: readonly string[];
  readonly modules: readonly string[];
  /** Entry points of the function folders that were checked. */
  readonly functions: readonly string[];
  readonly problems: readonly InfraProblem[];
}

export const TRIGGER_KINDS = ['pubsub', 'http'] as const;
export type TriggerKind = (typeof TRIGGER_KINDS)[number];

/** The decided trigger of each function: used when the function's source does not say. */
export const KNOWN_TRIGGERS: Readonly<Record<string, TriggerKind>> = {
  onRegistryPush: 'pubsub',
  onScanComplete: 'pubsub',
  ingestWebhook: 'http',
  ingestReport: 'http',
  reevaluate: 'pubsub',
  attestImage: 'pubsub',
  notifyOwners: 'pubsub',
  checkImage: 'http',
  watchBaseImages: 'http',
  dashboard: 'http',
};

export const FUNCTION_RESOURCE = 'google_cloudfunctions2_function';
export const SERVICE_ACCOUNT_RESOURCE = 'google_service_account';
export const REQUIRED_RUNTIME = 'nodejs22';
export const REQUIRED_RETRY_POLICY = 'RETRY_POLICY_RETRY';

/** functions/<kebab-name>/ is deployed with entry point <camelName>. */
export function entryPointFor(folder: string): string {
  return folder.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

interface Located<T> {
  readonly file: string;
  readonly value: T;
}

type Body = Record<string, unknown>;

interface ModuleModel {
  readonly dir: string;
  readonly variables: Map<string, Located<Body>>;
  readonly locals: Map<string, Located<unknown>>;
  /** "type.name" */
  readonly resources: Map<string, Located<Body>>;
  /** "type.name" */
  readonly data: Map<string, Located<Body>>;
  readonly modules: Map<string, Located<Body>>;
  readonly outputs: Map<string, Located<Body>>;
  /** Local names of required providers: resource types start with "<name>_". */
  readonly providers: Set<string>;
  /** Names of dynamic blocks and their iterators, valid as `<name>.key` / `<name>.value`. */
  readonly iterators: Set<string>;
  /** `inVariable`: found in a variable block (its validation), which does not count as a use. */
  readonly refs: (Located<Traversal> & { readonly inVariable: boolean })[];
}

const SPECIAL_ROOTS = new Set(['each', 'count', 'self', 'path', 'terraform']);
const BUILTIN_PROVIDERS = ['google', 'terraform'];
const MODULE_META_ARGS = new Set([
  'source',
  'version',
  'providers',
  'depends_on',
  'count',
  'for_each',
]);

/** Runs every rule over the Terraform under infraDir and the function folders under functionsDir. */
export async function checkInfra(options: InfraCheckOptions): Promise<InfraReport> {
  const opts = InfraCheckOptions.parse(options);
  const root = resolve(opts.root ?? process.cwd());
  const show = (p: string): string => relative(root, p) || '.';
  const problems: InfraProblem[] = [];
  const add = (rule: InfraRule, file: string, message: string): void => {
    if (!problems.some((p) => p.rule === rule && p.file === file && p.message === message))
      problems.push({ rule, file, message });
  };

  const infraDir = resolve(opts.infraDir);
  const files = existsSync(infraDir) ? listTfFiles(infraDir) : [];
  if (files.length === 0) add('parse', show(infraDir), 'no .tf files found');

  const byDir = new Map<string, { file: string; json: HclJson }[]>();
  const varFiles: { file: string; json: HclJson }[] = [];
  for (const file of files) {
    const content = readFileSync(file, 'utf8');
    let json: HclJson;
    try {
      json = await parseHcl(basename(file), content);
    } catch (err) {
      add('parse', show(file), `does not parse: ${(err as Error).message}`);
      continue;
    }
    const formatted = await formatHcl(content);
    if (formatted !== content) {
      add(
        'format',
        show(file),
        `is not formatted (first difference on line ${firstDifferentLine(content, formatted)}); run \`terraform fmt\``,
      );
    }
    if (isVariablesFile(file)) {
      varFiles.push({ file, json });
      continue;
    }
    const list = byDir.get(dirname(file)) ?? [];
    list.push({ file, json });
    byDir.set(dirname(file), list);
  }

  const models = new Map<string, ModuleModel>();
  for (const [dir, parsed] of byDir) models.set(dir, buildModel(dir, parsed));
  for (const model of models.values()) checkReferences(model, models, show, add);
  for (const model of models.values()) checkAudiences(model, show, add);
  // terraform.tfvars(.example) may only set variables its root module declares.
  for (const { file, json } of varFiles) {
    const model = models.get(dirname(file));
    for (const name of Object.keys(json))
      if (!model?.variables.has(name))
        add(
          'undeclared-variable',
          show(file),
          `sets "${name}" but no variable "${name}" is declared in ${show(dirname(file))}`,
        );
  }

  // A routing document in a tfvars file becomes CLEARANCE_ROUTING: it must parse as the functions parse it.
  for (const { file, json } of varFiles) {
    if (!('routing' in json) || json.routing === null) continue;
    const problem = parseProblem(() => parseRoutingDocument(json.routing));
    if (problem) add('example-config', show(file), `routing: ${problem}`);
  }
  if (opts.examplesDir !== undefined) {
    const examples: [string, (text: string) => unknown][] = [
      ['routing.yaml', (t) => parseRoutingDocument(t)],
      ['policy.yaml', (t) => parsePolicy(t)],
    ];
    for (const [name, parse] of examples) {
      const file = join(resolve(opts.examplesDir), name);
      if (!existsSync(file)) continue;
      const problem = parseProblem(() => parse(readFileSync(file, 'utf8')));
      if (problem) add('example-config', show(file), problem);
    }
  }
  for (const model of models.values()) checkPreventDestroy(model, show, add);

  const functions = checkFunctions(resolve(opts.functionsDir), models, show, add);
  if (opts.firestoreIndexesFile !== undefined)
    checkFirestoreIndexes(resolve(opts.firestoreIndexesFile), show, add);
  return {
    files: files.map(show),
    modules: [...models.keys()].map(show),
    functions,
    problems,
  };
}

const AUDIENCES = /_AUDIENCES$/;
const CALLERS = /_ALLOWED_CALLERS$/;

/**
 * Each HTTP function authenticates its own callers: ID tokens whose audience is its own URL
 * (`local.function_urls_static["<key>"]`) from its own caller list, given in
 * `local.http_auth_env["<key>"]` and merged into that function's environment only. Audience or
 * caller lists in `local.common_env` would be shared by every function, so a token minted for one
 * would be accepted by another.
 */
function checkAudiences(m: ModuleModel, show: (p: string) => string, add: Add): void {
  const http = m.locals.get('http_functions');
  if (!http || !isObject(http.value)) return;
  const keys = Object.keys(http.value);
  const common = m.locals.get('common_env');
  if (common && isObject(common.value))
    for (const name of Object.keys(common.value))
      if (AUDIENCES.test(name) || CALLERS.test(name))
        add(
          'function-audience',
          show(common.file),
          `local.common_env sets ${name}, which every function would share: give each HTTP function its own in local.http_auth_env`,
        );
  const auth = m.locals.get('http_auth_env');
  if (!auth || !isObject(auth.value)) {
    add(
      'function-audience',
      show(http.file),
      'no local.http_auth_env: each HTTP function needs its own ID-token audience (its own URL) and callers',
    );
    return;
  }
  const where = show(auth.file);
  const callers = new Map<string, string>();
  for (const key of keys) {
    const entry = auth.value[key];
    if (entry === undefined) {
      add(
        'function-audience',
        where,
        `local.http_auth_env has no entry for the HTTP function "${key}"`,
      );
      continue;
    }
    if (!isObject(entry)) {
      if (/AUDIENCES|ALLOWED_CALLERS/.test(JSON.stringify(entry)))
        add(
          'function-audience',
          where,
          `local.http_auth_env["${key}"] must list its audience and callers literally`,
        );
      continue;
    }
    const names = Object.keys(entry);
    const aud = names.filter((n) => AUDIENCES.test(n));
    const call = names.filter((n) => CALLERS.test(n));
    if (aud.length !== call.length)
      add(
        'function-audience',
        where,
        `local.http_auth_env["${key}"] needs both an audience list and a caller list`,
      );
    for (const n of aud) {
      const value = JSON.stringify(entry[n]);
      if (!value.includes(`local.function_urls_static[\\"${key}\\"]`))
        add(
          'function-audience',
          where,
          `${n} of "${key}" does not name its own URL (local.function_urls_static["${key}"])`,
        );
      for (const other of keys)
        if (other !== key && value.includes(`local.function_urls_static[\\"${other}\\"]`))
          add('function-audience', where, `${n} of "${key}" accepts tokens minted for "${other}"`);
      if (/_url_static\b/.test(value.replaceAll('function_urls_static', '')))
        add('function-audience', where, `${n} of "${key}" names another function's URL`);
    }
    for (const n of call) {
      const value = JSON.stringify(entry[n]);
      const twin = callers.get(value);
      if (twin)
        add(
          'function-audience',
          where,
          `"${key}" and "${twin}" share one caller list (${n}): give each its own`,
        );
      callers.set(value, key);
    }
  }
  for (const [id, r] of m.resources) {
    if (!id.startsWith(`${FUNCTION_RESOURCE}.`)) continue;
    const body = JSON.stringify(r.value);
    if (!body.includes('local.http_functions')) continue;
    if (!body.includes('local.http_auth_env[each.key]'))
      add(
        'function-audience',
        show(r.file),
        `${id} does not merge local.http_auth_env[each.key] into its environment: its functions would not know their own audience and callers`,
      );
  }
}

function parseProblem(parse: () => unknown): string | null {
  try {
    parse();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Resources whose loss cannot be undone: a destroyed KMS key takes every signature made with it. */
const MUST_PREVENT_DESTROY = ['google_kms_key_ring', 'google_kms_crypto_key'];

function checkPreventDestroy(m: ModuleModel, show: (p: string) => string, add: Add): void {
  for (const [address, { file, value }] of m.resources) {
    if (!MUST_PREVENT_DESTROY.includes(address.split('.')[0] as string)) continue;
    const lifecycle = value.lifecycle;
    const first = Array.isArray(lifecycle) ? lifecycle[0] : lifecycle;
    if (asBody(first).prevent_destroy !== true)
      add('prevent-destroy', show(file), `${address} needs lifecycle { prevent_destroy = true }`);
  }
}

/** One line per problem, for humans. */
export function formatProblems(problems: readonly InfraProblem[]): string {
  return problems.map((p) => `${p.file}: [${p.rule}] ${p.message}`).join('\n');
}

function listTfFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      // Provider caches and downloaded modules are not ours to lint.
      if (entry.name === '.terraform' || entry.name === 'node_modules') continue;
      out.push(...listTfFiles(full));
    } else if (entry.isFile() && (entry.name.endsWith('.tf') || isVariablesFile(entry.name)))
      out.push(full);
  }
  return out;
}

/** Variable-definition files: terraform.tfvars, *.auto.tfvars and their committed *.tfvars.example templates. */
function isVariablesFile(name: string): boolean {
  return name.endsWith('.tfvars') || name.endsWith('.tfvars.example');
}

function firstDifferentLine(a: string, b: string): number {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) if (la[i] !== lb[i]) return i + 1;
  return la.length;
}

function asBody(v: unknown): Body {
  if (Array.isArray(v)) return asBody(v[0]);
  return v !== null && typeof v === 'object' ? (v as Body) : {};
}

function entries(v: unknown): [string, unknown][] {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v) : [];
}

function buildModel(dir: string, parsed: { file: string; json: HclJson }[]): ModuleModel {
  const m: ModuleModel = {
    dir,
    variables: new Map(),
    locals: new Map(),
    resources: new Map(),
    data: new Map(),
    modules: new Map(),
    outputs: new Map(),
    providers: new Set(BUILTIN_PROVIDERS),
    iterators: new Set(),
    refs: [],
  };
  for (const { file, json } of parsed) {
    for (const [name, body] of entries(json.variable))
      m.variables.set(name, { file, value: asBody(body) });
    for (const block of Array.isArray(json.locals) ? json.locals : [])
      for (const [name, value] of entries(block)) m.locals.set(name, { file, value });
    for (const [type, named] of entries(json.resource))
      for (const [name, body] of entries(named))
        m.resources.set(`${type}.${name}`, { file, value: asBody(body) });
    for (const [type, named] of entries(json.data))
      for (const [name, body] of entries(named))
        m.data.set(`${type}.${name}`, { file, value: asBody(body) });
    for (const [name, body] of entries(json.module))
      m.modules.set(name, { file, value: asBody(body) });
    for (const [name, body] of entries(json.output))
      m.outputs.set(name, { file, value: asBody(body) });
    for (const tf of Array.isArray(json.terraform) ? json.terraform : [])
      for (const rp of Array.isArray(asBody(tf).required_providers)
        ? (asBody(tf).required_providers as unknown[])
        : [])
        for (const [name] of entries(rp)) m.providers.add(name);
    collectIterators(json, m.iterators);

    for (const [key, value] of Object.entries(json)) {
      if (key === 'terraform') continue;
      const scan = key === 'variable' ? stripVariableTypes(value) : value;
      forEachString(scan, (s) => {
        for (const t of findTraversals(s))
          m.refs.push({ file, value: t, inVariable: key === 'variable' });
      });
    }
  }
  return m;
}

/** A variable's `type` is a type expression (object({...})), not a value: leave it out of reference scans. */
function stripVariableTypes(variables: unknown): unknown {
  return entries(variables).map(([, body]) =>
    (Array.isArray(body) ? body : [body]).map((b) => {
      const { type: _type, ...rest } = asBody(b);
      return rest;
    }),
  );
}

function collectIterators(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) collectIterators(v, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    if (key === 'dynamic') {
      for (const [label, bodies] of entries(v)) {
        out.add(label);
        const iterator = asBody(bodies).iterator;
        if (typeof iterator === 'string') out.add(wholeExpression(iterator) ?? iterator);
      }
    }
    collectIterators(v, out);
  }
}

type Add = (rule: InfraRule, file: string, message: string) => void;

function checkReferences(
  m: ModuleModel,
  models: Map<string, ModuleModel>,
  show: (p: string) => string,
  add: Add,
): void {
  const usedVariables = new Set<string>();
  for (const { file, value: t, inVariable } of m.refs) {
    const where = show(file);
    const [root, a, b] = t;
    if (root === 'var') {
      if (!inVariable) usedVariables.add(a);
      if (!m.variables.has(a))
        add(
          'undeclared-variable',
          where,
          `var.${a} is used but no variable "${a}" is declared in ${show(m.dir)}`,
        );
    } else if (root === 'local') {
      if (!m.locals.has(a))
        add(
          'undeclared-local',
          where,
          `local.${a} is used but no local "${a}" is declared in ${show(m.dir)}`,
        );
    } else if (root === 'module') {
      const call = m.modules.get(a);
      if (!call) {
        add('undeclared-reference', where, `module.${a} is used but no module "${a}" is declared`);
        continue;
      }
      const child = childModule(m, call.value, models);
      if (child && b !== undefined && !child.outputs.has(b))
        add(
          'module-interface',
          where,
          `module.${a}.${b} is used but module "${a}" (${show(child.dir)}) has no output "${b}"`,
        );
    } else if (root === 'data') {
      if (b === undefined || !m.data.has(`${a}.${b}`))
        add(
          'undeclared-reference',
          where,
          `data.${a}.${b ?? ''} is used but no data "${a}" "${b ?? ''}" block is declared`,
        );
    } else if (SPECIAL_ROOTS.has(root) || m.iterators.has(root)) {
    } else if (isResourceType(root, m.providers) && !m.resources.has(`${root}.${a}`)) {
      add(
        'undeclared-reference',
        where,
        `${root}.${a} is used but no resource "${root}" "${a}" is declared in ${show(m.dir)}`,
      );
    }
  }
  for (const [name, { file }] of m.variables)
    if (!usedVariables.has(name))
      add('unused-variable', show(file), `variable "${name}" is declared but never used`);

  for (const [name, { file, value: call }] of m.modules) {
    const source = typeof call.source === 'string' ? call.source : '';
    if (!source.startsWith('./') && !source.startsWith('../')) continue;
    const child = childModule(m, call, models);
    if (!child) {
      add(
        'module-interface',
        show(file),
        `module "${name}" has source "${source}" but no Terraform files were found there`,
      );
      continue;
    }
    for (const arg of Object.keys(call))
      if (!MODULE_META_ARGS.has(arg) && !child.variables.has(arg))
        add(
          'module-interface',
          show(file),
          `module "${name}" passes "${arg}" but ${show(child.dir)} declares no variable "${arg}"`,
        );
    for (const [v, decl] of child.variables)
      if (!('default' in decl.value) && !(v in call))
        add(
          'module-interface',
          show(file),
          `module "${name}" does not set required variable "${v}" of ${show(child.dir)}`,
        );
  }
}

function childModule(
  m: ModuleModel,
  call: Body,
  models: Map<string, ModuleModel>,
): ModuleModel | undefined {
  return typeof call.source === 'string' ? models.get(resolve(m.dir, call.source)) : undefined;
}

function isResourceType(name: string, providers: Set<string>): boolean {
  const cut = name.indexOf('_');
  return cut > 0 && providers.has(name.slice(0, cut));
}

// ---- Static evaluation: just enough to read literal maps of functions through locals and for_each.

const UNKNOWN: unique symbol = Symbol('unknown');
type Static = unknown;

interface Each {
  readonly key: string;
  readonly value: unknown;
}

function evalStatic(value: unknown, m: ModuleModel, each?: Each, depth = 0): Static {
  if (depth > 20) return UNKNOWN;
  if (typeof value !== 'string') return value;
  const expr = wholeExpression(value);
  if (expr === undefined) return value.includes('${') ? UNKNOWN : value;
  return evalExpression(expr, m, each, depth + 1);
}

function evalExpression(
  expr: string,
  m: ModuleModel,
  each: Each | undefined,
  depth: number,
): Static {
  if (depth > 20) return UNKNOWN;
  const literal = /^"((?:[^"\\$]|\\.)*)"$/.exec(expr);
  if (literal) return literal[1];
  const call = /^([a-z]+)\(([\s\S]*)\)$/.exec(expr);
  if (call) {
    const args = splitTopLevel(call[2]).map((a) => evalExpression(a, m, each, depth + 1));
    if (args.some((a) => a === UNKNOWN)) return UNKNOWN;
    if (call[1] === 'merge' && args.every(isObject)) return Object.assign({}, ...args);
    if (call[1] === 'toset' && args.length === 1 && Array.isArray(args[0]))
      return [...new Set(args[0])];
    return UNKNOWN;
  }
  if (expr.startsWith('[') && expr.endsWith(']') && !/^\[\s*for\s/.test(expr)) {
    const items = splitTopLevel(expr.slice(1, -1)).map((a) =>
      evalExpression(a, m, each, depth + 1),
    );
    return items.some((i) => i === UNKNOWN) ? UNKNOWN : items;
  }
  const path = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*$/.test(expr)
    ? expr.split('.')
    : undefined;
  if (!path) return UNKNOWN;
  let current: Static;
  let rest: string[];
  if (path[0] === 'each' && each && path[1] === 'key') {
    current = each.key;
    rest = path.slice(2);
  } else if (path[0] === 'each' && each && path[1] === 'value') {
    current = each.value;
    rest = path.slice(2);
  } else if (path[0] === 'local' && path.length >= 2 && m.locals.has(path[1])) {
    current = evalStatic(m.locals.get(path[1])?.value, m, undefined, depth + 1);
    rest = path.slice(2);
  } else return UNKNOWN;
  for (const attr of rest) {
    if (!isObject(current) || !(attr in current)) return UNKNOWN;
    current = evalStatic(current[attr], m, each, depth + 1);
  }
  return current;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inString = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = s.slice(start).trim();
  if (last) out.push(last);
  return out;
}

// ---- Functions: every folder under functions/ has a gen2 function with a trigger and its own service account.

interface FunctionInstance {
  readonly address: string;
  readonly file: string;
  readonly entryPoint: Static;
  readonly runtime: Static;
  readonly trigger: TriggerKind | 'dynamic';
  readonly retryPolicy: Static;
  readonly pubsubTopic: unknown;
  /** `google_service_account.<name>[<key>]`, or why it could not be resolved. */
  readonly serviceAccount: { id: string } | { error: string };
}

function instanceKeys(
  body: Body,
  m: ModuleModel,
): { key: string; value: unknown }[] | undefined | 'single' {
  if (!('for_each' in body)) return 'count' in body ? undefined : 'single';
  const v = evalStatic(body.for_each, m);
  if (isObject(v)) return Object.entries(v).map(([key, value]) => ({ key, value }));
  if (Array.isArray(v) && v.every((x) => typeof x === 'string'))
    return v.map((key) => ({ key, value: key }));
  return undefined;
}

function functionInstances(
  m: ModuleModel,
  show: (p: string) => string,
  add: Add,
): FunctionInstance[] {
  const out: FunctionInstance[] = [];
  for (const [address, { file, value: body }] of m.resources) {
    if (!address.startsWith(`${FUNCTION_RESOURCE}.`)) continue;
    const keys = instanceKeys(body, m);
    if (keys === undefined) {
      add(
        'function-unresolvable',
        show(file),
        `${address}: for_each/count cannot be resolved statically; use a literal map in locals (or merge() of them)`,
      );
      continue;
    }
    const list = keys === 'single' ? [undefined] : keys;
    for (const each of list) {
      const build = asBody(body.build_config);
      const trigger = Array.isArray(body.event_trigger)
        ? 'pubsub'
        : isObject(body.dynamic) && 'event_trigger' in body.dynamic
          ? 'dynamic'
          : 'http';
      const event = asBody(body.event_trigger);
      out.push({
        address: each ? `${address}["${each.key}"]` : address,
        file,
        entryPoint: evalStatic(build.entry_point, m, each),
        runtime: evalStatic(build.runtime, m, each),
        trigger,
        retryPolicy: evalStatic(event.retry_policy, m, each),
        pubsubTopic: event.pubsub_topic,
        serviceAccount: resolveServiceAccount(
          asBody(body.service_config).service_account_email,
          m,
          each,
        ),
      });
    }
  }
  return out;
}

function resolveServiceAccount(
  email: unknown,
  m: ModuleModel,
  each: Each | undefined,
): FunctionInstance['serviceAccount'] {
  if (email === undefined) return { error: 'has no service_config.service_account_email' };
  const expr = wholeExpression(email);
  const match = expr
    ? /^google_service_account\.([A-Za-z0-9_-]+)(?:\[\s*([^\]]+?)\s*\])?\.(email|member)$/.exec(
        expr,
      )
    : null;
  if (!match)
    return {
      error: `service_config.service_account_email is ${JSON.stringify(email)}, not a reference to a ${SERVICE_ACCOUNT_RESOURCE} resource's email`,
    };
  const [, name, index] = match;
  const sa = m.resources.get(`${SERVICE_ACCOUNT_RESOURCE}.${name}`);
  if (!sa) return { error: `uses ${SERVICE_ACCOUNT_RESOURCE}.${name}, which is not declared` };
  const saKeys = instanceKeys(sa.value, m);
  if (index === undefined) {
    return saKeys === 'single'
      ? { id: `${SERVICE_ACCOUNT_RESOURCE}.${name}` }
      : { error: `uses ${SERVICE_ACCOUNT_RESOURCE}.${name} without an index, but it has for_each` };
  }
  const key = evalExpression(index, m, each, 0);
  if (typeof key !== 'string')
    return {
      error: `uses ${SERVICE_ACCOUNT_RESOURCE}.${name}[${index}], an index that cannot be resolved`,
    };
  if (saKeys === 'single' || saKeys === undefined || !saKeys.some((k) => k.key === key))
    return {
      error: `uses ${SERVICE_ACCOUNT_RESOURCE}.${name}["${key}"], but that resource has no instance "${key}"`,
    };
  return { id: `${SERVICE_ACCOUNT_RESOURCE}.${name}["${key}"]` };
}

/** A functions-framework registration found in a function's source: `cloudEvent('name', ...)` or `http('name', ...)`. */
export interface Registration {
  readonly name: string;
  readonly kind: TriggerKind;
}

const REGISTRATION = /\b(cloudEvent|http)\s*(?:<[^>]*>)?\s*\(\s*(['"`])([A-Za-z_$][\w$]*)\2/g;

/** Every registration in the source files under a function folder (tests and declarations excluded). */
export function findRegistrations(folder: string): Registration[] {
  const found = new Map<string, Registration>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (/\.(ts|js|mjs)$/.test(entry.name) && !/\.(d|test|spec)\.ts$/.test(entry.name)) {
        for (const m of readFileSync(full, 'utf8').matchAll(REGISTRATION))
          found.set(`${m[1]}:${m[3]}`, { name: m[3], kind: m[1] === 'http' ? 'http' : 'pubsub' });
      }
    }
  };
  visit(folder);
  return [...found.values()];
}

/** Sub-folders of functions/ that are deployable functions: `_shared`-style and hidden folders are not. */
function functionFolders(functionsDir: string): string[] {
  return existsSync(functionsDir) && statSync(functionsDir).isDirectory()
    ? readdirSync(functionsDir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith('_') && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort()
    : [];
}

function checkFunctions(
  functionsDir: string,
  models: Map<string, ModuleModel>,
  show: (p: string) => string,
  add: Add,
): string[] {
  const instances = [...models.values()].flatMap((m) => functionInstances(m, show, add));

  const saUsers = new Map<string, string[]>();
  for (const inst of instances)
    if ('id' in inst.serviceAccount) {
      const users = saUsers.get(inst.serviceAccount.id) ?? [];
      users.push(String(inst.entryPoint));
      saUsers.set(inst.serviceAccount.id, users);
    }

  const checked: string[] = [];
  for (const folder of functionFolders(functionsDir)) {
    const entryPoint = entryPointFor(folder);
    const where = show(join(functionsDir, folder));
    const registrations = findRegistrations(join(functionsDir, folder));
    if (registrations.length > 0 && !registrations.some((r) => r.name === entryPoint))
      add(
        'function-entry-point',
        where,
        `registers ${registrations.map((r) => r.name).join(', ')}, but a folder named ${folder} is deployed with entry point ${entryPoint}; rename one to match`,
      );
    // The folder's own entry point, plus anything else its source registers.
    const targets = new Map<string, TriggerKind | undefined>([
      [entryPoint, KNOWN_TRIGGERS[entryPoint]],
    ]);
    for (const r of registrations) targets.set(r.name, r.kind);
    if (registrations.length > 0 && !registrations.some((r) => r.name === entryPoint))
      targets.delete(entryPoint);
    for (const [name, expected] of targets) {
      checked.push(name);
      checkFunction(name, expected, where, instances, saUsers, show, add);
    }
  }
  return checked;
}

function checkFunction(
  entryPoint: string,
  expected: TriggerKind | undefined,
  where: string,
  instances: FunctionInstance[],
  saUsers: Map<string, string[]>,
  show: (p: string) => string,
  add: Add,
): void {
  const matches = instances.filter((i) => i.entryPoint === entryPoint);
  if (matches.length === 0) {
    add(
      'function-missing',
      where,
      `function ${entryPoint} has no ${FUNCTION_RESOURCE} resource with build_config.entry_point = "${entryPoint}"`,
    );
    return;
  }
  for (const inst of matches) {
    const at = `${inst.address} (${entryPoint}, ${show(inst.file)})`;
    if (inst.runtime !== REQUIRED_RUNTIME)
      add(
        'function-runtime',
        show(inst.file),
        `${at}: build_config.runtime must be "${REQUIRED_RUNTIME}", found ${describe(inst.runtime)}`,
      );
    if (inst.trigger === 'dynamic') {
      add(
        'function-trigger',
        show(inst.file),
        `${at}: event_trigger is a dynamic block; write a static event_trigger block so the trigger can be checked`,
      );
    } else if (expected !== undefined && inst.trigger !== expected) {
      add(
        'function-trigger',
        show(inst.file),
        expected === 'pubsub'
          ? `${at}: is a Pub/Sub function but has no event_trigger block`
          : `${at}: is an HTTP function but has an event_trigger block`,
      );
    }
    if (inst.trigger === 'pubsub') {
      if (inst.pubsubTopic === undefined)
        add('function-trigger', show(inst.file), `${at}: event_trigger has no pubsub_topic`);
      if (inst.retryPolicy !== REQUIRED_RETRY_POLICY)
        add(
          'function-trigger',
          show(inst.file),
          `${at}: event_trigger.retry_policy must be "${REQUIRED_RETRY_POLICY}" (errors are redelivered), found ${describe(inst.retryPolicy)}`,
        );
    }
    if ('error' in inst.serviceAccount) {
      add('function-service-account', show(inst.file), `${at}: ${inst.serviceAccount.error}`);
    } else {
      const users = saUsers.get(inst.serviceAccount.id) ?? [];
      if (users.length > 1)
        add(
          'function-service-account',
          show(inst.file),
          `${at}: service account ${inst.serviceAccount.id} is shared by ${[...users].sort().join(', ')}; each function needs its own`,
        );
    }
  }
}

function describe(v: Static): string {
  return v === UNKNOWN || v === undefined ? 'nothing resolvable' : JSON.stringify(v);
}

// ---- firestore.indexes.json: the module turns it into google_firestore_index / google_firestore_field resources.

const IndexField = z
  .object({
    fieldPath: z.string().min(1),
    order: z.enum(['ASCENDING', 'DESCENDING']).optional(),
    arrayConfig: z.literal('CONTAINS').optional(),
  })
  .refine((f) => (f.order === undefined) !== (f.arrayConfig === undefined), {
    message: 'each field needs exactly one of order or arrayConfig',
  });

const QueryScope = z.enum(['COLLECTION', 'COLLECTION_GROUP']);

export const FirestoreIndexesDocument = z.object({
  indexes: z.array(
    z.object({
      collectionGroup: z.string().min(1),
      queryScope: QueryScope.optional(),
      fields: z.array(IndexField).min(1),
    }),
  ),
  fieldOverrides: z
    .array(
      z.object({
        collectionGroup: z.string().min(1),
        fieldPath: z.string().min(1),
        ttl: z.boolean().optional(),
        indexes: z
          .array(
            z
              .object({
                queryScope: QueryScope.optional(),
                order: z.enum(['ASCENDING', 'DESCENDING']).optional(),
                arrayConfig: z.literal('CONTAINS').optional(),
              })
              .refine((f) => (f.order === undefined) !== (f.arrayConfig === undefined), {
                message: 'each index needs exactly one of order or arrayConfig',
              }),
          )
          .optional(),
      }),
    )
    .optional(),
});
export type FirestoreIndexesDocument = z.infer<typeof FirestoreIndexesDocument>;

function checkFirestoreIndexes(file: string, show: (p: string) => string, add: Add): void {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    add('firestore-indexes', show(file), `cannot be read as JSON: ${(err as Error).message}`);
    return;
  }
  const parsed = FirestoreIndexesDocument.safeParse(json);
  if (!parsed.success)
    for (const issue of parsed.error.issues)
      add(
        'firestore-indexes',
        show(file),
        `${issue.path.join('.') || '(root)'}: ${issue.message} (the Terraform module deploys this file)`,
      );
}
