// Reads builder id, source repository and subjects from SLSA provenance: in-toto Statements, DSSE envelopes, Cloud Build BUILD occurrences.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import type { Provenance } from '../image-record.js';
import { type ImageRef, isDigest, parseResourceUri } from '../image-ref/image-ref.js';
import { parseJsonBytes } from '../json-bytes.js';
import { parseInput } from '../parse-input.js';

// Nothing here verifies a signature: callers that trust the result must have verified the
// envelope (or trust Container Analysis, which only Cloud Build can write BUILD occurrences to).

export const STATEMENT_TYPES = [
  'https://in-toto.io/Statement/v0.1',
  'https://in-toto.io/Statement/v1',
] as const;
export const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';
export const SLSA_V01 = 'https://slsa.dev/provenance/v0.1';
export const SLSA_V1 = 'https://slsa.dev/provenance/v1';
/** The DSSE payload type of an in-toto Statement (the one definition; attestations/dsse.ts re-exports it). */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface Subject {
  /** As the statement names it: an image reference, a URL or a file name. */
  name: string | null;
  /** sha256:… or sha512:… */
  digest: string;
}

/** What carried the statement: a bare in-toto Statement, a DSSE envelope, a Sigstore bundle or a BUILD occurrence. */
export const PROVENANCE_CONTAINERS = [
  'statement',
  'dsse',
  'sigstore-bundle',
  'build-occurrence',
] as const;
export type ProvenanceContainer = (typeof PROVENANCE_CONTAINERS)[number];

export interface ProvenanceResult {
  provenance: Provenance;
  container: ProvenanceContainer;
  /** The Sigstore bundle's media type when the statement came in a bundle. */
  bundleMediaType?: string;
  /** Always false: this module reads statements, it never checks a signature (see the note above). */
  signatureVerified: false;
  subjects: Subject[];
  predicateType: string;
  /** The image a BUILD occurrence is attached to (its resourceUri); null for statements. */
  resource: (ImageRef & { digest: string }) | null;
}

const text = (max: number) => z.string().max(max);

/**
 * protobuf Struct as the Node client returns it ({fields: {k: {stringValue: …}}}) → plain JSON;
 * REST JSON is plain already and passes through unchanged.
 */
export function plainJson(v: unknown, depth = 0): unknown {
  if (depth > 50 || typeof v !== 'object' || v === null) return v;
  // bytes fields (a DSSE envelope's payload) arrive as Buffers: REST JSON carries them as base64.
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map((x) => plainJson(x, depth + 1));
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (
    keys.length === 1 &&
    keys[0] === 'fields' &&
    typeof o.fields === 'object' &&
    o.fields !== null
  ) {
    return Object.fromEntries(
      Object.entries(o.fields as Record<string, unknown>).map(([k, x]) => [
        k,
        structValue(x, depth + 1),
      ]),
    );
  }
  return Object.fromEntries(keys.map((k) => [k, plainJson(o[k], depth + 1)]));
}

const VALUE_KINDS = [
  'nullValue',
  'numberValue',
  'stringValue',
  'boolValue',
  'structValue',
  'listValue',
] as const;
type ValueKind = (typeof VALUE_KINDS)[number];

/** One google.protobuf.Value: its `kind` says which member is set (oneofs: true), else the set member does. */
function structValue(v: unknown, depth: number): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const kind: ValueKind | undefined = (VALUE_KINDS as readonly unknown[]).includes(o.kind)
    ? (o.kind as ValueKind)
    : VALUE_KINDS.find((k) => o[k] !== undefined && o[k] !== null);
  switch (kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return o.numberValue;
    case 'stringValue':
      return o.stringValue;
    case 'boolValue':
      return o.boolValue;
    case 'structValue':
      return plainJson(o.structValue, depth);
    case 'listValue':
      return ((o.listValue as { values?: unknown[] } | null)?.values ?? []).map((x) =>
        structValue(x, depth + 1),
      );
    case undefined:
      return plainJson(o, depth);
    default: {
      const never: never = kind;
      return never;
    }
  }
}

const SubjectSchema = z.object({
  name: text(2000).nullish(),
  digest: z.record(z.string(), text(200)).nullish(),
});

const Material = z.object({
  uri: text(2000).nullish(),
  digest: z.record(z.string(), text(200)).nullish(),
});

const PredicateV02 = z.object({
  builder: z.object({ id: text(2000).nullish() }).nullish(),
  buildType: text(2000).nullish(),
  invocation: z
    .object({ configSource: z.object({ uri: text(2000).nullish() }).nullish() })
    .nullish(),
  materials: z.array(Material).max(10_000).nullish(),
});

const PredicateV01 = z.object({
  builder: z.object({ id: text(2000).nullish() }).nullish(),
  recipe: z.object({ type: text(2000).nullish() }).nullish(),
  materials: z.array(Material).max(10_000).nullish(),
});

/** in-toto's own provenance predicate (Grafeas InTotoProvenance): builderConfig instead of builder. */
const InTotoProvenancePredicate = z.object({
  builderConfig: z.object({ id: text(2000).nullish() }).nullish(),
  recipe: z.object({ type: text(2000).nullish() }).nullish(),
  materials: z
    .array(z.union([text(2000), Material]))
    .max(10_000)
    .nullish(),
});

const PredicateV1 = z.object({
  buildDefinition: z
    .object({
      buildType: text(2000).nullish(),
      externalParameters: z.record(z.string(), z.unknown()).nullish(),
      resolvedDependencies: z
        .array(
          z.object({
            uri: text(2000).nullish(),
            name: text(2000).nullish(),
            digest: z.record(z.string(), text(200)).nullish(),
          }),
        )
        .max(10_000)
        .nullish(),
    })
    .nullish(),
  runDetails: z.object({ builder: z.object({ id: text(2000).nullish() }).nullish() }).nullish(),
});

/** An in-toto Statement as read from outside (bounded; any predicate); attestations/dsse.ts types the ones Clearance writes. */
export const ProvenanceStatement = z.object({
  _type: z.enum(STATEMENT_TYPES, { message: `must be one of ${STATEMENT_TYPES.join(', ')}` }),
  subject: z.array(SubjectSchema).min(1, 'a statement names at least one subject').max(10_000),
  predicateType: text(2000),
  predicate: z.record(z.string(), z.unknown(), { error: 'predicate must be an object' }),
});

/** A web URL of one commit: GitHub's /commit/<sha>, GitLab's /-/commit/<sha> (Cloud Build materials use these). */
const COMMIT_URL = /\/(?:-\/)?commits?\/[0-9a-f]{7,64}\/?$/;

/**
 * The repository a source URI names, without the ref: git+https://host/owner/repo@refs/heads/main,
 * BuildKit's https://host/owner/repo.git#<ref or commit> and Cloud Build's
 * https://host/owner/repo/commit/<sha> all give https://host/owner/repo.
 */
export function normaliseSourceRepository(uri: string | null | undefined): string | null {
  if (!uri) return null;
  let u = uri.trim();
  if (u === '') return null;
  if (u.startsWith('git+')) u = u.slice(4);
  // A fragment or query names a ref or a subdirectory of the repository, never the repository.
  const hash = u.indexOf('#');
  if (hash >= 0) u = u.slice(0, hash);
  const query = u.indexOf('?');
  if (query >= 0) u = u.slice(0, query);
  u = u.replace(COMMIT_URL, '');
  const scheme = u.indexOf('://');
  const pathStart = scheme >= 0 ? u.indexOf('/', scheme + 3) : u.indexOf('/');
  if (pathStart >= 0) {
    const at = u.indexOf('@', pathStart);
    if (at >= 0) u = u.slice(0, at);
  }
  if (u.endsWith('.git')) u = u.slice(0, -4);
  return u.slice(0, 2000);
}

function looksLikeSource(m: {
  uri?: string | null;
  digest?: Record<string, string> | null;
}): boolean {
  if (!m.uri) return false;
  if (m.uri.startsWith('git+')) return true;
  if (COMMIT_URL.test(m.uri.split(/[?#]/)[0] ?? '')) return true;
  const d = m.digest ?? {};
  return 'gitCommit' in d || 'sha1' in d;
}

function subjectsOf(list: ReadonlyArray<z.infer<typeof SubjectSchema>>, what: string): Subject[] {
  const out: Subject[] = [];
  list.forEach((s, i) => {
    for (const [algorithm, hex] of Object.entries(s.digest ?? {})) {
      if (algorithm !== 'sha256' && algorithm !== 'sha512') continue;
      const digest = `${algorithm}:${hex}`;
      if (!isDigest(digest)) {
        throw new InvalidInputError(
          `invalid ${what}: subject.${i}.digest.${algorithm} is not ${algorithm === 'sha256' ? 64 : 128} lower-case hex`,
        );
      }
      out.push({ name: s.name ? s.name : null, digest });
    }
  });
  return out;
}

interface Read {
  builderId: string | null;
  sourceRepository: string | null;
  buildType: string | null;
}

function nonEmpty(s: string | null | undefined): string | null {
  return s ? s : null;
}

function readV02(predicate: unknown, what: string): Read {
  const p = parseInput(PredicateV02, predicate ?? {}, `${what} predicate`);
  const source =
    nonEmpty(p.invocation?.configSource?.uri) ?? (p.materials ?? []).find(looksLikeSource)?.uri;
  return {
    builderId: nonEmpty(p.builder?.id),
    sourceRepository: normaliseSourceRepository(source),
    buildType: nonEmpty(p.buildType),
  };
}

function readV01(predicate: unknown, what: string): Read {
  const p = parseInput(PredicateV01, predicate ?? {}, `${what} predicate`);
  return {
    builderId: nonEmpty(p.builder?.id),
    sourceRepository: normaliseSourceRepository((p.materials ?? []).find(looksLikeSource)?.uri),
    buildType: nonEmpty(p.recipe?.type),
  };
}

function readInTotoProvenance(predicate: unknown, what: string): Read {
  const p = parseInput(InTotoProvenancePredicate, predicate ?? {}, `${what} predicate`);
  const materials = (p.materials ?? []).map((m) => (typeof m === 'string' ? { uri: m } : m));
  return {
    builderId: nonEmpty(p.builderConfig?.id),
    sourceRepository: normaliseSourceRepository(materials.find(looksLikeSource)?.uri),
    buildType: nonEmpty(p.recipe?.type),
  };
}

/** Where SLSA v1 builders put the source: GitHub's generator, Cloud Build, and generic forms. */
function v1Source(params: Record<string, unknown>): string | null {
  const pick = (o: unknown, ...path: string[]): string | null => {
    let cur: unknown = o;
    for (const k of path) {
      if (typeof cur !== 'object' || cur === null) return null;
      cur = (cur as Record<string, unknown>)[k];
    }
    return typeof cur === 'string' && cur !== '' ? cur : null;
  };
  return (
    pick(params, 'workflow', 'repository') ??
    pick(params, 'buildConfigSource', 'repository') ??
    pick(params, 'source', 'repository') ??
    pick(params, 'source', 'uri') ??
    pick(params, 'source') ??
    pick(params, 'repository')
  );
}

function readV1(predicate: unknown, what: string): Read {
  const p = parseInput(PredicateV1, predicate ?? {}, `${what} predicate`);
  const def = p.buildDefinition;
  const fromParams = v1Source(def?.externalParameters ?? {});
  const fromDeps = (def?.resolvedDependencies ?? []).find(looksLikeSource)?.uri;
  return {
    builderId: nonEmpty(p.runDetails?.builder?.id),
    sourceRepository: normaliseSourceRepository(fromParams ?? fromDeps),
    buildType: nonEmpty(def?.buildType),
  };
}

function readPredicate(predicateType: string, predicate: unknown, what: string): Read {
  switch (predicateType) {
    case SLSA_V1:
      return readV1(predicate, what);
    case SLSA_V02:
      return readV02(predicate, what);
    case SLSA_V01:
      return readV01(predicate, what);
    default:
      throw new InvalidInputError(
        `invalid ${what}: predicateType ${JSON.stringify(predicateType.slice(0, 100))} is not SLSA provenance (${SLSA_V1}, ${SLSA_V02} or ${SLSA_V01})`,
      );
  }
}

function result(
  read: Read,
  source: Provenance['source'],
  subjects: Subject[],
  predicateType: string,
  container: ProvenanceContainer,
) {
  return {
    provenance: { ...read, source, signer: null },
    container,
    signatureVerified: false,
    subjects,
    predicateType,
    resource: null,
  } satisfies ProvenanceResult;
}

/** Reads an in-toto Statement (v0.1 or v1) carrying SLSA provenance v0.1, v0.2 or v1. */
export function provenanceFromStatement(statement: unknown): ProvenanceResult {
  const s = parseInput(ProvenanceStatement, statement, 'in-toto statement');
  const read = readPredicate(s.predicateType, s.predicate, 'in-toto statement');
  return result(
    read,
    'slsa',
    subjectsOf(s.subject, 'in-toto statement'),
    s.predicateType,
    'statement',
  );
}

/** Envelopes past this size are refused before decoding: real provenance is tens of KB. */
export const MAX_ENVELOPE_PAYLOAD = 4 * 1024 * 1024;

/** A DSSE envelope carrying provenance, as read from outside (bounded; signatures optional, not checked here). */
export const ProvenanceEnvelope = z.object({
  payloadType: z.literal(IN_TOTO_PAYLOAD_TYPE, {
    message: `must be ${IN_TOTO_PAYLOAD_TYPE}`,
  }),
  payload: z
    .string()
    .min(1)
    .max(MAX_ENVELOPE_PAYLOAD, `larger than ${MAX_ENVELOPE_PAYLOAD} characters`)
    .regex(/^[A-Za-z0-9+/_-]+={0,2}$/, 'must be base64'),
  signatures: z
    .array(z.object({ keyid: text(2000).nullish(), sig: text(100_000) }))
    .max(100)
    .nullish(),
});

/** Reads the in-toto Statement inside a DSSE envelope (base64 payload). Signatures are not checked here. */
export function provenanceFromDsse(envelope: unknown): ProvenanceResult {
  const e = parseInput(ProvenanceEnvelope, envelope, 'DSSE envelope');
  const statement = parseJsonBytes(
    Buffer.from(e.payload, 'base64'),
    'invalid DSSE envelope: payload',
  );
  return { ...provenanceFromStatement(statement), container: 'dsse' };
}

/** Sigstore bundle media types, v0.1–v0.3 (v0.3 also has its own `bundle.v0.3+json` spelling). */
export const SIGSTORE_BUNDLE_MEDIA_TYPES = [
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle.v0.3+json',
] as const;

/** Whether a JSON value says it is a Sigstore bundle (its mediaType), whatever else it holds. */
export function isSigstoreBundle(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const t = (v as Record<string, unknown>).mediaType;
  return typeof t === 'string' && t.startsWith('application/vnd.dev.sigstore.bundle');
}

/**
 * A Sigstore bundle (protobuf-specs Bundle, JSON form): the verification material is kept as
 * given (certificate chain or certificate, tlog entries, timestamps) for the verifier; exactly
 * one of a DSSE envelope or a message signature is the content.
 */
export const SigstoreBundle = z
  .object({
    mediaType: z.enum(SIGSTORE_BUNDLE_MEDIA_TYPES, {
      message: `must be one of ${SIGSTORE_BUNDLE_MEDIA_TYPES.join(', ')}`,
    }),
    verificationMaterial: z.record(z.string(), z.unknown(), {
      error: 'verificationMaterial must be an object',
    }),
    dsseEnvelope: z.unknown().optional(),
    messageSignature: z.unknown().optional(),
  })
  .refine((b) => (b.dsseEnvelope === undefined) !== (b.messageSignature === undefined), {
    message: 'a bundle holds exactly one of dsseEnvelope or messageSignature',
    path: ['dsseEnvelope'],
  });

/**
 * Reads the in-toto Statement in a Sigstore bundle's DSSE envelope (what slsa-github-generator,
 * GitHub artifact attestations and `cosign attest --new-bundle-format` write). The bundle is
 * NOT verified here: the result is marked unverified like any envelope read by this module.
 */
export function provenanceFromBundle(bundle: unknown): ProvenanceResult {
  const b = parseInput(SigstoreBundle, bundle, 'Sigstore bundle');
  if (b.dsseEnvelope === undefined) {
    throw new InvalidInputError(
      'invalid Sigstore bundle: it signs a blob (messageSignature), not an in-toto statement, so it carries no provenance',
      { details: { issues: [{ path: 'messageSignature', message: 'not a DSSE envelope' }] } },
    );
  }
  let r: ProvenanceResult;
  try {
    r = provenanceFromDsse(b.dsseEnvelope);
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    throw new InvalidInputError(`invalid Sigstore bundle dsseEnvelope: ${err.message}`, {
      cause: err,
      details: err.details,
    });
  }
  return { ...r, container: 'sigstore-bundle', bundleMediaType: b.mediaType };
}

const OccStatement = z.object({
  subject: z.array(SubjectSchema).max(10_000).nullish(),
  predicateType: text(2000).nullish(),
  predicate: z.unknown().optional(),
  slsaProvenance: z.unknown().optional(),
  slsaProvenanceZeroTwo: z.unknown().optional(),
  provenance: z.unknown().optional(),
});

export const BuildOccurrence = z.object({
  kind: text(100).nullish(),
  resourceUri: z.string({ error: 'a BUILD occurrence needs a resourceUri (v1 API)' }).max(1000),
  build: z.object({
    inTotoSlsaProvenanceV1: OccStatement.nullish(),
    intotoStatement: OccStatement.nullish(),
    intotoProvenance: z.unknown().optional(),
    provenance: z
      .object({
        id: text(500).nullish(),
        builderVersion: text(500).nullish(),
        sourceProvenance: z
          .object({
            context: z.object({ git: z.object({ url: text(2000).nullish() }).nullish() }).nullish(),
          })
          .nullish(),
      })
      .nullish(),
  }),
  envelope: z.unknown().optional(),
});

function isSet(v: unknown): boolean {
  return typeof v === 'object' && v !== null && Object.keys(v).length > 0;
}

/**
 * Reads a Cloud Build BUILD occurrence (REST JSON or Node client object): the SLSA v1 statement
 * if present, else the in-toto statement (v0.2, v0.1 or in-toto provenance), else the DSSE
 * envelope, else the legacy build provenance (source repository only).
 */
export function provenanceFromBuildOccurrence(occurrence: unknown): ProvenanceResult {
  const what = 'BUILD occurrence';
  // The Node client returns protobuf Structs (externalParameters, …) as {fields: …}: make them JSON.
  const o = parseInput(BuildOccurrence, plainJson(occurrence), what);
  if (o.kind && o.kind !== 'BUILD')
    throw new InvalidInputError(`invalid ${what}: kind is ${o.kind}`);
  const resource = parseResourceUri(o.resourceUri);
  const b = o.build;
  let out: Omit<ProvenanceResult, 'resource'> | null = null;
  const v1 = b.inTotoSlsaProvenanceV1;
  const st = b.intotoStatement;
  if (v1 && isSet(v1.predicate)) {
    out = result(
      readV1(v1.predicate, what),
      'cloud-build',
      subjectsOf(v1.subject ?? [], what),
      SLSA_V1,
      'build-occurrence',
    );
  } else if (
    st &&
    (isSet(st.slsaProvenanceZeroTwo) ||
      isSet(st.slsaProvenance) ||
      isSet(st.provenance) ||
      isSet(st.predicate))
  ) {
    const subjects = subjectsOf(st.subject ?? [], what);
    const type = st.predicateType ?? '';
    let read: Read;
    if (isSet(st.slsaProvenanceZeroTwo)) read = readV02(st.slsaProvenanceZeroTwo, what);
    else if (isSet(st.slsaProvenance)) read = readV01(st.slsaProvenance, what);
    else if (isSet(st.provenance)) read = readInTotoProvenance(st.provenance, what);
    else read = readPredicate(type, st.predicate, what);
    out = result(read, 'cloud-build', subjects, type, 'build-occurrence');
  } else if (isSet(b.intotoProvenance)) {
    out = result(
      readInTotoProvenance(b.intotoProvenance, what),
      'cloud-build',
      [],
      'https://in-toto.io/Provenance/v0.1',
      'build-occurrence',
    );
  } else if (isSet(o.envelope)) {
    const r = provenanceFromDsse(o.envelope);
    out = {
      ...r,
      container: 'build-occurrence',
      provenance: { ...r.provenance, source: 'cloud-build' },
    };
  } else if (b.provenance) {
    out = result(
      {
        builderId: null,
        sourceRepository: normaliseSourceRepository(
          b.provenance.sourceProvenance?.context?.git?.url,
        ),
        buildType: null,
      },
      'cloud-build',
      [],
      'grafeas.v1.BuildProvenance',
      'build-occurrence',
    );
  }
  if (out === null) throw new InvalidInputError(`invalid ${what}: it carries no provenance`);
  return { ...out, resource };
}

/** Accepts any of the four forms and reads it: a Sigstore bundle, a DSSE envelope, an in-toto Statement, or a BUILD occurrence. */
export function readProvenance(input: unknown): ProvenanceResult {
  if (typeof input === 'object' && input !== null) {
    const o = input as Record<string, unknown>;
    if (isSigstoreBundle(o)) return provenanceFromBundle(o);
    if ('payloadType' in o && 'payload' in o) return provenanceFromDsse(o);
    if ('_type' in o || 'predicateType' in o) return provenanceFromStatement(o);
    if ('build' in o) return provenanceFromBuildOccurrence(o);
  }
  throw new InvalidInputError(
    'invalid provenance: not a Sigstore bundle, a DSSE envelope, an in-toto Statement or a BUILD occurrence',
  );
}
