// Policy evaluation: a pure, deterministic function of (image, findings, VEX, policy, exceptions, now) → verdict per environment.
import {
  type Finding,
  type Severity,
  severityRank,
  type VexStatement,
} from '../findings/finding.js';
import type { Decision, ImageRecord, Mode, Reason, Verdict } from '../ledger/image-record.js';
import { compileGlob, firstMatch, referenceDigest } from './glob.js';
import {
  type CveException,
  canonicalJson,
  type EffectiveRules,
  effectiveRules,
  environmentNames,
  expiryInstant,
  type Outcome,
  type Policy,
  RULE_IDS,
  type RuleId,
  type SeverityThreshold,
} from './policy.js';
import { compareVersions, suggestedFix } from './version.js';
import { VexIndex, type VexSettings } from './vex.js';

export interface EvaluationInput {
  image: ImageRecord;
  findings: readonly Finding[];
  vex: readonly VexStatement[];
  policy: Policy;
  policyHash: string;
  now: Date;
  /** Exceptions kept outside the policy document; they apply in every environment, next to `allowedCves`. */
  exceptions?: readonly CveException[];
}

const DAY_MS = 86_400_000;
/** Per-package reasons beyond this are folded into one summary, to keep the ledger document small. */
export const MAX_REASONS_PER_RULE = 10;
/** Ids quoted in one reason message. */
const MAX_IDS_IN_MESSAGE = 3;
const DRYRUN_PREFIX = 'dry-run, would deny: ';

const RULE_ORDER = new Map<string, number>(RULE_IDS.map((id, i) => [id, i]));

function reason(
  ruleId: RuleId,
  level: Reason['level'],
  message: string,
  remediation: string | null = null,
): Reason {
  return { ruleId, level, message, remediation };
}

function outcomeReason(
  outcome: Outcome,
  ruleId: RuleId,
  message: string,
  remediation: string,
): Reason | null {
  switch (outcome) {
    case 'allow':
      return null;
    case 'warn':
      return reason(ruleId, 'warn', message, remediation);
    case 'deny':
      return reason(ruleId, 'deny', message, remediation);
    default: {
      const never: never = outcome;
      throw new Error(`unknown outcome ${String(never)}`);
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function listPatterns(patterns: readonly string[]): string {
  const shown = patterns.slice(0, 3).join(', ');
  return patterns.length > 3 ? `${shown}, …` : shown;
}

/** A finding after merging duplicates reported by several scanners. */
interface MergedFinding {
  /** Upper case, for matching. */
  id: string;
  /** As the scanner wrote it, for messages (GHSA ids are mixed case). */
  label: string;
  /** id first, then aliases; upper case, no duplicates. */
  ids: string[];
  package: string;
  installedVersion: string;
  severity: Severity;
  fixable: boolean;
  /** Fixed versions as the scanners wrote them; resolved to a hint only for failing findings. */
  fixedVersions: string[] | null;
}

const RANK: Readonly<Record<Severity, number>> = {
  UNSPECIFIED: severityRank('UNSPECIFIED'),
  MINIMAL: severityRank('MINIMAL'),
  LOW: severityRank('LOW'),
  MEDIUM: severityRank('MEDIUM'),
  HIGH: severityRank('HIGH'),
  CRITICAL: severityRank('CRITICAL'),
};

function withAliases(id: string, ids: readonly string[], aliases: readonly string[]): string[] {
  const set = new Set(ids);
  for (const a of aliases) set.add(a.toUpperCase());
  set.delete(id);
  return [id, ...[...set].sort()];
}

/**
 * Collapses duplicates order-independently: worst severity, fixable if any scanner knows a fix,
 * union of aliases and fixed versions. Hot path (thousands of findings): keep allocations low.
 */
function mergeFindings(findings: readonly Finding[]): MergedFinding[] {
  // Keyed by id, then a short scan for package and version: cheaper than building a composite
  // string key per finding, and ids are nearly unique.
  const byId = new Map<string, MergedFinding | MergedFinding[]>();
  const out: MergedFinding[] = [];
  for (const f of findings) {
    const id = f.id.toUpperCase();
    const fixable = f.fixState === 'fixed';
    const fixed = fixable && f.fixedVersion ? f.fixedVersion : null;
    const slot = byId.get(id);
    let prev: MergedFinding | undefined;
    if (slot !== undefined) {
      if (Array.isArray(slot)) {
        prev = slot.find(
          (m) => m.package === f.package && m.installedVersion === f.installedVersion,
        );
      } else if (slot.package === f.package && slot.installedVersion === f.installedVersion) {
        prev = slot;
      }
    }
    if (!prev) {
      const merged: MergedFinding = {
        id,
        label: f.id,
        ids: f.aliases.length === 0 ? [id] : withAliases(id, [], f.aliases),
        package: f.package,
        installedVersion: f.installedVersion,
        severity: f.severity,
        fixable,
        fixedVersions: fixed ? [fixed] : null,
      };
      out.push(merged);
      if (slot === undefined) byId.set(id, merged);
      else if (Array.isArray(slot)) slot.push(merged);
      else byId.set(id, [slot, merged]);
      continue;
    }
    if (RANK[f.severity] > RANK[prev.severity]) prev.severity = f.severity;
    // Spellings may differ only in case; the smallest wins so input order never shows.
    if (f.id < prev.label) prev.label = f.id;
    prev.fixable = prev.fixable || fixable;
    if (fixed) prev.fixedVersions = prev.fixedVersions ? [...prev.fixedVersions, fixed] : [fixed];
    if (f.aliases.length > 0) prev.ids = withAliases(id, prev.ids, f.aliases);
  }
  return out;
}

/** The highest version any scanner says fixes the finding (each list read as "fixed in any of"). */
function bestFix(f: MergedFinding): string | null {
  if (!f.fixable || !f.fixedVersions) return null;
  let best: string | null = null;
  for (const v of f.fixedVersions) {
    const fix = suggestedFix(f.installedVersion, v);
    if (fix && (!best || compareVersions(fix, best) > 0)) best = fix;
  }
  return best;
}

/** Exceptions indexed by id (upper case), each list in canonical order so choices are deterministic. */
interface IndexedException {
  exception: CveException;
  key: string;
  expiresAt: number;
}

type ExceptionIndex = Map<string, IndexedException[]>;

function addException(
  byId: ExceptionIndex,
  seen: Set<string>,
  exception: CveException,
): string | null {
  const key = canonicalJson(exception);
  if (seen.has(key)) return null;
  seen.add(key);
  const id = canonicalId(exception.id);
  const entry = { exception, key, expiresAt: expiryInstant(exception.expires) };
  const bucket = byId.get(id);
  if (bucket) bucket.push(entry);
  else byId.set(id, [entry]);
  return id;
}

/** Policies are immutable once parsed, so their exception index is built once per list. */
const policyIndexCache = new WeakMap<
  readonly CveException[],
  { byId: ExceptionIndex; seen: Set<string> }
>();

function indexExceptions(
  fromPolicy: readonly CveException[],
  external: readonly CveException[] | undefined,
): ExceptionIndex {
  let cached = policyIndexCache.get(fromPolicy);
  if (!cached) {
    const byId: ExceptionIndex = new Map();
    const seen = new Set<string>();
    for (const e of fromPolicy) addException(byId, seen, e);
    for (const bucket of byId.values()) bucket.sort((x, y) => cmp(x.key, y.key));
    cached = { byId, seen };
    policyIndexCache.set(fromPolicy, cached);
  }
  if (!external || external.length === 0) return cached.byId;
  // Caller-owned lists may change between calls: index them afresh, on a copy.
  const byId: ExceptionIndex = new Map(cached.byId);
  const seen = new Set(cached.seen);
  const touched = new Set<string>();
  for (const e of external) {
    const id = canonicalId(e.id);
    if (!touched.has(id)) {
      touched.add(id);
      byId.set(id, [...(byId.get(id) ?? [])]);
    }
    addException(byId, seen, e);
  }
  for (const id of touched) byId.get(id)?.sort((x, y) => cmp(x.key, y.key));
  return byId;
}

function canonicalId(id: string): string {
  return id.toUpperCase();
}

function inScope(e: CveException, imageName: string, pkg: string): boolean {
  const { repositories, packages } = e.scope;
  if (packages && !packages.includes(pkg)) return false;
  if (repositories && !repositories.some((p) => compileGlob(p).test(imageName))) return false;
  return true;
}

/** Findings failing a severity rule, grouped by package version for one reason each. */
interface PackageGroup {
  package: string;
  installedVersion: string;
  findings: MergedFinding[];
  fix: string | null;
  worst: Severity;
}

function groupByPackage(findings: readonly MergedFinding[]): PackageGroup[] {
  const groups = new Map<string, PackageGroup>();
  for (const f of findings) {
    const key = `${f.package}\u0000${f.installedVersion}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        package: f.package,
        installedVersion: f.installedVersion,
        findings: [],
        fix: null,
        worst: f.severity,
      };
      groups.set(key, g);
    }
    g.findings.push(f);
    if (RANK[f.severity] > RANK[g.worst]) g.worst = f.severity;
    const fix = bestFix(f);
    if (fix && (!g.fix || compareVersions(fix, g.fix) > 0)) g.fix = fix;
  }
  const list = [...groups.values()];
  for (const g of list) g.findings.sort(bySeverityThenId);
  // Worst first, then most findings, then name: what to fix first leads.
  return list.sort(
    (a, b) =>
      RANK[b.worst] - RANK[a.worst] ||
      b.findings.length - a.findings.length ||
      cmp(a.package, b.package) ||
      cmp(a.installedVersion, b.installedVersion),
  );
}

function bySeverityThenId(a: MergedFinding, b: MergedFinding): number {
  return RANK[b.severity] - RANK[a.severity] || cmp(a.id, b.id);
}

function quoteIds(findings: readonly MergedFinding[]): string {
  const shown = findings.slice(0, MAX_IDS_IN_MESSAGE).map((f) => `${f.label} ${f.severity}`);
  const more = findings.length - shown.length;
  return more > 0 ? `${shown.join(', ')}, +${more} more` : shown.join(', ');
}

/** The highest severity rank a threshold lets through (exceedsThreshold, precomputed for the hot loop). */
function thresholdLimit(t: SeverityThreshold): number {
  switch (t) {
    case 'BLOCK_ALL':
      return Number.NEGATIVE_INFINITY;
    case 'ALLOW_ALL':
      return Number.POSITIVE_INFINITY;
    case 'MINIMAL':
    case 'LOW':
    case 'MEDIUM':
    case 'HIGH':
    case 'CRITICAL':
      return RANK[t];
    default: {
      const never: never = t;
      throw new Error(`unknown threshold ${String(never)}`);
    }
  }
}

/** The blocked id as a finding spelled it, when one used it as its primary id. */
function blockedLabel(id: string, hits: readonly MergedFinding[]): string {
  let label: string | null = null;
  for (const f of hits) if (f.id === id && (label === null || f.label < label)) label = f.label;
  return label ?? id;
}

function thresholdText(t: SeverityThreshold): string {
  return t === 'BLOCK_ALL' ? 'none allowed' : `allowed up to ${t}`;
}

function isRootUser(user: string | null): boolean {
  // Docker runs an image without USER as root; group is irrelevant (uid 0 is root whatever the gid).
  const u = (user ?? '').trim().split(':')[0];
  return u === '' || u === 'root' || /^0+$/.test(u);
}

/** Everything derived from the inputs once and shared by every environment. */
interface Prepared {
  input: EvaluationInput;
  imageName: string;
  findings: MergedFinding[];
  vexCache: Map<string, MergedFinding[]>;
}

function findingsAfterVex(p: Prepared, settings: VexSettings): MergedFinding[] {
  const key = `${settings.apply}/${settings.matchRepository}`;
  const cached = p.vexCache.get(key);
  if (cached) return cached;
  const index = new VexIndex(p.input.vex, p.input.image, settings);
  const kept =
    index.size === 0 ? p.findings : p.findings.filter((f) => !index.clearsIds(f.ids, f.package));
  p.vexCache.set(key, kept);
  return kept;
}

function exemptReason(rules: EffectiveRules, imageName: string): Reason | null {
  const match = firstMatch(rules.exemptImages, imageName);
  if (!match) return null;
  return reason(
    'exempt-image',
    'warn',
    `exempt: ${imageName} matches exemptImages pattern "${match}"; no rule was checked`,
  );
}

function trustedRepositoryReasons(rules: EffectiveRules, imageName: string): Reason[] {
  const patterns = rules.trustedRepositories;
  if (!patterns || firstMatch(patterns, imageName)) return [];
  return [
    reason(
      'trusted-repository',
      'deny',
      `${imageName} is not a trusted repository`,
      `build and push through the central pipeline to a repository matching ${listPatterns(patterns)}`,
    ),
  ];
}

function baseImageReasons(rules: EffectiveRules, image: ImageRecord, now: number): Reason[] {
  const rule = rules.baseImage;
  if (!rule) return [];
  const base = image.base;
  if (!base?.name) {
    const r = outcomeReason(
      rule.unknown,
      'base-image.unknown',
      'base image unknown: no base annotation, label, provenance material or known layer prefix',
      'set the org.opencontainers.image.base.name and org.opencontainers.image.base.digest annotations when building',
    );
    return r ? [r] : [];
  }
  const reasons: Reason[] = [];
  const name = base.name;
  const bareName = referenceDigest(name) ? name.slice(0, name.indexOf('@')) : name;
  if (rule.allowed && !firstMatch(rule.allowed, withoutTag(bareName))) {
    reasons.push(
      reason(
        'base-image.allowed',
        'deny',
        `base ${bareName} is not an allowed base`,
        `rebuild FROM an allowed base: ${listPatterns(rule.allowed)}`,
      ),
    );
  }
  if (rule.maxStaleDays !== undefined && base.status === 'stale') {
    const since = base.supersededAt ? Date.parse(base.supersededAt) : Number.NaN;
    const current = base.currentDigest ?? 'digest unknown';
    const published = Number.isNaN(since) ? 'date unknown' : day(since);
    const remediation = `rebuild on ${bareName} (current ${current}, published ${published})`;
    if (Number.isNaN(since)) {
      reasons.push(
        reason(
          'base-image.fresh',
          'deny',
          `base ${bareName} is stale (superseded at an unknown time)`,
          remediation,
        ),
      );
    } else {
      const lagMs = now - since;
      const days = Math.floor(lagMs / DAY_MS);
      const limitMs = rule.maxStaleDays * DAY_MS;
      if (lagMs > limitMs) {
        reasons.push(
          reason(
            'base-image.fresh',
            'deny',
            `base ${bareName} was superseded ${plural(days, 'day')} ago (allowed: ${rule.maxStaleDays})`,
            remediation,
          ),
        );
      } else {
        reasons.push(
          reason(
            'base-image.fresh',
            'warn',
            `base ${bareName} was superseded ${plural(days, 'day')} ago; denied after ${day(since + limitMs)}`,
            remediation,
          ),
        );
      }
    }
  }
  return reasons;
}

function withoutTag(name: string): string {
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

interface VulnerabilityResult {
  reasons: Reason[];
  pending: boolean;
}

function vulnerabilityReasons(
  p: Prepared,
  rules: EffectiveRules,
  external: readonly CveException[] | undefined,
  now: number,
): VulnerabilityResult {
  const rule = rules.vulnerabilities;
  if (!rule) return { reasons: [], pending: false };
  const { image } = p.input;
  const reasons: Reason[] = [];
  let pending = false;
  const status = image.scan.status;
  switch (status) {
    case 'none':
    case 'scanning':
      if (rule.requireScan) {
        pending = true;
        reasons.push(
          reason(
            'vulnerabilities.scan-required',
            'deny',
            status === 'none' ? 'no vulnerability scan yet' : 'vulnerability scan not finished',
            'wait for the scan to finish: the image is re-evaluated when it completes',
          ),
        );
      }
      break;
    case 'failed':
      reasons.push(
        reason(
          'vulnerabilities.scan-failed',
          rule.requireScan ? 'deny' : 'warn',
          `vulnerability scan failed: ${image.scan.failureReason ?? 'no reason given'}`,
          'rescan the image, or rebuild on a base whose OS the scanner supports',
        ),
      );
      break;
    case 'finished':
      break;
    default: {
      const never: never = status;
      throw new Error(`unknown scan status ${String(never)}`);
    }
  }

  const findings = findingsAfterVex(p, rule.vex);
  const blocked = new Set(rule.blockedCves);
  const exceptions = indexExceptions(rule.allowedCves, external);
  const fixableLimit = thresholdLimit(rule.maximumFixableSeverity);
  const unfixableLimit = thresholdLimit(rule.maximumUnfixableSeverity);
  const blockedHits = new Map<string, MergedFinding[]>();
  const failingFixable: MergedFinding[] = [];
  const failingUnfixable: MergedFinding[] = [];
  const inUse = new Map<string, IndexedException>();
  const expired = new Map<string, IndexedException>();

  for (const f of findings) {
    const blockedId = blocked.size > 0 ? f.ids.find((id) => blocked.has(id)) : undefined;
    if (blockedId) {
      const hits = blockedHits.get(blockedId);
      if (hits) hits.push(f);
      else blockedHits.set(blockedId, [f]);
      continue;
    }
    if (RANK[f.severity] <= (f.fixable ? fixableLimit : unfixableLimit)) continue;
    let cover: IndexedException | null = null;
    const lapsed: IndexedException[] = [];
    if (exceptions.size > 0) {
      for (const id of f.ids) {
        const bucket = exceptions.get(id);
        if (!bucket) continue;
        for (const e of bucket) {
          if (!inScope(e.exception, p.imageName, f.package)) continue;
          if (now < e.expiresAt) {
            // The longest-lived exception is the one relied on (and warned about when it nears expiry).
            if (
              !cover ||
              e.expiresAt > cover.expiresAt ||
              (e.expiresAt === cover.expiresAt && e.key < cover.key)
            ) {
              cover = e;
            }
          } else {
            lapsed.push(e);
          }
        }
      }
    }
    if (cover) {
      inUse.set(cover.key, cover);
      continue;
    }
    for (const e of lapsed) expired.set(e.key, e);
    (f.fixable ? failingFixable : failingUnfixable).push(f);
  }

  // Blocked CVEs, by id.
  const blockedIds = [...blockedHits.keys()].sort();
  for (const id of blockedIds.slice(0, MAX_REASONS_PER_RULE)) {
    const hits = groupByPackage(blockedHits.get(id) ?? []);
    const where = hits.map((g) => `${g.package} ${g.installedVersion}`).join(', ');
    const fixes = hits
      .filter((g) => g.fix)
      .map((g) => `upgrade ${g.package} ${g.installedVersion} → ${g.fix}`);
    reasons.push(
      reason(
        'vulnerabilities.blocked-cve',
        'deny',
        `${blockedLabel(id, blockedHits.get(id) ?? [])} is blocked by policy (in ${where})`,
        fixes.length === hits.length && fixes.length > 0
          ? fixes.join('; ')
          : `remove the affected package or rebuild without it; a blocked CVE cannot be excepted (only a VEX not_affected statement clears it)`,
      ),
    );
  }
  if (blockedIds.length > MAX_REASONS_PER_RULE) {
    reasons.push(
      reason(
        'vulnerabilities.blocked-cve',
        'deny',
        `… and ${blockedIds.length - MAX_REASONS_PER_RULE} more blocked CVEs (${blockedIds.slice(MAX_REASONS_PER_RULE).join(', ')})`,
        'see the image findings for the full list',
      ),
    );
  }

  reasons.push(
    ...severityReasons(
      'vulnerabilities.fixable-severity',
      'fixable',
      failingFixable,
      rule.maximumFixableSeverity,
    ),
    ...severityReasons(
      'vulnerabilities.unfixable-severity',
      'unfixable',
      failingUnfixable,
      rule.maximumUnfixableSeverity,
    ),
  );

  for (const e of [...expired.values()].sort(
    (a, b) => a.expiresAt - b.expiresAt || cmp(a.key, b.key),
  )) {
    const x = e.exception;
    reasons.push(
      reason(
        'vulnerabilities.exception-expired',
        'warn',
        `exception for ${x.id} (owner ${x.owner}: ${x.reason}) expired on ${day(e.expiresAt - 1)} and no longer applies`,
        `fix ${x.id}, or renew the exception with a new expiry if the reason still holds`,
      ),
    );
  }

  const warnMs = rule.exceptionWarningDays * DAY_MS;
  for (const e of [...inUse.values()].sort(
    (a, b) => a.expiresAt - b.expiresAt || cmp(a.key, b.key),
  )) {
    const left = e.expiresAt - now;
    if (left > warnMs) continue;
    const x = e.exception;
    const days = Math.ceil(left / DAY_MS);
    reasons.push({
      ...reason(
        'vulnerabilities.exception-expiring',
        'warn',
        `exception for ${x.id} (owner ${x.owner}) expires on ${day(e.expiresAt - 1)}, in ${plural(days, 'day')}`,
        `fix ${x.id} or renew the exception before it expires`,
      ),
      exception: x.id,
    });
  }
  return { reasons, pending };
}

function severityReasons(
  ruleId: 'vulnerabilities.fixable-severity' | 'vulnerabilities.unfixable-severity',
  kind: 'fixable' | 'unfixable',
  failing: readonly MergedFinding[],
  threshold: SeverityThreshold,
): Reason[] {
  if (failing.length === 0) return [];
  const groups = groupByPackage(failing);
  const reasons: Reason[] = [];
  for (const g of groups.slice(0, MAX_REASONS_PER_RULE)) {
    const n = g.findings.length;
    const message = `${g.package} ${g.installedVersion} has ${plural(n, `${kind} finding`)} over the threshold (${thresholdText(threshold)}): ${quoteIds(g.findings)}`;
    let remediation: string;
    if (kind === 'fixable') {
      remediation = g.fix
        ? `upgrade ${g.package} ${g.installedVersion} → ${g.fix} fixes ${plural(n, 'finding')}`
        : `upgrade ${g.package} to a fixed version`;
    } else {
      remediation = `no fix available yet: rebuild without ${g.package}, or record a VEX not_affected statement or a time-bound exception (allowedCves) for ${g.findings[0].label}`;
    }
    reasons.push(reason(ruleId, 'deny', message, remediation));
  }
  if (groups.length > MAX_REASONS_PER_RULE) {
    const rest = groups.slice(MAX_REASONS_PER_RULE);
    const count = rest.reduce((s, g) => s + g.findings.length, 0);
    reasons.push(
      reason(
        ruleId,
        'deny',
        `… and ${plural(rest.length, 'more package')} with ${plural(count, `${kind} finding`)} over the threshold (${thresholdText(threshold)})`,
        'see the image findings for the full list',
      ),
    );
  }
  return reasons;
}

function provenanceReasons(rules: EffectiveRules, image: ImageRecord): Reason[] {
  const rule = rules.provenance;
  if (!rule) return [];
  const prov = image.provenance;
  if (!prov) {
    const r = outcomeReason(
      rule.missing,
      'provenance.missing',
      'no build provenance (SLSA statement or Cloud Build occurrence) for this image',
      'build with Cloud Build or a SLSA generator so provenance is recorded for the digest',
    );
    return r ? [r] : [];
  }
  const reasons: Reason[] = [];
  if (
    rule.trustedBuilders &&
    !(prov.builderId && firstMatch(rule.trustedBuilders, prov.builderId))
  ) {
    reasons.push(
      reason(
        'provenance.builder',
        'deny',
        prov.builderId ? `builder ${prov.builderId} is not trusted` : 'provenance names no builder',
        `build with a trusted builder: ${listPatterns(rule.trustedBuilders)}`,
      ),
    );
  }
  if (
    rule.trustedSources &&
    !(prov.sourceRepository && firstMatch(rule.trustedSources, prov.sourceRepository))
  ) {
    reasons.push(
      reason(
        'provenance.source',
        'deny',
        prov.sourceRepository
          ? `source ${prov.sourceRepository} is not a trusted source repository`
          : 'provenance names no source repository',
        `build from a trusted source repository: ${listPatterns(rule.trustedSources)}`,
      ),
    );
  }
  return reasons;
}

function imageReasons(rules: EffectiveRules, image: ImageRecord, now: number): Reason[] {
  const rule = rules.image;
  if (!rule) return [];
  const reasons: Reason[] = [];
  if (rule.nonRoot && isRootUser(image.user)) {
    reasons.push(
      reason(
        'image.non-root',
        'deny',
        image.user && image.user.trim() !== ''
          ? `image runs as root (user "${image.user}")`
          : 'image sets no user, so it runs as root',
        'set USER to a non-zero uid in the Dockerfile (e.g. USER 65532:65532)',
      ),
    );
  }
  if (rule.maxAgeDays !== undefined) {
    // Reproducible builds stamp `created` with the epoch; the push time is then the better age.
    const created = image.created ? Date.parse(image.created) : Number.NaN;
    const pushed = image.pushedAt ? Date.parse(image.pushedAt) : Number.NaN;
    const born = !Number.isNaN(created) && created > 0 ? created : pushed;
    if (Number.isNaN(born)) {
      reasons.push(
        reason(
          'image.max-age',
          'deny',
          'image age unknown (no creation or push time)',
          'rebuild the image so its config records a creation time',
        ),
      );
    } else if (now - born > rule.maxAgeDays * DAY_MS) {
      reasons.push(
        reason(
          'image.max-age',
          'deny',
          `image was built ${plural(Math.floor((now - born) / DAY_MS), 'day')} ago (limit ${rule.maxAgeDays})`,
          'rebuild the image to pick up patched dependencies',
        ),
      );
    }
  }
  return reasons;
}

function decide(
  mode: Mode,
  reasons: Reason[],
  pending: boolean,
): { decision: Decision; reasons: Reason[] } {
  switch (mode) {
    case 'dryrun':
      // Dry-run never blocks: would-be denials become warnings the owner can see.
      return {
        decision: 'allow',
        reasons: reasons.map((r) =>
          r.level === 'deny' ? { ...r, level: 'warn', message: `${DRYRUN_PREFIX}${r.message}` } : r,
        ),
      };
    case 'enforce': {
      const denied = reasons.some(
        (r) => r.level === 'deny' && r.ruleId !== 'vulnerabilities.scan-required',
      );
      // A failure that a finished scan cannot undo is reported now rather than waiting.
      return { decision: denied ? 'deny' : pending ? 'pending' : 'allow', reasons };
    }
    default: {
      const never: never = mode;
      throw new Error(`unknown mode ${String(never)}`);
    }
  }
}

function evaluatePrepared(p: Prepared, environment: string): Verdict {
  const { policy, image, now, policyHash } = p.input;
  const mode = policy.environments[environment].mode;
  const rules = effectiveRules(policy, environment);
  const t = now.getTime();
  const base = { environment, mode, policyHash, evaluatedAt: now.toISOString() };
  const exempt = exemptReason(rules, p.imageName);
  if (exempt) return { ...base, decision: 'allow', reasons: [exempt] };
  const vuln = vulnerabilityReasons(p, rules, p.input.exceptions, t);
  const reasons = [
    ...trustedRepositoryReasons(rules, p.imageName),
    ...baseImageReasons(rules, image, t),
    ...vuln.reasons,
    ...provenanceReasons(rules, image),
    ...imageReasons(rules, image, t),
  ];
  // Stable sort: rule order first, each rule's own order kept.
  reasons.sort((a, b) => (RULE_ORDER.get(a.ruleId) ?? 0) - (RULE_ORDER.get(b.ruleId) ?? 0));
  return { ...base, ...decide(mode, reasons, vuln.pending) };
}

function prepare(input: EvaluationInput): Prepared {
  return {
    input,
    imageName: `${input.image.registry}/${input.image.repository}`,
    findings: mergeFindings(input.findings),
    vexCache: new Map(),
  };
}

/** The verdict for every environment of the policy. Pure: same inputs, same output, whatever their order. */
export function evaluate(input: EvaluationInput): Record<string, Verdict> {
  const p = prepare(input);
  const out: Record<string, Verdict> = {};
  for (const env of environmentNames(input.policy)) out[env] = evaluatePrepared(p, env);
  return out;
}

/** The verdict for one environment (throws not-found for an environment the policy lacks). */
export function evaluateEnvironment(input: EvaluationInput, environment: string): Verdict {
  effectiveRules(input.policy, environment);
  return evaluatePrepared(prepare(input), environment);
}

export interface VerdictSummary {
  environment: string;
  decision: Decision;
  mode: Mode;
  denyCount: number;
  warnCount: number;
  /** Distinct rule ids among the reasons, in rule order. */
  ruleIds: string[];
}

/** A compact, env-sorted view of verdicts for listings and `policy preview`. */
export function summariseVerdicts(verdicts: Readonly<Record<string, Verdict>>): VerdictSummary[] {
  return Object.keys(verdicts)
    .sort()
    .map((env) => {
      const v = verdicts[env];
      const ruleIds = [...new Set(v.reasons.map((r) => r.ruleId))].sort(
        (a, b) => (RULE_ORDER.get(a) ?? 0) - (RULE_ORDER.get(b) ?? 0) || cmp(a, b),
      );
      return {
        environment: env,
        decision: v.decision,
        mode: v.mode,
        denyCount: v.reasons.filter((r) => r.level === 'deny').length,
        warnCount: v.reasons.filter((r) => r.level === 'warn').length,
        ruleIds,
      };
    });
}

export interface VerdictChange {
  environment: string;
  /** null: the environment had no verdict before. */
  from: Decision | null;
  /** null: the environment no longer exists in the policy. */
  to: Decision | null;
  /** The new verdict's reasons (empty when the environment went away). */
  reasons: Reason[];
}

/** Environments whose decision changed; what the audit trail records and `policy preview` prints. */
export function diffVerdicts(
  before: Readonly<Record<string, Verdict>> | null | undefined,
  after: Readonly<Record<string, Verdict>>,
): VerdictChange[] {
  const prev = before ?? {};
  const envs = [...new Set([...Object.keys(prev), ...Object.keys(after)])].sort();
  const changes: VerdictChange[] = [];
  for (const env of envs) {
    const from = prev[env]?.decision ?? null;
    const to = after[env]?.decision ?? null;
    if (from === to) continue;
    changes.push({ environment: env, from, to, reasons: after[env]?.reasons ?? [] });
  }
  return changes;
}
