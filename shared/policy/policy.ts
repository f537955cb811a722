// The policy document: zod schema, YAML/JSON parsing that lists every problem, and the content hash.
import { createHash, createPublicKey } from 'node:crypto';
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { ClearanceError } from '../errors.js';
import { Severity, severityRank } from '../findings/finding.js';
import { canonicalImageName } from '../image-ref/image-ref.js';
import { EVIDENCE_KINDS, Mode } from '../verdict.js';
import { globProblems } from './glob.js';

/** Every rule id a reason can carry, in the order reasons are reported. Stable: alerts and dashboards key on them. */
export const RULE_IDS = [
  'exempt-image',
  'trusted-repository',
  'image.enrichment-pending',
  'image.unreadable',
  'base-image.unknown',
  'base-image.layers',
  'base-image.allowed',
  'base-image.fresh',
  'vulnerabilities.scan-required',
  'vulnerabilities.scan-failed',
  'vulnerabilities.blocked-cve',
  'vulnerabilities.fixable-severity',
  'vulnerabilities.fix-grace',
  'vulnerabilities.fix-grace-ending',
  'vulnerabilities.unfixable-severity',
  'vulnerabilities.exception-expired',
  'vulnerabilities.exception-expiring',
  'vulnerabilities.exception-applied',
  'provenance.missing',
  'provenance.builder',
  'provenance.source',
  'image.non-root',
  'image.max-age',
  'evidence.unverified',
] as const;
export type RuleId = (typeof RULE_IDS)[number];

/** Binary Authorization's MaximumAllowedSeverity values, lowest (strictest) first. */
export const SEVERITY_THRESHOLDS = [
  'BLOCK_ALL',
  'MINIMAL',
  'LOW',
  'MEDIUM',
  'HIGH',
  'CRITICAL',
  'ALLOW_ALL',
] as const;
export const SeverityThreshold = z.enum(SEVERITY_THRESHOLDS);
export type SeverityThreshold = z.infer<typeof SeverityThreshold>;

/** Whether a finding of this severity is over the threshold (and so fails the rule). */
export function exceedsThreshold(severity: Severity, threshold: SeverityThreshold): boolean {
  switch (threshold) {
    case 'BLOCK_ALL':
      return true;
    case 'ALLOW_ALL':
      return false;
    case 'MINIMAL':
    case 'LOW':
    case 'MEDIUM':
    case 'HIGH':
    case 'CRITICAL':
      return severityRank(severity) > severityRank(threshold);
    default: {
      const never: never = threshold;
      throw new Error(`unknown threshold ${String(never)}`);
    }
  }
}

/** What to do when the evidence a rule needs is missing. */
export const OUTCOMES = ['deny', 'warn', 'allow'] as const;
export const Outcome = z.enum(OUTCOMES);
export type Outcome = z.infer<typeof Outcome>;

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

const Glob = z.string().superRefine((p, ctx) => {
  for (const problem of globProblems(p)) {
    ctx.addIssue({ code: 'custom', message: `${problem}: "${p}"` });
  }
});
/** Glob lists are sets: sorted and de-duplicated so source order never changes the hash. */
const GlobList = z.array(Glob).transform(sortedUnique);
/**
 * Globs on `REGISTRY/REPO`, written the way image names are kept: Docker Hub's aliases folded into
 * docker.io and its `library/` default applied (`nginx` → `docker.io/library/nginx`).
 */
const ImageNameGlobList = z
  .array(Glob)
  .transform((list) => sortedUnique(list.map(canonicalImageName)));

const VulnId = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9._:-]+$/,
    'expected a vulnerability id such as CVE-2005-2541 or GHSA-xxxx-xxxx-xxxx',
  );

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * When an exception stops applying. A bare date means "through that day (UTC)": an exception
 * written `expires: 2026-12-01` covers all of 1 December and stops at 2026-12-02T00:00Z.
 */
export function expiryInstant(expires: string): number {
  if (ISO_DATE.test(expires)) return Date.parse(`${expires}T00:00:00Z`) + 86_400_000;
  return Date.parse(expires);
}

const Expiry = z.string().refine((s) => {
  if (ISO_DATE.test(s)) {
    const d = new Date(`${s}T00:00:00Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
  }
  return ISO_DATETIME.test(s) && !Number.isNaN(Date.parse(s));
}, 'expected a date (YYYY-MM-DD) or an ISO 8601 date-time with a zone (2026-12-01T12:00:00Z)');

/** A time-bound exception for one vulnerability (Binary Authorization's allowedCves, with accountability). */
export const CveException = z.strictObject({
  /** CVE, GHSA or other advisory id; also covers findings that list it among their aliases. */
  id: VulnId,
  reason: z.string().trim().min(1, 'say why the exception is acceptable'),
  owner: z.string().trim().min(1, 'name who owns the exception'),
  expires: Expiry,
  scope: z
    .strictObject({
      /** Repository globs (`REGISTRY/REPO`); absent = every repository. */
      repositories: ImageNameGlobList.optional(),
      /** Package names; absent = every package. */
      packages: z.array(z.string().min(1)).transform(sortedUnique).optional(),
    })
    .prefault({}),
});
export type CveException = z.infer<typeof CveException>;
export type CveExceptionInput = z.input<typeof CveException>;

const VexSettings = z.strictObject({
  /** Apply ingested VEX `not_affected` / `fixed` statements. */
  apply: z.boolean().default(true),
  /**
   * Also accept statements whose product names a repository (glob or purl without digest) rather
   * than a digest. Off by default: a digest names exactly the content the author vouched for.
   */
  matchRepository: z.boolean().default(false),
});

/** What a base claim whose layers do not match (or could not be checked) does to the verdict. */
export const VERIFY_LAYERS = ['enforce', 'warn', 'off'] as const;
export const VerifyLayers = z.enum(VERIFY_LAYERS);
export type VerifyLayers = z.infer<typeof VerifyLayers>;

const BaseImageRuleFields = {
  /** Globs on the base's name (tag and digest stripped); absent = any base. */
  allowed: ImageNameGlobList,
  /** How many days a superseded base may lag its tag; absent = freshness not checked. */
  maxStaleDays: z.number().int().min(0),
  /** Outcome when the base could not be determined. */
  unknown: Outcome,
  /**
   * Whether the base claim (annotation or label) must be proven by the image's layers: enforce
   * denies a claim the layers contradict and ignores one that could not be checked; warn reports
   * both; off trusts the claim.
   */
  verifyLayers: VerifyLayers,
};
const BaseImageRule = z.strictObject({
  allowed: BaseImageRuleFields.allowed.optional(),
  maxStaleDays: BaseImageRuleFields.maxStaleDays.optional(),
  unknown: BaseImageRuleFields.unknown.default('warn'),
  verifyLayers: BaseImageRuleFields.verifyLayers.default('warn'),
});

/** Scanners whose runs a policy can require: Artifact Analysis (Google-written) and CI scanners uploaded by allowed callers. */
export const SCANNERS = ['artifact-analysis', 'trivy', 'grype'] as const;
export const Scanner = z.enum(SCANNERS);
export type Scanner = z.infer<typeof Scanner>;

/**
 * `requireScan` names the scanners whose finished run counts: `true` is Artifact Analysis only,
 * `false` (or `[]`) none, a list those scanners (any one of them suffices).
 */
const RequireScan = z
  .union([z.boolean(), z.array(Scanner)])
  .transform((v): Scanner[] =>
    v === true ? ['artifact-analysis'] : v === false ? [] : [...new Set(v)].sort(),
  );
/** Days a fixable finding over the threshold stays allowed after its fix first appeared, per severity. */
const FixGraceDays = z.strictObject({
  CRITICAL: z.number().int().min(0).max(365).optional(),
  HIGH: z.number().int().min(0).max(365).optional(),
  MEDIUM: z.number().int().min(0).max(365).optional(),
  LOW: z.number().int().min(0).max(365).optional(),
  MINIMAL: z.number().int().min(0).max(365).optional(),
  UNSPECIFIED: z.number().int().min(0).max(365).optional(),
});
export type FixGraceDays = z.infer<typeof FixGraceDays>;

const VulnerabilityRuleFields = {
  requireScan: RequireScan,
  maximumFixableSeverity: SeverityThreshold,
  maximumUnfixableSeverity: SeverityThreshold,
  allowedCves: z
    .array(CveException)
    .transform((list) => [...list].sort((a, b) => cmpStr(canonicalJson(a), canonicalJson(b)))),
  blockedCves: z.array(VulnId).transform((ids) => sortedUnique(ids.map((i) => i.toUpperCase()))),
  vex: VexSettings,
  /** An exception in use that expires within this many days raises `vulnerabilities.exception-expiring`. */
  exceptionWarningDays: z.number().int().min(0),
  /**
   * The severity a fixable finding counts as when its scanner gave none (Trivy UNKNOWN, Grype
   * Unknown, Grafeas SEVERITY_UNSPECIFIED). `UNSPECIFIED` keeps it below every threshold.
   */
  unknownFixableSeverity: Severity,
  /** Absent, or a severity left out: no grace (denied as soon as the fix is known). */
  fixGraceDays: FixGraceDays,
  /** A grace period ending within this many days raises `vulnerabilities.fix-grace-ending` (and alerts owners). */
  fixGraceWarningDays: z.number().int().min(0).max(365),
};
const VulnerabilityRule = z.strictObject({
  requireScan: VulnerabilityRuleFields.requireScan.prefault(true),
  maximumFixableSeverity: VulnerabilityRuleFields.maximumFixableSeverity.default('ALLOW_ALL'),
  maximumUnfixableSeverity: VulnerabilityRuleFields.maximumUnfixableSeverity.default('ALLOW_ALL'),
  allowedCves: VulnerabilityRuleFields.allowedCves.prefault([]),
  blockedCves: VulnerabilityRuleFields.blockedCves.prefault([]),
  vex: VulnerabilityRuleFields.vex.prefault({}),
  exceptionWarningDays: VulnerabilityRuleFields.exceptionWarningDays.default(7),
  // A fix exists, so not knowing how bad the flaw is is no reason to ship it: count it as HIGH.
  unknownFixableSeverity: VulnerabilityRuleFields.unknownFixableSeverity.default('HIGH'),
  fixGraceDays: VulnerabilityRuleFields.fixGraceDays.optional(),
  fixGraceWarningDays: VulnerabilityRuleFields.fixGraceWarningDays.default(2),
});

const ProvenanceRuleFields = {
  /** Globs on the SLSA builder id / Cloud Build builder; absent = any builder. */
  trustedBuilders: GlobList,
  /** Globs on the source repository URI; absent = any source. */
  trustedSources: GlobList,
  /** Outcome when the image has no provenance at all. */
  missing: Outcome,
};
const ProvenanceRule = z.strictObject({
  trustedBuilders: ProvenanceRuleFields.trustedBuilders.optional(),
  trustedSources: ProvenanceRuleFields.trustedSources.optional(),
  missing: ProvenanceRuleFields.missing.default('deny'),
});

const ImageRuleFields = {
  nonRoot: z.boolean(),
  maxAgeDays: z.number().int().positive(),
};
const ImageRule = z.strictObject({
  nonRoot: ImageRuleFields.nonRoot.default(false),
  maxAgeDays: ImageRuleFields.maxAgeDays.optional(),
});

/** The rules; a missing section is a rule not checked. */
export const Rules = z.strictObject({
  /** Globs on `REGISTRY/REPO` (Binary Authorization `namePattern` semantics); absent = any repository. */
  trustedRepositories: ImageNameGlobList.optional(),
  /** Globs on `REGISTRY/REPO` allowed without any check (system images); always reported. */
  exemptImages: ImageNameGlobList.prefault([]),
  baseImage: BaseImageRule.optional(),
  vulnerabilities: VulnerabilityRule.optional(),
  provenance: ProvenanceRule.optional(),
  image: ImageRule.optional(),
});
export type Rules = z.infer<typeof Rules>;

/**
 * Per-environment overrides: a section's fields replace the base section's (arrays replace, not
 * append); `null` turns the section off. Fields carry no defaults here so an override only
 * changes what it names.
 */
const RuleOverrides = z.strictObject({
  trustedRepositories: ImageNameGlobList.nullable().optional(),
  exemptImages: ImageNameGlobList.optional(),
  baseImage: z
    .strictObject({
      allowed: BaseImageRuleFields.allowed.optional(),
      maxStaleDays: BaseImageRuleFields.maxStaleDays.optional(),
      unknown: BaseImageRuleFields.unknown.optional(),
      verifyLayers: BaseImageRuleFields.verifyLayers.optional(),
    })
    .nullable()
    .optional(),
  vulnerabilities: z
    .strictObject({
      requireScan: VulnerabilityRuleFields.requireScan.optional(),
      maximumFixableSeverity: VulnerabilityRuleFields.maximumFixableSeverity.optional(),
      maximumUnfixableSeverity: VulnerabilityRuleFields.maximumUnfixableSeverity.optional(),
      allowedCves: VulnerabilityRuleFields.allowedCves.optional(),
      blockedCves: VulnerabilityRuleFields.blockedCves.optional(),
      vex: z
        .strictObject({ apply: z.boolean().optional(), matchRepository: z.boolean().optional() })
        .optional(),
      exceptionWarningDays: VulnerabilityRuleFields.exceptionWarningDays.optional(),
      unknownFixableSeverity: VulnerabilityRuleFields.unknownFixableSeverity.optional(),
      fixGraceDays: VulnerabilityRuleFields.fixGraceDays.optional(),
      fixGraceWarningDays: VulnerabilityRuleFields.fixGraceWarningDays.optional(),
    })
    .nullable()
    .optional(),
  provenance: z
    .strictObject({
      trustedBuilders: ProvenanceRuleFields.trustedBuilders.optional(),
      trustedSources: ProvenanceRuleFields.trustedSources.optional(),
      missing: ProvenanceRuleFields.missing.optional(),
    })
    .nullable()
    .optional(),
  image: z
    .strictObject({
      nonRoot: ImageRuleFields.nonRoot.optional(),
      maxAgeDays: ImageRuleFields.maxAgeDays.optional(),
    })
    .nullable()
    .optional(),
});
export type RuleOverrides = z.infer<typeof RuleOverrides>;

export const Environment = z.strictObject({
  mode: Mode.default('enforce'),
  /** Whether a breakglass annotation may admit a denied image here (always audited and alerted). */
  breakglass: z.boolean().default(false),
  rules: RuleOverrides.optional(),
});
export type Environment = z.infer<typeof Environment>;

export const Admission = z.strictObject({
  /** Answer for an image the ledger has never seen (fail closed by default). */
  unknownImage: z.enum(['deny', 'allow']).default('deny'),
  /** Whether an allow also needs a valid attestation on the image. */
  requireAttestation: z.boolean().default(true),
  /**
   * Refuse references by tag: a tag can move between the check and the pull, so admitting
   * `image:tag` is a race (docs/check.md). Off by default for compatibility.
   */
  requireDigest: z.boolean().default(false),
  /**
   * A verdict made under a replaced policy, before re-evaluation reaches it: `warn` answers it
   * with a warning naming the stale policy hash, `pending` treats it as not yet decided (denied
   * where enforced).
   */
  stalePolicy: z.enum(['warn', 'pending']).default('warn'),
});
export type Admission = z.infer<typeof Admission>;

/** What a signer may vouch for: build provenance, VEX statements. */
export const EvidenceKind = z.enum(EVIDENCE_KINDS);
export type EvidenceKind = z.infer<typeof EvidenceKind>;

const PublicKeyPem = z.string().superRefine((pem, ctx) => {
  try {
    const key = createPublicKey(pem);
    if (key.type !== 'public') throw new Error('not a public key');
  } catch {
    ctx.addIssue({
      code: 'custom',
      message:
        'expected a PEM public key (-----BEGIN PUBLIC KEY-----, as `cosign public-key` prints)',
    });
  }
});

/**
 * Who may sign evidence: a public key (cosign key pair, KMS key) or a keyless identity — the OIDC
 * issuer and a glob on the certificate's subject (SAN) that Fulcio issued the signing certificate for.
 */
export const TrustSigner = z
  .strictObject({
    /** Shown in verdict reasons and the audit trail. */
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'signer names are [a-z0-9._-], up to 63'),
    publicKey: PublicKeyPem.optional(),
    keyless: z
      .strictObject({
        /** Exact OIDC issuer, e.g. https://token.actions.githubusercontent.com */
        issuer: z.string().url(),
        /** Glob on the certificate subject (SAN URI or email), e.g. https://github.com/acme/** */
        subject: Glob,
      })
      .optional(),
    /** Which evidence it may sign. */
    evidence: z
      .array(EvidenceKind)
      .min(1)
      .transform((l) => [...new Set(l)].sort())
      .prefault(['provenance', 'vex']),
  })
  .refine(
    (s) => (s.publicKey === undefined) !== (s.keyless === undefined),
    'give exactly one of publicKey or keyless',
  );
export type TrustSigner = z.infer<typeof TrustSigner>;

/** Where evidence may come from; the list order is the trust order (first = most trusted). */
export const Trust = z.strictObject({
  signers: z
    .array(TrustSigner)
    .refine(
      (list) => new Set(list.map((s) => s.name)).size === list.length,
      'signer names must be unique',
    )
    .prefault([]),
});
export type Trust = z.infer<typeof Trust>;

const ENV_NAME = /^[a-z][a-z0-9-]{0,62}$/;

export const Policy = z.strictObject({
  apiVersion: z.literal('clearance/v1'),
  metadata: z
    .strictObject({
      name: z.string().min(1).optional(),
      description: z.string().optional(),
    })
    .optional(),
  environments: z
    .record(
      z.string().regex(ENV_NAME, 'environment names are lower-case letters, digits and "-"'),
      Environment,
    )
    .refine((envs) => Object.keys(envs).length > 0, 'declare at least one environment'),
  rules: Rules.prefault({}),
  admission: Admission.prefault({}),
  trust: Trust.prefault({}),
});
export type Policy = z.infer<typeof Policy>;
export type PolicyInput = z.input<typeof Policy>;

/** One problem found in a policy document; line/column are given for YAML sources when known. */
export interface PolicyProblem {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** A policy is a few kilobytes; anything near this is a mistake or an attack on the parser. */
export const MAX_POLICY_CHARS = 1_048_576;

export const POLICY_FORMATS = ['yaml', 'json'] as const;
export type PolicyFormat = (typeof POLICY_FORMATS)[number];

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out.length === 0 ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function invalid(problems: PolicyProblem[]): ClearanceError<'invalid-policy'> {
  const first = problems[0];
  const where = first ? `${first.path || '(document)'}: ${first.message}` : 'unknown problem';
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return new ClearanceError('invalid-policy', `policy refused: ${where}${more}`, {
    details: { problems },
  });
}

/** The YAML node at a path, or the deepest ancestor that exists (for a missing field). */
function locate(root: unknown, path: readonly PropertyKey[]): Node | null {
  let node = root as Node | null;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return node;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) return node;
      node = item;
    } else {
      return node;
    }
  }
  return node;
}

function keyNode(root: unknown, path: readonly PropertyKey[], key: string): Node | null {
  const parent = locate(root, path);
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (pair) return pair.key as Node;
  }
  return parent;
}

type Located = (
  path: readonly PropertyKey[],
  key?: string,
) => { line: number; column: number } | null;

function locator(doc: Document.Parsed, lineCounter: LineCounter): Located {
  return (path, key) => {
    const node = key === undefined ? locate(doc.contents, path) : keyNode(doc.contents, path, key);
    const start = node?.range?.[0];
    if (start === undefined) return null;
    const p = lineCounter.linePos(start);
    return { line: p.line, column: p.col };
  };
}

function readSource(
  text: string,
  format: PolicyFormat,
): { value: unknown; locate: Located | null } | { problems: PolicyProblem[] } {
  switch (format) {
    case 'json': {
      // JSON is flow YAML: the YAML parser supplies line numbers and catches duplicate keys,
      // which JSON.parse would silently resolve to the last one.
      const lineCounter = new LineCounter();
      const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
        // V8 gives a position for some errors only; the YAML parser's first error is the fallback.
        const pos = /at position (\d+)/.exec(message);
        const offset = pos ? Number(pos[1]) : doc.errors[0]?.pos[0];
        const at = offset === undefined ? null : lineCounter.linePos(offset);
        return {
          problems: [
            {
              path: '',
              message: `JSON syntax: ${message}`,
              ...(at ? { line: at.line, column: at.col } : {}),
            },
          ],
        };
      }
      const duplicates = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY');
      if (duplicates.length > 0) {
        return {
          problems: duplicates.map((e) => {
            const at = lineCounter.linePos(e.pos[0]);
            return {
              path: '',
              message: `JSON: ${e.message.split('\n')[0]}`,
              line: at.line,
              column: at.col,
            };
          }),
        };
      }
      return { value, locate: doc.errors.length === 0 ? locator(doc, lineCounter) : null };
    }
    case 'yaml': {
      const lineCounter = new LineCounter();
      const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
      if (doc.errors.length > 0) {
        return {
          problems: doc.errors.map((e) => {
            const pos = lineCounter.linePos(e.pos[0]);
            const first = e.message.split('\n')[0];
            return {
              path: '',
              message: `YAML syntax: ${first}`,
              line: pos.line,
              column: pos.col,
            };
          }),
        };
      }
      let value: unknown;
      try {
        // Bounded alias expansion: a hostile document must not explode in memory.
        value = doc.toJS({ maxAliasCount: 100 });
      } catch (err) {
        return {
          problems: [{ path: '', message: `YAML: ${err instanceof Error ? err.message : err}` }],
        };
      }
      return { value, locate: locator(doc, lineCounter) };
    }
    default: {
      const never: never = format;
      throw new Error(`unknown format ${String(never)}`);
    }
  }
}

/**
 * Parses and validates a policy document. Never returns a partly valid policy: any problem
 * throws ClearanceError('invalid-policy') with `details.problems` listing all of them.
 */
export function parsePolicy(text: string, format: PolicyFormat = 'yaml'): Policy {
  if (text.length > MAX_POLICY_CHARS) {
    throw invalid([
      {
        path: '',
        message: `policy is ${text.length} characters; the limit is ${MAX_POLICY_CHARS}`,
      },
    ]);
  }
  const source = readSource(text, format);
  if ('problems' in source) throw invalid(source.problems);
  return validatePolicy(source.value, source.locate);
}

/** Validates an already-decoded policy object (e.g. read from Firestore). */
export function validatePolicy(value: unknown, locate: Located | null = null): Policy {
  const result = Policy.safeParse(value);
  // Frozen: evaluation caches derived indexes per policy object, so a policy must never change.
  if (result.success) return deepFreeze(result.data);
  const problems: PolicyProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const where = locate?.(issue.path, key) ?? null;
        problems.push({
          path: formatPath([...issue.path, key]),
          message: `unknown field "${key}"`,
          ...(where ?? {}),
        });
      }
    } else {
      const where = locate?.(issue.path) ?? null;
      problems.push({ path: formatPath(issue.path), message: issue.message, ...(where ?? {}) });
    }
  }
  throw invalid(problems);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** JSON with object keys sorted at every level and undefined members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => cmpStr(a, b));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * `sha256:` + hex of the canonical form (defaults applied, keys sorted, set-like lists sorted), so
 * the same policy written in YAML or JSON, in any key order, has one hash.
 */
export function policyHash(policy: Policy): string {
  // Re-validating applies defaults to a hand-built object, so it hashes like its parsed twin.
  const normal = validatePolicy(policy);
  return `sha256:${createHash('sha256').update(canonicalJson(normal)).digest('hex')}`;
}

/** The rules after an environment's overrides (cached per policy object; policies are immutable). */
export interface EffectiveRules {
  trustedRepositories: string[] | undefined;
  exemptImages: string[];
  baseImage: z.infer<typeof BaseImageRule> | undefined;
  vulnerabilities: z.infer<typeof VulnerabilityRule> | undefined;
  provenance: z.infer<typeof ProvenanceRule> | undefined;
  image: z.infer<typeof ImageRule> | undefined;
}

const effectiveCache = new WeakMap<Policy, Map<string, EffectiveRules>>();

function mergeSection<T extends object>(
  schema: z.ZodType<T>,
  base: T | undefined,
  override: object | null | undefined,
): T | undefined {
  if (override === null) return undefined;
  if (override === undefined) return base;
  const merged: Record<string, unknown> = { ...(base ?? {}) };
  for (const [k, v] of Object.entries(override)) {
    if (v === undefined) continue;
    const prev = merged[k];
    // `vex` is the one nested object: merge it field by field too.
    merged[k] =
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev) &&
      typeof v === 'object' &&
      !Array.isArray(v)
        ? { ...prev, ...v }
        : v;
  }
  return schema.parse(merged);
}

export function effectiveRules(policy: Policy, environment: string): EffectiveRules {
  let perEnv = effectiveCache.get(policy);
  if (!perEnv) {
    perEnv = new Map();
    effectiveCache.set(policy, perEnv);
  }
  const cached = perEnv.get(environment);
  if (cached) return cached;
  const env = policy.environments[environment];
  if (!env) throw new ClearanceError('not-found', `policy has no environment "${environment}"`);
  const base = policy.rules;
  const o = env.rules ?? {};
  const rules: EffectiveRules = {
    trustedRepositories:
      o.trustedRepositories === null
        ? undefined
        : (o.trustedRepositories ?? base.trustedRepositories),
    exemptImages: o.exemptImages ?? base.exemptImages,
    baseImage: mergeSection(BaseImageRule, base.baseImage, o.baseImage),
    vulnerabilities: mergeSection(VulnerabilityRule, base.vulnerabilities, o.vulnerabilities),
    provenance: mergeSection(ProvenanceRule, base.provenance, o.provenance),
    image: mergeSection(ImageRule, base.image, o.image),
  };
  perEnv.set(environment, rules);
  return rules;
}

/** Environment names in a stable order. */
export function environmentNames(policy: Policy): string[] {
  return Object.keys(policy.environments).sort();
}
