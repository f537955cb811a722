// Which VEX statements apply to an image, and whether they clear a finding (not_affected / fixed).
import type { Finding, VexStatement, VexStatus } from '../findings/finding.js';
import type { ImageRecord } from '../image-record.js';
import { canonicalImageName } from '../image-ref/image-ref.js';
import { compileGlob, referenceDigest, referenceName } from './glob.js';

export interface VexSettings {
  apply: boolean;
  /** Accept products that name a repository (no digest). Off by default: see matchProduct. */
  matchRepository: boolean;
}

/**
 * The signers whose VEX counts, each with its trust rank (0 = most trusted: its place in the
 * policy's `trust.signers`). A statement without one of them is never applied.
 */
export type VexSignerRanks = ReadonlyMap<string, number>;

interface ApplicableStatement {
  /** Lower is more trusted: a less trusted statement never overrides a more trusted one. */
  rank: number;
  status: VexStatus;
  /** Milliseconds; statements without a timestamp count as oldest. */
  time: number;
  /** Package names the statement is limited to; null = the whole product. */
  packages: ReadonlySet<string> | null;
}

/** Parsed parts of a `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS` purl. */
export interface Purl {
  type: string;
  /** Decoded namespace segments joined by '/', e.g. golang.org/x for pkg:golang/golang.org/x/net; null when none. */
  namespace: string | null;
  name: string;
  version: string | null;
  qualifiers: Record<string, string>;
}

export function parsePurl(id: string): Purl | null {
  if (!id.startsWith('pkg:')) return null;
  let rest = id.slice(4);
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const qualifiers: Record<string, string> = {};
  const q = rest.indexOf('?');
  if (q >= 0) {
    for (const part of rest.slice(q + 1).split('&')) {
      const eq = part.indexOf('=');
      if (eq > 0) qualifiers[part.slice(0, eq).toLowerCase()] = safeDecode(part.slice(eq + 1));
    }
    rest = rest.slice(0, q);
  }
  let version: string | null = null;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    version = safeDecode(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  if (slash < 0) return null;
  const type = rest.slice(0, slash).toLowerCase();
  const path = rest.slice(slash + 1).split('/');
  const name = safeDecode(path[path.length - 1] ?? '');
  if (!name) return null;
  const namespace = path.length > 1 ? path.slice(0, -1).map(safeDecode).join('/') : null;
  return { type, namespace, name, version, qualifiers };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Whether a VEX product id designates this image. A digest (in a purl version or an image
 * reference) matches the image's manifest digest or an index that lists it: the digest names the
 * exact content the author vouched for, whatever repository it was copied to. Products without a
 * digest (a purl with only repository_url, a repository glob, a tag) name every image ever pushed
 * there, so they count only when the policy sets `vex.matchRepository`.
 */
export function matchProduct(
  product: string,
  image: Pick<ImageRecord, 'registry' | 'repository' | 'digest' | 'parents'>,
  matchRepository: boolean,
): boolean {
  const digests = [image.digest, ...image.parents];
  // Already canonical when it comes from the ledger; folded again so every side uses one rule.
  const imageName = canonicalImageName(`${image.registry}/${image.repository}`);
  const purl = parsePurl(product);
  if (purl) {
    if (purl.type !== 'oci' && purl.type !== 'docker') return false;
    if (purl.version?.startsWith('sha256:')) return digests.includes(purl.version);
    if (!matchRepository) return false;
    const repo = purl.qualifiers.repository_url;
    return repo !== undefined && compileGlob(canonicalImageName(repo)).test(imageName);
  }
  const digest = referenceDigest(product);
  if (digest) return digests.includes(digest);
  return matchRepository && compileGlob(canonicalImageName(referenceName(product))).test(imageName);
}

/**
 * The names a finding may give the package a subcomponent purl designates, by the identity each
 * ecosystem uses: Go modules and npm scopes by their full path (Trivy and Grype name Go findings
 * `golang.org/x/net`, npm ones `@scope/pkg`); Maven by `group:artifact` (Trivy) and the artifact
 * alone (Grype); OS packages by name (their namespace is the distribution, not part of the name).
 */
export function packageNames(subcomponent: string): string[] {
  const purl = parsePurl(subcomponent);
  if (!purl) {
    const at = subcomponent.indexOf('@');
    return [at > 0 ? subcomponent.slice(0, at) : subcomponent];
  }
  const ns = purl.namespace;
  if (!ns) return [purl.name];
  switch (purl.type) {
    case 'golang':
    case 'npm':
    case 'swift':
    case 'composer':
    case 'github':
      return [`${ns}/${purl.name}`];
    case 'maven':
      return [`${ns}:${purl.name}`, purl.name];
    default:
      return [purl.name];
  }
}

/** Statements that apply to one image, indexed by every vulnerability id they name (upper case). */
export class VexIndex {
  private readonly byId = new Map<string, ApplicableStatement[]>();

  constructor(
    statements: readonly VexStatement[],
    image: Pick<ImageRecord, 'registry' | 'repository' | 'digest' | 'parents'>,
    settings: VexSettings,
    signers: VexSignerRanks,
  ) {
    if (!settings.apply) return;
    for (const s of statements) {
      const rank = s.signer === null ? undefined : signers.get(s.signer);
      if (rank === undefined) continue;
      if (!s.products.some((p) => matchProduct(p, image, settings.matchRepository))) continue;
      const time = s.timestamp ? Date.parse(s.timestamp) : Number.NEGATIVE_INFINITY;
      const applicable: ApplicableStatement = {
        rank,
        status: s.status,
        time: Number.isNaN(time) ? Number.NEGATIVE_INFINITY : time,
        packages:
          s.subcomponents.length > 0 ? new Set(s.subcomponents.flatMap(packageNames)) : null,
      };
      for (const id of new Set([s.vulnerability, ...s.aliases].map((i) => i.toUpperCase()))) {
        const list = this.byId.get(id);
        if (list) list.push(applicable);
        else this.byId.set(id, [applicable]);
      }
    }
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * Whether VEX clears the finding: among the statements that match its vulnerability (or an
   * alias) and package, those of the most trusted signer count, and of them the latest decides;
   * on a tie any `affected`/`under_investigation` wins, so the answer never depends on the order
   * documents were ingested.
   */
  clears(finding: Pick<Finding, 'id' | 'aliases' | 'package'>): boolean {
    return this.clearsIds(
      [finding.id, ...finding.aliases].map((i) => i.toUpperCase()),
      finding.package,
    );
  }

  /** `clears` for ids already upper-cased (the evaluation's hot path). */
  clearsIds(ids: readonly string[], pkg: string): boolean {
    if (this.byId.size === 0) return false;
    let best = Number.POSITIVE_INFINITY;
    let latest = Number.NEGATIVE_INFINITY;
    let found = false;
    let cleared = true;
    for (const id of ids) {
      const list = this.byId.get(id);
      if (!list) continue;
      for (const s of list) {
        if (s.packages && !s.packages.has(pkg)) continue;
        const clearing = s.status === 'not_affected' || s.status === 'fixed';
        if (!found || s.rank < best || (s.rank === best && s.time > latest)) {
          found = true;
          best = s.rank;
          latest = s.time;
          cleared = clearing;
        } else if (s.rank === best && s.time === latest) {
          cleared = cleared && clearing;
        }
      }
    }
    return found && cleared;
  }
}
