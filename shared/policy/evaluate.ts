// Policy evaluation: a pure, deterministic function of (image, findings, VEX, policy, exceptions, now) → verdict per environment.
import {
  type Finding,
  type Severity,
  severityRank,
  type VexStatement,
} from '../findings/finding.js';
import { type FixSighting, fixKey } from '../findings/fix-sighting.js';
import type { BaseImage, ImageRecord, ScannerRun, ScanStatus } from '../image-record.js';
import { canonicalImageName } from '../image-ref/image-ref.js';
import { type Decision, DRYRUN_PREFIX, type Mode, type Reason, type Verdict } from '../verdict.js';
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
  type Scanner,
  type SeverityThreshold,
} from './policy.js';
import { compareVersions, suggestedFix } from './version.js';
import { matchProduct, VexIndex, type VexSettings, type VexSignerRanks } from './vex.js';

export interface EvaluationInput {
  image: ImageRecord;
  findings: readonly Finding[];
  vex: readonly VexStatement[];
  policy: Policy;
  policyHash: string;
  now: Date;
  /** Exceptions kept outside the policy document; they apply in every environment, next to `allowedCves`. */
  exceptions?: readonly CveException[];
  /**
   * When Clearance first saw each fix (per vulnerability, package and fixed version): the start of
   * a fix grace period. A fixable finding without a sighting gets no grace.
   */
  fixSightings?: readonly FixSighting[];
}

const DAY_MS = 86_400_000;
/** Per-package reasons beyond this are folded into one summary, to keep the ledger document small. */
export const MAX_REASONS_PER_RULE = 10;
/** Ids quoted in one reason message. */
const MAX_IDS_IN_MESSAGE = 3;

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
  /** Set when the scanner gave no severity and the policy's unknownFixableSeverity was used instead. */
  countedAs?: Severity;
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
  const shown = findings
    .slice(0, MAX_IDS_IN_MESSAGE)
    .map((f) =>
      f.countedAs
        ? `${f.label} (severity unknown, counted as ${f.countedAs})`
        : `${f.label} ${f.severity}`,
    );
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
  /** fixKey → first-seen instant (ms). */
  sightings: Map<string, number>;
}

const vexSignerCache = new WeakMap<Policy, VexSignerRanks>();

/** The policy's signers that may sign VEX, ranked by their place in `trust.signers`. */
function vexSigners(policy: Policy): VexSignerRanks {
  let ranks = vexSignerCache.get(policy);
  if (!ranks) {
    ranks = new Map(
      policy.trust.signers
        .map((s, i) => [s.name, i] as const)
        .filter(([name]) =>
          policy.trust.signers.find((s) => s.name === name)?.evidence.includes('vex'),
        ),
    );
    vexSignerCache.set(policy, ranks);
  }
  return ranks;
}

/** Scanner id of a scan summary kept before per-scanner runs existed (its `scanner` names the tool). */
function legacyScanner(name: string | null): Scanner | null {
  if (name === 'artifact-analysis' || name === 'container-analysis') return 'artifact-analysis';
  if (name && /^trivy\b/i.test(name)) return 'trivy';
  if (name && /^grype\b/i.test(name)) return 'grype';
  return null;
}

/** Each scanner's latest run; records written before per-scanner runs count their one summary for its scanner. */
function scannerRuns(
  image: ImageRecord,
): Record<string, Pick<ScannerRun, 'status' | 'failureReason'>> {
  if (Object.keys(image.scans).length > 0) return image.scans;
  const legacy = image.scan.status === 'none' ? null : legacyScanner(image.scan.scanner);
  return legacy ? { [legacy]: image.scan } : {};
}

/** The state of the required scan: finished if any named scanner finished, else failed, scanning or none. */
function requiredScan(
  image: ImageRecord,
  scanners: readonly Scanner[],
): { status: ScanStatus; failureReason: string | null } {
  const runs = scannerRuns(image);
  const named = scanners.map((s) => runs[s]).filter((r) => r !== undefined);
  for (const status of ['finished', 'failed', 'scanning'] as const) {
    const run = named.find((r) => r.status === status);
    if (run) return { status, failureReason: run.failureReason };
  }
  return { status: 'none', failureReason: null };
}

function findingsAfterVex(p: Prepared, settings: VexSettings): MergedFinding[] {
  const key = `${settings.apply}/${settings.matchRepository}`;
  const cached = p.vexCache.get(key);
  if (cached) return cached;
  const index = new VexIndex(p.input.vex, p.input.image, settings, vexSigners(p.input.policy));
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

function claimText(base: BaseImage): string {
  if (base.name && base.digest) return `${base.name}@${base.digest}`;
  return base.name ?? base.digest ?? 'unnamed base';
}

/**
 * What the layer check does to a base claim: a reason to report, and whether the claim is still
 * obeyed by the other base rules. A base Clearance inferred from the layers is proven by construction.
 */
function layerCheck(
  rule: NonNullable<EffectiveRules['baseImage']>,
  base: BaseImage,
): { reason: Reason | null; obeyed: boolean } {
  if (base.source === 'layers' || rule.verifyLayers === 'off')
    return { reason: null, obeyed: true };
  const v = base.verification;
  const claim = claimText(base);
  const where = base.source === 'label' ? 'label' : 'annotation';
  const enforce = rule.verifyLayers === 'enforce';
  switch (v?.status ?? 'unchecked') {
    case 'verified':
      return { reason: null, obeyed: true };
    case 'mismatch':
      return {
        reason: reason(
          'base-image.layers',
          enforce ? 'deny' : 'warn',
          `base claim ${claim} is not proven by the image's layers: ${v?.detail ?? 'layers differ'}`,
          `rebuild FROM ${claim} so the image starts with its layers, or correct the org.opencontainers.image.base.* ${where} to the base actually used`,
        ),
        obeyed: !enforce,
      };
    case 'unverified':
    case 'unchecked': {
      // Never checked (recorded before verification existed): nothing to say unless enforcing.
      if (!v && !enforce) return { reason: null, obeyed: true };
      const why = v?.detail ?? 'it was never checked';
      return {
        reason: reason(
          'base-image.layers',
          'warn',
          enforce
            ? `base claim ${claim} could not be verified (${why}); the base is treated as unknown`
            : `base claim ${claim} could not be verified: ${why}`,
          `make the base ${claim} readable to Clearance (registry access, base digest in org.opencontainers.image.base.digest) so its layers can be compared`,
        ),
        obeyed: !enforce,
      };
    }
    default:
      throw new Error(`unknown verification status ${String(v?.status)}`);
  }
}

function baseImageReasons(rules: EffectiveRules, image: ImageRecord, now: number): Reason[] {
  const rule = rules.baseImage;
  if (!rule) return [];
  const claimed = image.base;
  const check = claimed && (claimed.name || claimed.digest) ? layerCheck(rule, claimed) : null;
  if (check?.reason?.level === 'deny') return [check.reason];
  const head = check?.reason ? [check.reason] : [];
  const base = check && !check.obeyed ? null : claimed;
  if (!base?.name) {
    const r = outcomeReason(
      rule.unknown,
      'base-image.unknown',
      'base image unknown: no base annotation, label, provenance material or known layer prefix',
      'set the org.opencontainers.image.base.name and org.opencontainers.image.base.digest annotations when building',
    );
    return r ? [...head, r] : head;
  }
  const reasons: Reason[] = [...head];
  const name = base.name;
  const bareName = referenceDigest(name) ? name.slice(0, name.indexOf('@')) : name;
  // `FROM debian:12` names docker.io/library/debian: compared in the form the allowed globs are kept in.
  if (rule.allowed && !firstMatch(rule.allowed, canonicalImageName(withoutTag(bareName)))) {
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
  const required = rule.requireScan.length > 0;
  // Without a required scanner, the latest scan of any kind is still reported when it failed.
  const { status, failureReason } = required
    ? requiredScan(image, rule.requireScan)
    : { status: image.scan.status, failureReason: image.scan.failureReason };
  const which = rule.requireScan.join(' or ');
  switch (status) {
    case 'none':
    case 'scanning':
      if (required) {
        pending = true;
        reasons.push(
          reason(
            'vulnerabilities.scan-required',
            'deny',
            status === 'none'
              ? `no vulnerability scan by ${which} yet`
              : `vulnerability scan by ${which} not finished`,
            'wait for the scan to finish: the image is re-evaluated when it completes',
          ),
        );
      }
      break;
    case 'failed':
      reasons.push(
        reason(
          'vulnerabilities.scan-failed',
          required ? 'deny' : 'warn',
          `vulnerability scan failed: ${failureReason ?? 'no reason given'}`,
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
  const covered = new Map<string, MergedFinding[]>();
  const expired = new Map<string, IndexedException>();
  const inGrace: Grace[] = [];

  for (const f of findings) {
    const blockedId = blocked.size > 0 ? f.ids.find((id) => blocked.has(id)) : undefined;
    if (blockedId) {
      const hits = blockedHits.get(blockedId);
      if (hits) hits.push(f);
      else blockedHits.set(blockedId, [f]);
      continue;
    }
    const counted =
      f.fixable && f.severity === 'UNSPECIFIED' ? rule.unknownFixableSeverity : f.severity;
    if (RANK[counted] <= (f.fixable ? fixableLimit : unfixableLimit)) continue;
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
      const list = covered.get(cover.key);
      if (list) list.push(f);
      else covered.set(cover.key, [f]);
      continue;
    }
    for (const e of lapsed) expired.set(e.key, e);
    if (f.fixable && rule.fixGraceDays) {
      const grace = graceOf(p, f, rule.fixGraceDays, now);
      if (grace) {
        inGrace.push(grace);
        continue;
      }
    }
    const failing = counted === f.severity ? f : { ...f, severity: counted, countedAs: counted };
    (f.fixable ? failingFixable : failingUnfixable).push(failing);
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
    ...graceReasons(inGrace, rule.maximumFixableSeverity, rule.fixGraceWarningDays, now),
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
  const relied = [...inUse.values()].sort((a, b) => a.expiresAt - b.expiresAt || cmp(a.key, b.key));
  // An exception that lets a finding pass is said, with its reason, owner and expiry: the verdict
  // shows what it rests on, and who to ask.
  for (const e of relied) {
    const x = e.exception;
    const where = groupByPackage(covered.get(e.key) ?? [])
      .map((g) => `${g.package} ${g.installedVersion}`)
      .join(', ');
    reasons.push(
      reason(
        'vulnerabilities.exception-applied',
        'warn',
        `${x.id}${where ? ` (${where})` : ''} accepted by exception until ${day(e.expiresAt - 1)}, owner ${x.owner}: ${x.reason}`,
        null,
      ),
    );
  }
  for (const e of relied) {
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

/** A fixable finding over the threshold still inside its grace period. */
interface Grace {
  finding: MergedFinding;
  /** When the fix was first seen, and when the grace ends (00:00 UTC, so the daily run flips it that day). */
  since: number;
  ends: number;
  fix: string;
}

function startOfDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/**
 * The grace a fixable finding is in at `now`, or null. The clock starts at the earliest sighting
 * of any of its fixes under any of its ids; no sighting, no grace (the fix date is unknown).
 */
function graceOf(
  p: Prepared,
  f: MergedFinding,
  days: NonNullable<EffectiveRules['vulnerabilities']>['fixGraceDays'],
  now: number,
): Grace | null {
  const allowed = days?.[f.severity];
  if (!allowed || !f.fixedVersions || p.sightings.size === 0) return null;
  let since = Number.POSITIVE_INFINITY;
  let fix: string | null = null;
  for (const v of f.fixedVersions) {
    for (const id of f.ids) {
      const at = p.sightings.get(fixKey(id, f.package, v));
      if (at !== undefined && (at < since || (at === since && fix !== null && v < fix))) {
        since = at;
        fix = v;
      }
    }
  }
  if (fix === null) return null;
  const ends = startOfDay(since) + allowed * DAY_MS;
  if (now >= ends) return null;
  return { finding: f, since, ends, fix: bestFix(f) ?? fix };
}

function graceReasons(
  inGrace: readonly Grace[],
  threshold: SeverityThreshold,
  warningDays: number,
  now: number,
): Reason[] {
  if (inGrace.length === 0) return [];
  // One reason per package version and end date, soonest end first.
  const groups = new Map<string, Grace[]>();
  for (const g of inGrace) {
    const key = `${g.finding.package}\u0000${g.finding.installedVersion}\u0000${g.ends}`;
    const list = groups.get(key);
    if (list) list.push(g);
    else groups.set(key, [g]);
  }
  const sorted = [...groups.values()].sort(
    (a, b) =>
      a[0].ends - b[0].ends ||
      cmp(a[0].finding.package, b[0].finding.package) ||
      cmp(a[0].finding.installedVersion, b[0].finding.installedVersion),
  );
  const reasons: Reason[] = [];
  for (const list of sorted.slice(0, MAX_REASONS_PER_RULE)) {
    const findings = list.map((g) => g.finding).sort(bySeverityThenId);
    const first = list.reduce((a, b) =>
      a.since < b.since || (a.since === b.since && a.fix < b.fix) ? a : b,
    );
    const { package: pkg, installedVersion } = first.finding;
    const ending = first.ends - now <= warningDays * DAY_MS;
    const left = Math.ceil((first.ends - now) / DAY_MS);
    const ids = quoteIds(findings);
    reasons.push({
      ...reason(
        ending ? 'vulnerabilities.fix-grace-ending' : 'vulnerabilities.fix-grace',
        'warn',
        `${pkg} ${installedVersion} has ${plural(findings.length, 'fixable finding')} over the threshold (${thresholdText(threshold)}): ${ids}; allowed until ${day(first.ends)}: fix ${first.fix} available since ${day(first.since)}${ending ? ` (grace ends in ${plural(left, 'day')})` : ''}`,
        `upgrade ${pkg} ${installedVersion} → ${first.fix} before ${day(first.ends)}, when the image is denied`,
      ),
      grace: {
        package: pkg,
        installedVersion,
        fixedVersion: first.fix,
        vulnerabilities: ids,
        availableSince: day(first.since),
        endsOn: day(first.ends),
      },
    });
  }
  if (sorted.length > MAX_REASONS_PER_RULE) {
    const rest = sorted.slice(MAX_REASONS_PER_RULE);
    reasons.push(
      reason(
        'vulnerabilities.fix-grace',
        'warn',
        `… and ${plural(rest.length, 'more package')} with fixable findings inside their grace period`,
        'see the image findings for the full list',
      ),
    );
  }
  return reasons;
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

/**
 * The base-image and image rules read the manifest and config, which a push does not carry: while
 * the registry has not been read (enrichment `needed`) they are pending, and when it answered for
 * good that the image cannot be read (`failed`) they deny. Null when they can be judged.
 */
function enrichmentGate(
  rules: EffectiveRules,
  image: ImageRecord,
): { reasons: Reason[]; pending: boolean } | null {
  const state = image.enrichment;
  if (!state || state.status === 'done') return null;
  const needs =
    Boolean(rules.baseImage) ||
    Boolean(rules.image && (rules.image.nonRoot || rules.image.maxAgeDays !== undefined));
  if (!needs) return null;
  switch (state.status) {
    case 'needed':
      return {
        pending: true,
        reasons: [
          reason(
            'image.enrichment-pending',
            'warn',
            state.attempts > 0
              ? `waiting for the image's manifest and config from the registry (${plural(state.attempts, 'attempt')} so far${state.reason ? `, last: ${state.reason}` : ''})`
              : "waiting for the image's manifest and config from the registry",
            'nothing to do if the registry is reachable: the read is retried until it succeeds',
          ),
        ],
      };
    case 'failed':
      return {
        pending: false,
        reasons: [
          reason(
            'image.unreadable',
            'deny',
            `the image's manifest or config could not be read from the registry: ${state.reason ?? 'unknown error'}`,
            'give Clearance read access to the repository and a valid manifest and config, then push a new build: a digest that could not be read stays denied',
          ),
        ],
      };
    default: {
      const never: never = state.status;
      throw new Error(`unknown enrichment status ${String(never)}`);
    }
  }
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

/** Unverified uploads shown with the verdict, never deciding it. */
const MAX_UNVERIFIED_REASONS = 3;

/**
 * Unverified evidence, shown as warnings: provenance uploads that did not verify, and VEX
 * statements about this image that no trusted signer signed. They never change the decision.
 */
function unverifiedReasons(p: Prepared): Reason[] {
  const out: Reason[] = [];
  const remedy = "sign it with a key or keyless identity named in the policy's trust.signers";
  for (const u of p.input.image.unverified.slice(-MAX_UNVERIFIED_REASONS).reverse())
    out.push(
      reason(
        'evidence.unverified',
        'warn',
        `unverified ${u.kind} ignored (${u.claim}${u.uploader ? `, uploaded by ${u.uploader}` : ''}): ${u.reason}`,
        remedy,
      ),
    );
  const ranks = vexSigners(p.input.policy);
  const ids = new Set(p.findings.flatMap((f) => f.ids));
  const vex = new Set<string>();
  for (const s of p.input.vex) {
    if (s.signer !== null && ranks.has(s.signer)) continue;
    if (!ids.has(s.vulnerability.toUpperCase())) continue;
    if (!s.products.some((prod) => matchProduct(prod, p.input.image, true))) continue;
    vex.add(
      `VEX ${s.status} for ${s.vulnerability} not applied (document ${s.documentId}${s.author ? ` by ${s.author}` : ''}): ${s.signer ? `signer ${s.signer} may not sign VEX under this policy` : 'not signed by a trusted signer'}`,
    );
  }
  // Sorted and capped, so the reasons never depend on the order statements were stored.
  for (const message of [...vex].sort().slice(0, MAX_UNVERIFIED_REASONS))
    out.push(reason('evidence.unverified', 'warn', message, remedy));
  return out;
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
  const gate = enrichmentGate(rules, image);
  const reasons = [
    ...trustedRepositoryReasons(rules, p.imageName),
    // Rules that read the registry's facts wait for them instead of judging empty fields.
    ...(gate ? gate.reasons : baseImageReasons(rules, image, t)),
    ...vuln.reasons,
    ...provenanceReasons(rules, image),
    ...(gate ? [] : imageReasons(rules, image, t)),
    ...unverifiedReasons(p),
  ];
  // Stable sort: rule order first, each rule's own order kept.
  reasons.sort((a, b) => (RULE_ORDER.get(a.ruleId) ?? 0) - (RULE_ORDER.get(b.ruleId) ?? 0));
  return { ...base, ...decide(mode, reasons, vuln.pending || gate?.pending === true) };
}

function prepare(input: EvaluationInput): Prepared {
  return {
    input,
    imageName: `${input.image.registry}/${input.image.repository}`,
    findings: mergeFindings(input.findings),
    vexCache: new Map(),
    sightings: indexSightings(input.fixSightings),
  };
}

function indexSightings(list: readonly FixSighting[] | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of list ?? []) {
    const at = Date.parse(s.firstSeenAt);
    if (Number.isNaN(at)) continue;
    const key = fixKey(s.vulnerability, s.package, s.fixedVersion);
    const prev = out.get(key);
    if (prev === undefined || at < prev) out.set(key, at);
  }
  return out;
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
